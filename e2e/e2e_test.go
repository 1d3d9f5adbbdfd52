package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/localapp"
	"github.com/spemigrate/spemigrate/infra/local/sample"
	"github.com/spemigrate/spemigrate/infra/local/verify"
	"github.com/spemigrate/spemigrate/shared/request"
)

// app is the whole local stack with the Functions app on it, shared by the
// package's tests. The tests run one after another: several inject faults
// into the one Graph emulator or kill the one handler.
var app *localapp.App

// localRoot is the app's SPEMIGRATE_LOCAL_SOURCE_ROOTS.
var localRoot string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	opts := localapp.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	// The one folder local sources may read from (hostile_test.go probes
	// around it).
	root, err := os.MkdirTemp("", "spemigrate-e2e-local-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	localRoot = root
	opts.Settings = map[string]string{"SPEMIGRATE_LOCAL_SOURCE_ROOTS": localRoot}
	for _, name := range targetNames {
		opts.Graph.Containers = append(opts.Graph.Containers, targetContainer(name))
	}
	// Authors at @former.contoso.com do not resolve in the strict profile
	// (report_test.go relies on it); a container already in use.
	opts.Graph.Containers = append(opts.Graph.Containers, existingContainer())
	if os.Getenv("E2E_VERBOSE") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		opts.Output = os.Stderr
	}
	a, err := localapp.Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start the local stack:", err)
		os.Exit(1)
	}
	app = a
	code := m.Run()
	app.Close()
	os.RemoveAll(root)
	os.Exit(code)
}

// targetNames name the tests' SPE containers: one each, so that no test
// sees another's items.
var targetNames = []string{"http", "queue", "schedule", "cancel", "kill", "poison"}

// targetContainer derives an SPE container (ids and site) from a name.
func targetContainer(name string) graphemu.Container {
	ns := uuid.MustParse("6f1c2e0a-5b7d-4c3e-9a1f-2d4b6c8e0f13")
	id := func(kind string) string { return uuid.NewSHA1(ns, []byte(name+"/"+kind)).String() }
	raw := uuid.NewSHA1(ns, []byte(name+"/container"))
	return graphemu.Container{
		ID:            "b!" + base64.RawURLEncoding.EncodeToString(append(raw[:], raw[:]...)),
		WebID:         id("web"),
		ListID:        id("list"),
		RootFolderID:  id("root"),
		SiteURL:       "https://contoso.sharepoint.com/contentstorage/CSP_" + id("site"),
		LibraryFolder: "Document Library",
	}
}

// target is the container id of the named test container.
func target(name string) string { return targetContainer(name).ID }

func needApp(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: starts the whole local stack (not under -short)")
	}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// ---- HTTP API ----

var client = &http.Client{Timeout: time.Minute}

// call sends a request to the front door and returns the status and body.
func call(t *testing.T, ctx context.Context, method, path string, body []byte, header http.Header) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, app.APIURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp.StatusCode, data
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func getMigration(t *testing.T, ctx context.Context, id string) api.Migration {
	t.Helper()
	st, body := call(t, ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(id), nil, nil)
	if st != http.StatusOK {
		t.Fatalf("GET migration %s: %d %s", id, st, body)
	}
	var m api.Migration
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("GET migration %s: %v", id, err)
	}
	return m
}

// waitFor polls cond every interval until it returns true or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, interval time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// waitMigration polls the API until the migration ends (a 404 counts as
// "not there yet", for migrations started by a message or a schedule).
func waitMigration(t *testing.T, ctx context.Context, id string) api.Migration {
	t.Helper()
	var m api.Migration
	waitFor(t, ctx, "migration "+id+" to end", 250*time.Millisecond, func() bool {
		st, body := call(t, ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(id), nil, nil)
		switch st {
		case http.StatusNotFound:
			return false
		case http.StatusOK:
		default:
			t.Fatalf("GET migration %s: %d %s", id, st, body)
		}
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return m.Terminal()
	})
	return m
}

func startHTTP(t *testing.T, ctx context.Context, req map[string]any) api.Migration {
	t.Helper()
	st, body := call(t, ctx, http.MethodPost, "/api/migrations", mustJSON(t, req), nil)
	if st != http.StatusAccepted {
		t.Fatalf("POST /api/migrations: %d %s", st, body)
	}
	var m api.Migration
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// ---- sources and checks ----

// seed uploads files into a fresh container and returns what was uploaded.
func seed(t *testing.T, ctx context.Context, containerName string, files []sample.File) []sample.Blob {
	t.Helper()
	cc, err := app.Container(containerName)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := sample.Seed(ctx, cc, files, sample.SeedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return blobs
}

// migrationRequest is a request for the blob container's content into
// folder of the SPE container targetID.
func migrationRequest(t *testing.T, id, containerName, targetID, folder string) map[string]any {
	t.Helper()
	sasURL, err := app.ContainerSASURL(containerName, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"v":      request.Version,
		"id":     id,
		"source": map[string]any{"kind": request.KindAzureBlob, "containerUrl": sasURL},
		"target": map[string]any{"containerId": targetID, "folder": folder},
	}
}

// verifyMigration checks a completed migration's target folder against its
// source through Graph's drive endpoints.
func verifyMigration(t *testing.T, ctx context.Context, m api.Migration, targetID, folder string, blobs []sample.Blob) *verify.Result {
	t.Helper()
	return checkMigration(t, ctx, m, targetID, folder, blobs, true)
}

// verifyPresent is verifyMigration for a folder that holds other items too.
func verifyPresent(t *testing.T, ctx context.Context, m api.Migration, targetID, folder string, blobs []sample.Blob) *verify.Result {
	t.Helper()
	return checkMigration(t, ctx, m, targetID, folder, blobs, false)
}

func checkMigration(t *testing.T, ctx context.Context, m api.Migration, targetID, folder string, blobs []sample.Blob, exclusive bool) *verify.Result {
	t.Helper()
	if m.Status != api.StatusCompleted {
		var b strings.Builder
		for _, x := range m.Batches {
			fmt.Fprintf(&b, "\n  batch %s: %s attempt %d job %s: %s", x.ID, x.Status, x.Attempt, x.JobID, x.Reason)
		}
		t.Fatalf("migration %s ended %s (%s), want completed; counters %+v%s", m.ID, m.Status, m.Reason, m.Counters, b.String())
	}
	st, body := call(t, ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(m.ID)+"/report.csv", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("report: %d %s", st, body)
	}
	rows, err := verify.ParseReport(body)
	if err != nil {
		t.Fatal(err)
	}
	g, err := app.GraphReader()
	if err != nil {
		t.Fatal(err)
	}
	res, err := verify.Check(ctx, verify.Options{
		Graph: g, DriveID: targetID, Folder: folder, Source: blobs, Report: rows,
		Times: true, Authors: true, Exclusive: exclusive,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if want := countEligible(blobs); res.Checked != want {
		t.Fatalf("verified %d files, want %d", res.Checked, want)
	}
	return res
}

func countEligible(blobs []sample.Blob) int {
	n := 0
	for _, b := range blobs {
		if !b.ExpectSkipped {
			n++
		}
	}
	return n
}

// sbStats reads the Service Bus emulator's per-queue counters.
func sbStats(t *testing.T, ctx context.Context) map[string]map[string]float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, app.ServiceBusAdminURL+"/stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Queues map[string]map[string]float64 `json:"queues"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("service bus stats: %v", err)
	}
	return st.Queues
}

// queueCount is one counter of one queue ("provision", "provision/$deadletterqueue"…).
func queueCount(stats map[string]map[string]float64, queue, counter string) int {
	for k, m := range stats {
		if strings.EqualFold(k, queue) {
			return int(m[counter])
		}
	}
	return 0
}
