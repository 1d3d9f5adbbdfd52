package statuspage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/localapp"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
)

// hostileName is the finished migration's failing file: a link out of the
// source folder, named like markup.
const hostileName = `<img src=x onerror=alert(1)>.txt`

// postponedReason is what the Graph emulator says when it postpones a job.
const postponedReason = "Job postponed: the content database is busy (injected)."

// migrationCheck is what statuspage.js checks on one migration's page.
type migrationCheck struct {
	ID              string `json:"id"`
	Status          string `json:"status"`
	Batches         int    `json:"batches"`
	FullBars        int    `json:"fullBars"`
	ETAPattern      string `json:"etaPattern"` // a JavaScript RegExp
	PostponedReason string `json:"postponedReason,omitempty"`
	FailedPath      string `json:"failedPath,omitempty"`
	FailedReason    string `json:"failedReason,omitempty"`
}

// TestStatusPageInChromium starts one migration that finishes (with a
// failed file) and one that SharePoint keeps postponing, then has Chromium
// open the status pages through the front door.
func TestStatusPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: starts the whole local stack and Chromium (not under -short)")
	}
	chromium := chromiumPath(t)
	root, err := stack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Chromium's profile lives here too: a browser left behind shows up in
	// CI's check for /tmp/spemigrate- processes.
	tmp, err := os.MkdirTemp("", "spemigrate-statuspage-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	sources := filepath.Join(tmp, "sources")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	app, err := localapp.Start(ctx, localapp.Options{
		Root:   root,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		// Four entries a page: a few files make several batches.
		Settings: map[string]string{"SPEMIGRATE_LOCAL_SOURCE_ROOTS": sources, "SPEMIGRATE_PAGE_SIZE": "4"},
	})
	if err != nil {
		t.Fatalf("start the local stack: %v", err)
	}
	t.Cleanup(func() { _ = app.Close() })

	finished := runFinished(t, ctx, app, sources)
	running := runPostponed(t, ctx, app, sources)

	shots := t.TempDir()
	if os.Getenv("SPEMIGRATE_WRITE_SCREENSHOTS") == "1" {
		shots = filepath.Join(root, "docs", "screenshots")
	}
	cfg := map[string]any{
		"baseURL": app.APIURL, "chromium": chromium, "userDataDir": filepath.Join(tmp, "chromium-profile"),
		"screenshotDir": shots, "running": running, "finished": finished,
	}
	runBrowser(t, ctx, root, tmp, cfg)
	for _, name := range []string{"status-list.png", "status-running.png", "status-finished.png"} {
		checkScreenshot(t, filepath.Join(shots, name))
	}
}

// chromiumPath is the browser to drive; missing, the test fails with how
// to install it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("SPEMIGRATE_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("Chromium is needed for the status page's browser test and %s is not there (%v): install it with `apt-get install -y chromium` (Debian), or set SPEMIGRATE_CHROMIUM to a Chromium binary; `go test -short` leaves this test out", p, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is needed to drive Chromium (playwright-core): %v", err)
	}
	return p
}

// runFinished migrates a folder of eight files and a link out of it; the
// link fails with the reason and the migration ends completedWithErrors.
func runFinished(t *testing.T, ctx context.Context, app *localapp.App, sources string) migrationCheck {
	t.Helper()
	dir := writeFiles(t, sources, "finished", 8)
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, hostileName)); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("status-finished-%d", time.Now().UnixNano())
	start(t, ctx, app, id, dir, "status/finished")
	var m api.Migration
	stacktest.Eventually(t, 2*time.Minute, func() bool { m = get(t, ctx, app, id); return m.Terminal() },
		func() string { return fmt.Sprintf("migration %s still %s", id, m.Status) })
	if m.Status != api.StatusCompletedWithErrors {
		t.Fatalf("finished migration %s: %s %q, want completedWithErrors (the link fails)", id, m.Status, m.Reason)
	}
	return migrationCheck{ID: id, Status: m.Status, Batches: len(m.Batches), FullBars: len(m.Batches), ETAPattern: "^finished$",
		FailedPath: hostileName, FailedReason: "symbolic link leads outside the source folder"}
}

// runPostponed migrates eight files in batches of four; the first job
// created is postponed again and again, the other finishes, so the
// migration stays running.
func runPostponed(t *testing.T, ctx context.Context, app *localapp.App, sources string) migrationCheck {
	t.Helper()
	dir := writeFiles(t, sources, "running", 8)
	app.Graph.AddJobFaults(graphemu.JobFaults{Postpone: 1000, PostponeDelay: time.Hour})
	t.Cleanup(app.Graph.ClearFaults)
	id := fmt.Sprintf("status-running-%d", time.Now().UnixNano())
	start(t, ctx, app, id, dir, "status/running")
	var m api.Migration
	settled := func() bool {
		m = get(t, ctx, app, id)
		postponed, done := 0, 0
		for _, b := range m.Batches {
			if b.Postponed != nil {
				postponed++
			}
			if b.Status == "succeeded" {
				done++
			}
		}
		return m.Counters.PlanDone && postponed == 1 && done == len(m.Batches)-1 && done > 0
	}
	stacktest.Eventually(t, 2*time.Minute, settled, func() string {
		b, _ := json.Marshal(m.Batches)
		return fmt.Sprintf("migration %s (%s): want one postponed batch and the others succeeded: %s", id, m.Status, b)
	})
	return migrationCheck{ID: id, Status: api.StatusRunning, Batches: len(m.Batches), FullBars: len(m.Batches) - 1,
		// The postponed job's pickup, an hour after it was postponed,
		// bounds the ETA.
		ETAPattern: "^≥ 5\\dm\\d\\ds$", PostponedReason: postponedReason}
}

func writeFiles(t *testing.T, sources, name string, n int) string {
	t.Helper()
	dir := filepath.Join(sources, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		body := bytes.Repeat([]byte(fmt.Sprintf("file %d of %s\n", i, name)), 1000*(i+1))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("doc-%02d.txt", i)), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func start(t *testing.T, ctx context.Context, app *localapp.App, id, dir, folder string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"v": 1, "id": id,
		"source": map[string]any{"kind": "localFolder", "path": dir},
		"target": map[string]any{"containerId": app.SPEContainerID, "folder": folder},
	})
	st, resp := call(t, ctx, http.MethodPost, app.APIURL+"/api/migrations", body)
	if st != http.StatusAccepted {
		t.Fatalf("POST /api/migrations: %d %s", st, resp)
	}
}

func get(t *testing.T, ctx context.Context, app *localapp.App, id string) api.Migration {
	t.Helper()
	st, body := call(t, ctx, http.MethodGet, app.APIURL+"/api/migrations/"+url.PathEscape(id), nil)
	if st != http.StatusOK {
		t.Fatalf("GET migration %s: %d %s", id, st, body)
	}
	var m api.Migration
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func call(t *testing.T, ctx context.Context, method, u string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// runBrowser runs statuspage.js in its own process group and checks that
// no Chromium with the test's profile outlives it.
func runBrowser(t *testing.T, ctx context.Context, root, tmp string, cfg map[string]any) {
	t.Helper()
	cfgPath := filepath.Join(tmp, "statuspage.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join(stack.NodeDir(root), "browser", "statuspage.js"), cfgPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		// Whatever the outcome, nothing of the browser stays.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	profile := cfg["userDataDir"].(string)
	stacktest.Eventually(t, 10*time.Second, func() bool { return !running(profile) },
		func() string { return "a Chromium process with profile " + profile + " is still running" })
	if err != nil {
		t.Fatalf("statuspage.js: %v\n%s%s", err, stderr.String(), stdout.String())
	}
	var out struct {
		OK     bool     `json:"ok"`
		Checks []string `json:"checks"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || !out.OK {
		t.Fatalf("statuspage.js output %q: %v", stdout.String(), err)
	}
	for _, c := range out.Checks {
		t.Log("chromium:", c)
	}
}

// running reports whether a process's command line names s.
func running(s string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), s) {
			return true
		}
	}
	return false
}

func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if cfg.Width != 1200 || cfg.Height < 400 {
		t.Errorf("screenshot %s is %dx%d, want 1200 wide and a page tall", path, cfg.Width, cfg.Height)
	}
	t.Logf("screenshot %s: %dx%d", path, cfg.Width, cfg.Height)
}
