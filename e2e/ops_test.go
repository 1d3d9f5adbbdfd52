package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/infra/local/localapp"
	"github.com/spemigrate/spemigrate/infra/local/sample"
	"github.com/spemigrate/spemigrate/shared/scan"
	"github.com/spemigrate/spemigrate/shared/verify"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// cli builds cmd/spemigrate once, so the tests run the command users run.
func cli(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "spemigrate-cli-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "spemigrate")
		out, err := exec.Command("go", "build", "-o", cliPath, "github.com/spemigrate/spemigrate/cmd/spemigrate").CombinedOutput()
		if err != nil {
			cliErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// runCLI runs spemigrate with args and returns its output and exit error.
func runCLI(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, cli(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func writeRequest(t *testing.T, req map[string]any) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "request.json")
	if err := os.WriteFile(p, mustJSON(t, req), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func listMigrationIDs(t *testing.T, ctx context.Context) []string {
	t.Helper()
	st, body := call(t, ctx, http.MethodGet, "/api/migrations?limit=200", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("list migrations: %d %s", st, body)
	}
	var page struct {
		Migrations []api.Migration `json:"migrations"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Migrations {
		ids = append(ids, m.ID)
	}
	return ids
}

// spemigrate scan of the demo sample prints its readiness report in under
// 10 s, and neither it nor the API's dry run creates a migration or calls
// Graph.
func TestScanDemoSample(t *testing.T) {
	needApp(t)
	ctx := testContext(t, 3*time.Minute)
	seed(t, ctx, "e2e-scan", sample.Demo())
	req := migrationRequest(t, "e2e-scan-1", "e2e-scan", target("http"), "e2e/scan")
	reqFile := writeRequest(t, req)
	cli(t) // build outside the timed run
	before, graphBefore := listMigrationIDs(t, ctx), app.Graph.Counts()

	start := time.Now()
	out, err := runCLI(t, ctx, "scan", reqFile)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("spemigrate scan: %v\n%s", err, out)
	}
	t.Logf("spemigrate scan took %s:\n%s", took, out)
	if took > 10*time.Second {
		t.Errorf("scan took %s, want under 10 s", took)
	}
	for _, want := range []string{"Readiness scan (dry run", "535 (535 versions)", "renamed", "Largest files:", "Extensions:", "estimate:", "reserved-name", "case-collision"} {
		if !strings.Contains(out, want) {
			t.Errorf("scan output lacks %q", want)
		}
	}

	st, body := call(t, ctx, http.MethodPost, "/api/migrations?dryRun=true", mustJSON(t, req), nil)
	if st != http.StatusOK {
		t.Fatalf("dry run: %d %s", st, body)
	}
	var rep scan.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.DryRun || rep.Files != 535 || rep.Renamed == 0 || rep.Skipped == 0 || rep.Packages < 2 || len(rep.Largest) == 0 {
		t.Errorf("dry-run report: files %d renamed %d skipped %d packages %d", rep.Files, rep.Renamed, rep.Skipped, rep.Packages)
	}
	if after := listMigrationIDs(t, ctx); len(after) != len(before) {
		t.Errorf("migrations before %v, after scan and dry run %v", before, after)
	}
	if graphAfter := app.Graph.Counts(); !maps.Equal(graphBefore, graphAfter) {
		t.Errorf("Graph calls changed: before %v after %v", graphBefore, graphAfter)
	}
	if st, _ := call(t, ctx, http.MethodGet, "/api/migrations/e2e-scan-1", nil, nil); st != http.StatusNotFound {
		t.Errorf("GET the dry run's id: %d, want 404", st)
	}
}

// spemigrate verify passes on a migrated sample, and after one file's
// content is overwritten in the target it reports that file failed (by
// quickXorHash and by byte comparison) and the rest passed.
func TestVerifyReportsCorruptedFile(t *testing.T) {
	needApp(t)
	ctx := testContext(t, 3*time.Minute)
	tc := targetContainer("verify")
	if err := app.Graph.AddContainer(tc); err != nil {
		t.Fatal(err)
	}
	seed(t, ctx, "e2e-verify", sample.Small("", 30))
	req := migrationRequest(t, "e2e-verify-1", "e2e-verify", tc.ID, "e2e/verify")
	reqFile := writeRequest(t, req)
	m := waitMigration(t, ctx, startHTTP(t, ctx, req).ID)
	if m.Status != api.StatusCompleted {
		t.Fatalf("migration ended %s: %s", m.Status, m.Reason)
	}
	args := []string{"verify", "-url", app.APIURL, "-request", reqFile, "-graph-url", app.GraphURL,
		"-graph-ca-file", app.GraphCAFile, "-graph-token", localapp.GraphToken, "-sample", "1", m.ID}
	out, err := runCLI(t, ctx, args...)
	if err != nil || !strings.Contains(out, "result:   PASSED") || strings.Contains(out, "0 by quickXorHash") {
		t.Fatalf("verify of a good migration: %v\n%s", err, out)
	}
	t.Logf("verify, intact:\n%s", out)
	if v := apiVerify(t, ctx, m.ID); !v.OK || v.Passed != len(v.Items) || v.HashChecked != len(v.Items) || v.BytesCompared != len(v.Items) {
		t.Fatalf("POST verify of a good migration: ok %v, passed %d of %d, hashed %d, compared %d", v.OK, v.Passed, len(v.Items), v.HashChecked, v.BytesCompared)
	}

	victim := corruptOne(t, ctx, m.ID, tc.ID)
	out, err = runCLI(t, ctx, append([]string{"verify", "-json"}, args[1:]...)...)
	if err == nil {
		t.Fatalf("verify passed with %q corrupted:\n%s", victim, out)
	}
	var res verify.Result
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &res); err != nil {
		t.Fatalf("verify -json: %v\n%s", err, out)
	}
	fails := res.Failures()
	if len(fails) != 1 || fails[0].Target != victim || res.Passed != len(res.Items)-1 {
		t.Fatalf("failures %+v (passed %d of %d), want only %q", fails, res.Passed, len(res.Items), victim)
	}
	p := strings.Join(fails[0].Problems, "; ")
	if !strings.Contains(p, "quickXorHash") || !strings.Contains(p, "content differs from the source at byte") {
		t.Errorf("problems of the corrupted file: %s", p)
	}
	t.Logf("verify, one file corrupted: %s: %s", victim, p)
	v := apiVerify(t, ctx, m.ID)
	if fails := v.Failures(); v.OK || len(fails) != 1 || fails[0].Target != victim {
		t.Errorf("POST verify with %q corrupted: ok %v, failures %+v", victim, v.OK, fails)
	}
}

// apiVerify runs POST /api/migrations/{id}/verify comparing every file's bytes.
func apiVerify(t *testing.T, ctx context.Context, id string) api.Verification {
	t.Helper()
	st, body := call(t, ctx, http.MethodPost, "/api/migrations/"+url.PathEscape(id)+"/verify?sample=1", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("POST verify: %d %s", st, body)
	}
	var v api.Verification
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// corruptOne overwrites the bytes of one imported, non-empty file in the
// target through the emulator's admin endpoint (same length, so only the
// content checks can tell) and returns its target path.
func corruptOne(t *testing.T, ctx context.Context, id, containerID string) string {
	t.Helper()
	st, body := call(t, ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(id)+"/report.csv", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("report: %d", st)
	}
	rows, err := verify.ParseReport(body)
	if err != nil {
		t.Fatal(err)
	}
	var victim verify.Row
	for _, r := range rows {
		if r.Outcome == "imported" && r.Size > 0 && r.Size < 1<<20 {
			victim = r
			break
		}
	}
	if victim.TargetPath == "" {
		t.Fatal("no imported file to corrupt")
	}
	overwrite(t, ctx, containerID, victim.TargetPath, int(victim.Size))
	return victim.TargetPath
}
