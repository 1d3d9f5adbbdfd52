package funcpackage_test

import (
	"archive/zip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/infra/funcpackage"
	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/localapp"
	"github.com/spemigrate/spemigrate/infra/local/sample"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
	"github.com/spemigrate/spemigrate/infra/local/verify"
	"github.com/spemigrate/spemigrate/shared/request"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := stack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestFunctionsFollowTheFolders checks discovery against a made-up tree:
// whatever folders hold a function.json are the functions, renamed or not.
func TestFunctionsFollowTheFolders(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fj := `{"bindings":[{"type":"timerTrigger","direction":"in","name":"t","schedule":"0 * * * * *"}]}`
	write("handlers/stage-batch/function.json", fj)
	write("handlers/poll/function.json", fj)
	write("handlers/api/server.go", "package api")
	got, err := funcpackage.Functions(root)
	if err != nil || !slices.Equal(got, []string{"poll", "stage-batch"}) {
		t.Fatalf("Functions = %v, %v; want [poll stage-batch]", got, err)
	}
	write("handlers/Poll/function.json", fj)
	if _, err := funcpackage.Functions(root); err == nil || !strings.Contains(err.Error(), "case") {
		t.Errorf("Poll beside poll: %v; want a case clash", err)
	}
	os.RemoveAll(filepath.Join(root, "handlers/Poll"))
	write("handlers/1bad/function.json", fj)
	if _, err := funcpackage.Functions(root); err == nil || !strings.Contains(err.Error(), "1bad") {
		t.Errorf("1bad: %v; want an invalid-name error", err)
	}
	os.RemoveAll(filepath.Join(root, "handlers/1bad"))
	write("handlers/empty/function.json", `{"bindings":[]}`)
	if _, err := funcpackage.Functions(root); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("no bindings: %v; want an error", err)
	}
}

// TestPackageRunsAMigration builds the real package, checks its layout,
// unzips it, and runs the dev host over the unzipped tree (not the
// repository) through one migration on the local stack, verified through
// Graph's drive endpoints.
func TestPackageRunsAMigration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the handler and starts the local stack (not under -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	root := repoRoot(t)
	zipPath := filepath.Join(t.TempDir(), "functionapp.zip")
	p, err := funcpackage.Build(ctx, funcpackage.Options{Root: root, Out: zipPath, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := funcpackage.Functions(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Functions, want) || !slices.Contains(p.Functions, "provision") {
		t.Fatalf("packaged functions %v, want %v", p.Functions, want)
	}

	app := unzip(t, zipPath, p, want)
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Fatalf("the package's handler is linux/amd64; this test must run there to start it (on %s/%s)", runtime.GOOS, runtime.GOARCH)
	}

	target := testContainer()
	la, err := localapp.Start(ctx, localapp.Options{
		Root:    root, // Node tools for the stack; the app itself comes from AppRoot
		AppRoot: app,
		Graph:   stack.GraphOptions{Containers: []graphemu.Container{target}},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()

	// The dev host found the functions in the unzipped tree's root.
	var listed []struct {
		Name string `json:"name"`
	}
	getJSON(t, ctx, la.APIURL+"/admin/functions", &listed)
	var names []string
	for _, f := range listed {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Fatalf("dev host over the package discovered %v, want %v", names, want)
	}

	cc, err := la.Container("pkg-source")
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := sample.Seed(ctx, cc, sample.Small("", 20), sample.SeedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sasURL, err := la.ContainerSASURL("pkg-source", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"v": request.Version, "id": "pkg-1",
		"source": map[string]any{"kind": request.KindAzureBlob, "containerUrl": sasURL},
		"target": map[string]any{"containerId": target.ID, "folder": "pkg"},
	})
	resp, err := http.Post(la.APIURL+"/api/migrations", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/migrations: %d", resp.StatusCode)
	}
	var m api.Migration
	stacktest.Eventually(t, 3*time.Minute, func() bool {
		getJSON(t, ctx, la.APIURL+"/api/migrations/pkg-1", &m)
		return m.Terminal()
	}, func() string { return "migration pkg-1 did not end: " + string(m.Status) })
	if m.Status != api.StatusCompleted {
		t.Fatalf("migration ended %s (%s), want completed", m.Status, m.Reason)
	}
	resp, err = http.Get(la.APIURL + "/api/migrations/" + url.PathEscape(m.ID) + "/report.csv")
	if err != nil {
		t.Fatal(err)
	}
	report, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rows, err := verify.ParseReport(report)
	if err != nil {
		t.Fatal(err)
	}
	g, err := la.GraphReader()
	if err != nil {
		t.Fatal(err)
	}
	res, err := verify.Check(ctx, verify.Options{Graph: g, DriveID: target.ID, Folder: "pkg", Source: blobs, Report: rows, Times: true, Authors: true, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if res.Checked == 0 {
		t.Fatal("verified no files")
	}
	t.Logf("package %s: %d functions, migration %s verified %d files", filepath.Base(zipPath), len(p.Functions), m.ID, res.Checked)
}

// unzip extracts the package into a fresh directory after checking that it
// holds exactly host.json, one function.json per function and the handler
// with its run bit, and returns the directory.
func unzip(t *testing.T, zipPath string, p *funcpackage.Package, functions []string) string {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	wantFiles := []string{"host.json", p.Handler}
	for _, f := range functions {
		wantFiles = append(wantFiles, f+"/function.json")
	}
	dir := t.TempDir()
	var got []string
	for _, f := range zr.File {
		got = append(got, f.Name)
		mode := f.Mode()
		if f.Name == p.Handler && mode.Perm() != 0o755 {
			t.Errorf("%s has mode %v, want 0755 (the host runs it)", f.Name, mode)
		}
		if f.Name != p.Handler && mode.Perm() != 0o644 {
			t.Errorf("%s has mode %v, want 0644", f.Name, mode)
		}
		dst := filepath.Join(dir, filepath.FromSlash(f.Name))
		if !strings.HasPrefix(dst, dir+string(filepath.Separator)) {
			t.Fatalf("entry %q escapes the app root", f.Name)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode.Perm())
		if err == nil {
			_, err = io.Copy(out, rc)
			err = errors.Join(err, out.Close())
		}
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(got)
	slices.Sort(wantFiles)
	if !slices.Equal(got, wantFiles) {
		t.Fatalf("zip holds %v, want %v", got, wantFiles)
	}
	if _, err := os.Stat(filepath.Join(dir, "handlers")); !os.IsNotExist(err) {
		t.Fatalf("the package has a handlers/ folder: %v", err)
	}
	return dir
}

func getJSON(t *testing.T, ctx context.Context, u string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// testContainer is the SPE container the Graph emulator serves for the test.
func testContainer() graphemu.Container {
	ns := uuid.MustParse("0c7e4b1a-3f2d-4e5c-8a9b-1d2e3f4a5b6c")
	id := func(kind string) string { return uuid.NewSHA1(ns, []byte("package/"+kind)).String() }
	raw := uuid.NewSHA1(ns, []byte("package/container"))
	return graphemu.Container{
		ID:            "b!" + base64.RawURLEncoding.EncodeToString(append(raw[:], raw[:]...)),
		WebID:         id("web"),
		ListID:        id("list"),
		RootFolderID:  id("root"),
		SiteURL:       "https://contoso.sharepoint.com/contentstorage/CSP_" + id("site"),
		LibraryFolder: "Document Library",
	}
}
