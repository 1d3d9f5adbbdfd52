package chaos

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/localapp"
	"github.com/spemigrate/spemigrate/infra/local/sample"
	"github.com/spemigrate/spemigrate/shared/request"
)

// params are the run's size and seed: CHAOS_FILES (default 150, the form
// the normal suite runs; make chaos passes 1000) and CHAOS_SEED (default:
// the clock; printed, so a run can be replayed). CHAOS_LOG=file keeps the
// run's log; CHAOS_VERBOSE=1 also copies it to stderr.
type params struct {
	files int
	seed  uint64
	kills int
}

func readParams(t *testing.T) params {
	t.Helper()
	p := params{files: 150, seed: uint64(time.Now().UnixNano())}
	if v := os.Getenv("CHAOS_FILES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("CHAOS_FILES=%q: want a number of files, at least 10", v)
		}
		p.files = n
	}
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: want an unsigned integer (the seed a run printed)", v)
		}
		p.seed = n
	}
	p.kills = max(3, p.files/150)
	return p
}

// logBuffer collects every log line and child output of the run, for the
// secret scan.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// run is one chaos run: the app, what was fetched from it, and the figures.
type run struct {
	t        *testing.T
	p        params
	app      *localapp.App
	logs     *logBuffer
	stateKey string

	mu        sync.Mutex
	responses []fetched // every API response the driver read, for the scan

	kills, sbRestarts, azRestarts int
}

type fetched struct {
	what string
	body []byte
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: starts the whole local stack and runs a migration under faults (not under -short)")
	}
	p := readParams(t)
	t.Logf("chaos: seed=%d files=%d (replay with CHAOS_SEED=%d CHAOS_FILES=%d)", p.seed, p.files, p.seed, p.files)
	r := startRun(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(3+p.files/50)*time.Minute)
	defer cancel()
	started := time.Now()

	files := sample.Generate(sample.Options{Files: p.files, MaxSmall: 24 << 10})
	cc, err := r.app.Container("chaos-src")
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := sample.Seed(ctx, cc, files, sample.SeedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("chaos-%d", p.seed)
	r.start(ctx, id)

	done := make(chan struct{})
	chaosDone := make(chan error, 1)
	go func() { chaosDone <- r.unleash(ctx, rand.New(rand.NewPCG(p.seed, 0x6368616f73)), done) }()
	var stop sync.Once
	stopChaos := func() error {
		stop.Do(func() { close(done) })
		return <-chaosDone
	}
	// A failed wait must not leave the schedule restarting services
	// while the stack closes (this cleanup runs before startRun's).
	t.Cleanup(func() { cancel(); _ = stopChaos() })
	m := r.waitTerminal(ctx, id)
	if err := stopChaos(); err != nil {
		t.Errorf("chaos schedule: %v", err)
	}
	chaosDone <- nil // for the cleanup's receive
	r.app.Graph.ClearFaults()
	elapsed := time.Since(started)

	verified := r.verify(ctx, m, blobs)
	r.scanSecrets(ctx, id)
	st := r.app.FunctionsHost.Stats()
	var faults int64
	for _, n := range r.app.Graph.FaultsInjected() {
		faults += n
	}
	line := fmt.Sprintf("chaos figures: seed=%d files=%d kills=%d handler_restarts=%d servicebus_restarts=%d azurite_restarts=%d graph_faults=%d duplicate_deliveries=%d files_verified=%d batches=%d duration=%s",
		p.seed, p.files, r.kills, st.HandlerRestarts, r.sbRestarts, r.azRestarts, faults, st.DuplicateDeliveries, verified, len(m.Batches), elapsed.Round(100*time.Millisecond))
	t.Log(line)
	fmt.Println(line)
	if r.kills < p.kills || r.sbRestarts != 1 || r.azRestarts != 1 || faults == 0 || st.DuplicateDeliveries == 0 {
		t.Errorf("the run did not exercise every fault: %s", line)
	}
}

func startRun(t *testing.T, p params) *run {
	t.Helper()
	logs := &logBuffer{}
	out := io.Writer(logs)
	if os.Getenv("CHAOS_VERBOSE") != "" {
		out = io.MultiWriter(logs, os.Stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	key := make([]byte, 32)
	if _, err := crand.Read(key); err != nil {
		t.Fatal(err)
	}
	stateKey := base64.StdEncoding.EncodeToString(key)
	a, err := localapp.Start(ctx, localapp.Options{
		Logger: slog.New(slog.NewJSONHandler(out, nil)),
		Output: out,
		Settings: map[string]string{
			"SPEMIGRATE_STATE_KEY": stateKey,
			// A kill in the middle of a submit holds its batch for the
			// lease; the default 5 minutes would dominate the run. 20 s
			// still outlasts a create call with its throttling retries.
			"SPEMIGRATE_SUBMIT_LEASE": "20s",
			// The drain is the safety net for a lost step or poll message
			// (docs/reliability.md); at its defaults (15 and 2 minutes)
			// one loss would outlast the run's deadline.
			"SPEMIGRATE_STUCK_AFTER": "60s",
			"SPEMIGRATE_POLL_GRACE":  "20s",
		},
		// Every kill is an unexpected exit; the host's limit of three
		// would end the run.
		CrashLimit:        1000,
		DuplicateDelivery: true,
	})
	if err != nil {
		t.Fatalf("start the local stack: %v", err)
	}
	t.Cleanup(func() {
		a.Close()
		if path := os.Getenv("CHAOS_LOG"); path != "" {
			if err := os.WriteFile(path, []byte(logs.String()), 0o644); err != nil {
				t.Errorf("CHAOS_LOG: %v", err)
			}
		} else if t.Failed() && os.Getenv("CHAOS_VERBOSE") == "" {
			if f, err := os.CreateTemp("", "chaos-log-*.jsonl"); err == nil {
				_, _ = f.WriteString(logs.String())
				f.Close()
				t.Logf("the run's log is in %s", f.Name())
			}
		}
	})
	return &run{t: t, p: p, app: a, logs: logs, stateKey: stateKey}
}

// start submits the migration over HTTP. The front door may be unable to
// answer while nothing is wrong yet, so a failed call is retried.
func (r *run) start(ctx context.Context, id string) {
	sasURL, err := r.app.ContainerSASURL("chaos-src", 24*time.Hour)
	if err != nil {
		r.t.Fatal(err)
	}
	req := map[string]any{
		"v":       request.Version,
		"id":      id,
		"source":  map[string]any{"kind": request.KindAzureBlob, "containerUrl": sasURL},
		"target":  map[string]any{"containerId": graphemu.DefaultContainer().ID, "folder": "chaos"},
		"options": map[string]any{"batch": map[string]any{"maxItems": 50}},
	}
	body, _ := json.Marshal(req)
	st, resp, err := r.call(ctx, http.MethodPost, "/api/migrations", body)
	if err != nil || st != http.StatusAccepted {
		r.t.Fatalf("POST /api/migrations: %d %s %v", st, resp, err)
	}
}

var client = &http.Client{Timeout: time.Minute}

// call sends one request to the front door and records the response for
// the secret scan.
func (r *run) call(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, r.app.APIURL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	r.mu.Lock()
	r.responses = append(r.responses, fetched{what: method + " " + path, body: data})
	r.mu.Unlock()
	return resp.StatusCode, data, err
}

// waitTerminal polls the migration until it ends. Calls fail while the
// handler or Azurite is down; those are retried until the deadline.
func (r *run) waitTerminal(ctx context.Context, id string) api.Migration {
	var m api.Migration
	var last string
	for {
		st, body, err := r.call(ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(id), nil)
		if err == nil && st == http.StatusOK && json.Unmarshal(body, &m) == nil {
			if m.Terminal() {
				return m
			}
			last = fmt.Sprintf("%s, counters %+v", m.Status, m.Counters)
		} else if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("migration %s did not end in time; last seen: %s", id, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
