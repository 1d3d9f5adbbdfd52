package pipeline_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/shared/pipeline"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/secretscan"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Fault tests against the emulators: throttling, fatal job errors, an
// expired SAS, and a search for secrets in everything the engine wrote.

func smallRun(t *testing.T, e *itEnv, migID, containerID string, n int, mode runMode) (*state.Migration, map[string]fileSpec) {
	t.Helper()
	dir := t.TempDir()
	specs := genSource(t, dir, n, false)
	e.start(migID, localRequest(dir, containerID, request.Batch{MaxItems: 100, MaxBytes: 100 << 20}))
	return e.drive(migID, mode, 2*time.Minute), specs
}

// onlyOurs restores the shared emulator's faults after a test.
func withFaults(t *testing.T, emu *graphemu.Server, rules ...graphemu.FaultRule) {
	t.Helper()
	emu.ClearFaults()
	t.Cleanup(emu.ClearFaults)
	for _, r := range rules {
		if err := emu.AddFault(r); err != nil {
			t.Fatal(err)
		}
	}
}

func TestThrottlingIsHonoured(t *testing.T) {
	t.Run("short Retry-After waited in-process", func(t *testing.T) {
		e := newITEnv(t, itOptions{})
		before := e.emu.Counts()
		withFaults(t, e.emu,
			graphemu.FaultRule{Route: graphemu.RouteProvision, Status: 429, RetryAfter: 1, Count: 2},
			graphemu.FaultRule{Route: graphemu.RouteCreateJob, Status: 503, RetryAfter: 1, Count: 1},
			graphemu.FaultRule{Route: graphemu.RouteProgressEvents, Status: 429, RetryAfter: 1, Count: 2},
		)
		start := time.Now()
		m, specs := smallRun(t, e, "throttle-short", itContainers[3].ID, 8, runMode{})
		if m.Status != state.MigrationCompleted {
			t.Fatalf("status %s (%s)", m.Status, m.Reason)
		}
		if n := e.stepErrors.Load(); n != 0 {
			t.Errorf("%d step errors: throttling surfaced", n)
		}
		after := e.emu.Counts()
		for route, faults := range map[string]int64{graphemu.RouteProvision: 2, graphemu.RouteCreateJob: 1, graphemu.RouteProgressEvents: 2} {
			if got := after[route] - before[route]; got < faults+1 {
				t.Errorf("%s: %d calls, want the %d throttled ones and a retry", route, got, faults)
			}
		}
		// Provisioning alone waited 1 s twice before it could proceed.
		if el := time.Since(start); el < 2*time.Second {
			t.Errorf("run took %s: Retry-After waits were not honoured", el)
		}
		e.verifyImport("throttle-short", itContainers[3].ID, specs)
		e.assertJobs("throttle-short")
	})
	t.Run("long Retry-After scheduled", func(t *testing.T) {
		// The client waits at most 500 ms in-process; a 2 s Retry-After
		// comes back as a throttle error and the step schedules itself.
		e := newITEnv(t, itOptions{maxRetryDelay: 500 * time.Millisecond})
		withFaults(t, e.emu,
			graphemu.FaultRule{Route: graphemu.RouteProgressEvents, Status: 429, RetryAfter: 2, Count: 1},
			graphemu.FaultRule{Route: graphemu.RouteProvision, Status: 503, RetryAfter: 2, Count: 1},
		)
		var polls []time.Time
		var mu sync.Mutex
		m, specs := smallRun(t, e, "throttle-long", itContainers[4].ID, 6, runMode{
			before: func(n queue.Message) {
				mu.Lock()
				defer mu.Unlock()
				if n.Step == queue.StepPoll {
					polls = append(polls, time.Now())
				}
			},
		})
		if m.Status != state.MigrationCompleted {
			t.Fatalf("status %s (%s)", m.Status, m.Reason)
		}
		if n := e.stepErrors.Load(); n != 0 {
			t.Errorf("%d step errors: throttling surfaced", n)
		}
		logs := e.logs.String()
		for _, want := range []string{"progress events throttled; poll rescheduled", "provisioning throttled; rescheduled"} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs lack %q", want)
			}
		}
		e.verifyImport("throttle-long", itContainers[4].ID, specs)
	})
}

func TestFatalJobError(t *testing.T) {
	cfg := itConfig()
	cfg.MaxAttempts = 2
	t.Run("retried then failed with its reason", func(t *testing.T) {
		e := newITEnv(t, itOptions{cfg: cfg})
		e.emu.ClearFaults()
		t.Cleanup(e.emu.ClearFaults)
		e.emu.AddJobFaults(graphemu.JobFaults{Fatal: "simulated manifest corruption"})
		e.emu.AddJobFaults(graphemu.JobFaults{Fatal: "simulated manifest corruption"})
		m, specs := smallRun(t, e, "fatal-twice", itContainers[5].ID, 5, runMode{})
		if m.Status != state.MigrationFailed {
			t.Fatalf("status %s, want failed", m.Status)
		}
		bs, err := e.st.ListBatches(context.Background(), "fatal-twice")
		if err != nil || len(bs) != 1 {
			t.Fatalf("batches %v %v", bs, err)
		}
		b := bs[0]
		if b.Status != state.BatchFailed || b.Attempt != 2 {
			t.Errorf("batch %s attempt %d", b.Status, b.Attempt)
		}
		for _, want := range []string{"after 2 attempts", "fatal", "simulated manifest corruption"} {
			if !strings.Contains(b.Reason, want) {
				t.Errorf("batch reason %q lacks %q", b.Reason, want)
			}
		}
		rs := e.results("fatal-twice")
		for p := range specs {
			r := rs[p]
			if r.Outcome == state.OutcomeSkipped {
				continue
			}
			if r.Outcome != state.OutcomeFailed || !strings.Contains(r.Reason, "simulated manifest corruption") {
				t.Errorf("%q: %s %q", p, r.Outcome, r.Reason)
			}
		}
		e.assertJobs("fatal-twice")
	})
	t.Run("retried then imported", func(t *testing.T) {
		e := newITEnv(t, itOptions{cfg: cfg})
		e.emu.ClearFaults()
		t.Cleanup(e.emu.ClearFaults)
		e.emu.AddJobFaults(graphemu.JobFaults{Fatal: "simulated transient failure"})
		cid := itContainers[6].ID
		m, specs := smallRun(t, e, "fatal-once", cid, 5, runMode{})
		if m.Status != state.MigrationCompleted {
			t.Fatalf("status %s (%s)", m.Status, m.Reason)
		}
		bs, _ := e.st.ListBatches(context.Background(), "fatal-once")
		if len(bs) != 1 || bs[0].Attempt != 2 || !strings.Contains(bs[0].Reason, "simulated transient failure") {
			t.Errorf("batches %+v", bs)
		}
		e.verifyImport("fatal-once", cid, specs)
		e.assertJobs("fatal-once")
	})
}

// privateEmulator runs a pipeline.Graph emulator of our own whose clock the test
// moves (the SAS it issued then expires in its eyes), over the stack's
// Azurite.
func privateEmulator(t *testing.T) (*graphemu.Server, *atomic.Int64) {
	t.Helper()
	var off atomic.Int64
	emu := startEmulator(t, graphemu.Config{Now: func() time.Time { return time.Now().Add(time.Duration(off.Load())) }})
	return emu, &off
}

// startEmulator runs a Graph emulator of the test's own (cfg with the
// default container, the stack's Azurite and a temporary data directory)
// until the test ends.
func startEmulator(t *testing.T, cfg graphemu.Config) *graphemu.Server {
	t.Helper()
	s := liveStack(t)
	cfg.Containers = []graphemu.Container{graphemu.DefaultContainer()}
	cfg.Storage = graphemu.Storage{BlobEndpoint: s.BlobEndpoint, Account: stack.AzuriteAccount, Key: stack.AzuriteKey}
	cfg.DataDir = t.TempDir()
	emu, err := graphemu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return emu
}

func TestExpiredSASReprovisions(t *testing.T) {
	t.Run("expired at Graph: invalidAzureResource", func(t *testing.T) {
		emu, off := privateEmulator(t)
		e := newITEnv(t, itOptions{emu: emu})
		first := true
		mode := runMode{
			before: func(n queue.Message) {
				if n.Step == queue.StepSubmit && first {
					off.Store(int64(73 * time.Hour)) // past the 72 h SAS
				}
			},
			after: func(n queue.Message, err error) {
				if n.Step == queue.StepSubmit && first {
					first = false
					off.Store(0)
				}
			},
		}
		m, specs := smallRun(t, e, "sas-expired", graphemu.DefaultContainer().ID, 6, mode)
		if m.Status != state.MigrationCompleted {
			t.Fatalf("status %s (%s)", m.Status, m.Reason)
		}
		bs, _ := e.st.ListBatches(context.Background(), "sas-expired")
		if len(bs) != 1 || bs[0].Attempt != 2 || !strings.Contains(bs[0].Reason, "invalidAzureResource") {
			t.Errorf("batch %+v: want a second attempt after invalidAzureResource", bs)
		}
		if c := emu.Counts()[graphemu.RouteProvision]; c != 2 {
			t.Errorf("%d provisions, want 2", c)
		}
		e.verifyImport("sas-expired", graphemu.DefaultContainer().ID, specs)
		e.assertJobs("sas-expired")
	})
	t.Run("under 12 h left at submit: re-provisioned before creating a job", func(t *testing.T) {
		emu, _ := privateEmulator(t)
		e := newITEnv(t, itOptions{emu: emu})
		first := true
		mode := runMode{
			before: func(n queue.Message) {
				if n.Step == queue.StepSubmit && first {
					e.clock.set(61 * time.Hour) // 11 h left on a 72 h SAS
				}
			},
			after: func(n queue.Message, err error) {
				if n.Step == queue.StepSubmit && first {
					first = false
					e.clock.set(0)
				}
			},
		}
		m, specs := smallRun(t, e, "sas-short", graphemu.DefaultContainer().ID, 6, mode)
		if m.Status != state.MigrationCompleted {
			t.Fatalf("status %s (%s)", m.Status, m.Reason)
		}
		bs, _ := e.st.ListBatches(context.Background(), "sas-short")
		if len(bs) != 1 || bs[0].Attempt != 1 {
			t.Errorf("batch %+v: a short SAS is not a failed attempt", bs)
		}
		counts := emu.Counts()
		if counts[graphemu.RouteProvision] != 2 || counts[graphemu.RouteCreateJob] != 1 {
			t.Errorf("provisions %d, job creations %d; want 2 and 1", counts[graphemu.RouteProvision], counts[graphemu.RouteCreateJob])
		}
		e.verifyImport("sas-short", graphemu.DefaultContainer().ID, specs)
	})
}

// secretRecorder remembers every SAS signature and key pipeline.Graph handed out.
type secretRecorder struct {
	pipeline.Graph
	mu      sync.Mutex
	secrets []string
}

func (r *secretRecorder) ProvisionContainers(ctx context.Context, c string) (graph.ContainerInfo, error) {
	info, err := r.Graph.ProvisionContainers(ctx, c)
	if err == nil {
		r.mu.Lock()
		r.secrets = append(r.secrets, info.EncryptionKey, sasSig(info.DataContainerURI), sasSig(info.MetadataContainerURI))
		r.mu.Unlock()
	}
	return info, err
}

func sasSig(u string) string {
	_, sig, _ := strings.Cut(u, "sig=")
	sig, _, _ = strings.Cut(sig, "&")
	return sig
}

func TestNoSecretsInLogsTablesOrErrors(t *testing.T) {
	cfg := itConfig()
	cfg.MaxAttempts = 2
	e := newITEnv(t, itOptions{cfg: cfg, maxRetryDelay: 500 * time.Millisecond})
	rec := &secretRecorder{Graph: e.jobs.Graph}
	e.jobs.Graph = rec
	// Take the error paths too: a fatal job, a long throttle, interruptions.
	withFaults(t, e.emu, graphemu.FaultRule{Route: graphemu.RouteCreateJob, Status: 429, RetryAfter: 2, Count: 1})
	e.emu.AddJobFaults(graphemu.JobFaults{Fatal: "simulated failure"})
	var errs []string
	var mu sync.Mutex
	m, _ := smallRun(t, e, "secrets", itContainers[7].ID, 8, runMode{
		interrupt: true,
		after: func(n queue.Message, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
			}
		},
	})
	if m.Status != state.MigrationCompleted {
		t.Fatalf("status %s (%s)", m.Status, m.Reason)
	}

	var dump strings.Builder
	dump.WriteString(e.logs.String())
	dump.WriteString(strings.Join(errs, "\n"))
	s := liveStack(t)
	ctx := context.Background()
	svc, err := aztables.NewServiceClientFromConnectionString(s.StorageConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range e.st.TableNames() {
		tc := svc.NewClient(name)
		pg := tc.NewListEntitiesPager(nil)
		for pg.More() {
			resp, err := pg.NextPage(ctx)
			if err != nil {
				t.Fatalf("table %s: %v", name, err)
			}
			for _, ent := range resp.Entities {
				dump.Write(ent)
				dump.WriteByte('\n')
			}
		}
	}
	text := dump.String()
	rec.mu.Lock()
	secrets := rec.secrets
	rec.mu.Unlock()
	if len(secrets) < 6 || len(errs) == 0 || !strings.Contains(text, "SealedDataURI") {
		t.Fatalf("the run did not exercise what this test searches (%d secrets, %d errors)", len(secrets), len(errs))
	}
	for _, sec := range secrets {
		if sec == "" {
			t.Fatal("a provisioned secret was empty")
		}
	}
	if strings.Contains(text, "sig=") {
		i := strings.Index(text, "sig=")
		t.Errorf("a SAS signature (even a redacted one) appears: …%s…", text[max(0, i-80):i+4])
	}
	// The scanner the chaos suite uses: SAS signatures, keys, bearer
	// tokens, and the provisioned secrets by value.
	sc := &secretscan.Scanner{Secrets: secrets}
	sc.Scan("logs, errors and table rows", text)
	for _, f := range sc.Findings() {
		t.Errorf("secret scan: %s", f)
	}
	t.Logf("searched %d KiB of logs, errors and table rows for %d secrets", len(text)/1024, len(secrets))
}
