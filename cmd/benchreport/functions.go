package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spemigrate/spemigrate/infra/local/stack"
)

// functionsApp is the Functions app (cmd/handler) under the dev host: the
// basis of figures 4–5 whenever it builds and starts. It runs in a second
// stack so that its state connection can point at the counting proxy,
// which needs Azurite's address first.
type functionsApp struct {
	basis string
	s     *stack.Stack
	dir   string
}

// devhostStats is the part of the dev host's GET /admin/stats used here.
type devhostStats struct {
	Functions map[string]struct {
		Invocations int64 `json:"invocations"`
		Failures    int64 `json:"failures"`
	} `json:"functions"`
}

func newFunctionsApp(ctx context.Context, s *stack.Stack, stateConn, key string, log *slog.Logger) (*functionsApp, error) {
	dir, err := os.MkdirTemp("", "benchreport-app-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "handler")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/handler")
	build.Dir = s.Root
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("build cmd/handler: %v: %s", err, strings.TrimSpace(lastLines(string(out), 3)))
	}
	app, err := stack.Start(ctx, stack.Options{
		Root: s.Root, Dir: filepath.Join(dir, "stack"), Logger: log,
		Functions: &stack.FunctionsOptions{
			HandlerPath: bin,
			Settings: map[string]string{
				// The host's own storage stays direct; the app's state goes
				// through the counting proxy.
				"AzureWebJobsStorage":      s.StorageConnectionString,
				"SPEMIGRATE_STORAGE":       stateConn,
				"ServiceBusConnection":     s.ServiceBusConnectionString,
				"SPEMIGRATE_GRAPH_URL":     s.GraphURL,
				"SPEMIGRATE_GRAPH_CA_FILE": s.GraphCAFile,
				"SPEMIGRATE_GRAPH_TOKEN":   "benchreport",
				// The source is the first stack's Azurite, a plain-http
				// loopback endpoint this stack does not run.
				"SPEMIGRATE_ALLOWED_BLOB_HOSTS": blobHost(s.BlobEndpoint),
				"SPEMIGRATE_STATE_KEY":          key,
				// Every minute, as local.settings.sample.json and a
				// deployment set it.
				"SPEMIGRATE_DRAIN_SCHEDULE": "0 */1 * * * *",
			},
		},
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the Functions app under the dev host: %w", err)
	}
	return &functionsApp{basis: "Functions app", s: app, dir: dir}, nil
}

// start submits the request through the HTTP API and returns the
// migration id.
func (f *functionsApp) start(ctx context.Context, _, _ string, req []byte) (string, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, f.s.FunctionsURL+"/api/migrations", bytes.NewReader(req))
	if err != nil {
		return "", err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return "", fmt.Errorf("POST /api/migrations: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /api/migrations: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	var m struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.ID == "" {
		return "", fmt.Errorf("POST /api/migrations: no migration id in %q", body)
	}
	return m.ID, nil
}

func (f *functionsApp) invocations(ctx context.Context) (map[string]int64, error) {
	var st devhostStats
	if err := getJSON(ctx, f.s.FunctionsURL+"/admin/stats", &st); err != nil {
		return nil, fmt.Errorf("dev host stats: %w", err)
	}
	out := make(map[string]int64, len(st.Functions))
	for name, fs := range st.Functions {
		out[name] = fs.Invocations
	}
	return out, nil
}

// The app runs the engine with pipeline.Config's defaults.
func (f *functionsApp) describe() (string, time.Duration) { return f.basis, 60 * time.Second }

func (f *functionsApp) Close() error {
	err := f.s.Close()
	os.RemoveAll(f.dir)
	return err
}

// blobHost is the host:port of a blob endpoint URL.
func blobHost(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	return u.Host
}
