package pipeline

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Unit tests of the state machine over in-memory fakes (pure logic). The
// same steps run against the real components in integration_test.go.

type harness struct {
	t     *testing.T
	w     *world
	st    *memStore
	snd   *fakeSender
	eng   *Engine
	f     *faults
	logs  *bytes.Buffer
	fails int // step errors (redeliveries)
	// concurrent delivers every message twice at the same time.
	concurrent bool
	// before runs before each delivery; it may change the world.
	before func(n queue.Message)
	// drop, when it returns true, loses the message (as if dead-lettered).
	drop func(n queue.Message) bool
}

func testEntries() []source.Entry {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	var es []source.Entry
	add := func(p string, size int64, version string) {
		es = append(es, source.Entry{Path: p, Size: size, Created: t0, Modified: t0.Add(time.Duration(len(es)) * time.Minute), VersionID: version})
	}
	for i := range 6 {
		add(fmt.Sprintf("docs/a/file%02d.txt", i), int64(100+i), "")
	}
	add("docs/a/desktop.ini", 10, "")
	add("docs/b/q:a.txt", 11, "")
	add("docs/b/ver.txt", 5, "v1")
	add("docs/b/ver.txt", 6, "v2")
	add("docs/b/ver.txt", 7, "")
	add("docs/c/reject.exe", 12, "")
	add("docs/c/unreadable.bin", 13, "")
	add("empty.txt", 0, "")
	for i := range 5 {
		add(fmt.Sprintf("z/ünï/%d.md", i), int64(i+1), "")
	}
	return es
}

type hopt func(*harness, *Deps, *Config)

func newHarness(t *testing.T, opts ...hopt) *harness {
	t.Helper()
	h := &harness{t: t, w: newWorld(), st: newMemStore(), snd: &fakeSender{}, f: &faults{}, logs: &bytes.Buffer{}}
	h.st.clock = h.w.clock
	deps := Deps{
		Store:   faultStore{h.st, h.f},
		Graph:   faultGraph{fakeGraph{h.w}, h.f},
		Stager:  faultStager{fakeStager{h.w}, h.f},
		Namer:   fakeNamer{},
		Planner: fakePlanner{3},
		Sources: fakeSources{fakeSource{testEntries()}},
		Sender:  faultSender{h.snd, h.f},
		Clock:   h.w.clock,
		Logger:  slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	cfg := Config{PageSize: 7, MaxAttempts: 3}
	for _, o := range opts {
		o(h, &deps, &cfg)
	}
	eng, err := New(deps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	return h
}

const migID = "m1"

func (h *harness) start() {
	h.t.Helper()
	for {
		_, err := h.eng.Start(context.Background(), &state.Migration{ID: migID, ContainerID: "b!container"})
		if err == nil {
			return
		}
		if !errors.Is(err, errInjected) {
			h.t.Fatalf("start: %v", err)
		}
		h.fails++
	}
}

// runUntilJob delivers messages until the first job exists.
func (h *harness) runUntilJob() {
	h.t.Helper()
	for len(h.w.jobs) == 0 {
		n, ok := h.snd.pop()
		if !ok {
			h.t.Fatal("queue drained before any job")
		}
		h.w.advance(n.NotBefore)
		if err := h.eng.Run(context.Background(), n); err != nil {
			h.t.Fatal(err)
		}
	}
}

// run delivers messages until none is left and a drain (after the clock
// moved past every deadline) finds nothing to re-drive. dup delivers every
// message twice.
func (h *harness) run(dup bool) {
	h.t.Helper()
	ctx := context.Background()
	for steps := 0; ; steps++ {
		if steps > 5000 {
			h.t.Fatalf("no convergence after %d deliveries", steps)
		}
		n, ok := h.snd.pop()
		if !ok {
			h.w.advance(h.w.clock().Add(2 * time.Hour))
			sent := h.snd.sent
			if _, err := h.eng.Drain(ctx); err != nil {
				if !errors.Is(err, errInjected) {
					h.t.Fatalf("drain: %v", err)
				}
				h.fails++
				continue
			}
			if h.snd.sent == sent {
				return
			}
			continue
		}
		h.w.advance(n.NotBefore)
		if h.before != nil {
			h.before(n)
		}
		if h.drop != nil && h.drop(n) {
			continue
		}
		if h.concurrent {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = h.eng.Run(ctx, n)
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil && !errors.Is(err, state.ErrContended) {
					h.t.Fatalf("%s: unexpected error: %v", n.MessageID(), err)
				}
			}
			if errs[0] != nil || errs[1] != nil {
				h.fails++
				h.requeue(n)
			}
			continue
		}
		deliveries := 1
		if dup {
			deliveries = 2
		}
		for range deliveries {
			if err := h.eng.Run(ctx, n); err != nil {
				if !errors.Is(err, errInjected) {
					h.t.Fatalf("%s: unexpected error: %v", n.MessageID(), err)
				}
				h.fails++
				h.requeue(n)
				break
			}
		}
	}
}

func (h *harness) requeue(n queue.Message) {
	n.NotBefore = time.Time{}
	h.snd.mu.Lock()
	h.snd.seq++
	h.snd.q = append(h.snd.q, queued{n, h.snd.seq})
	h.snd.mu.Unlock()
}

// snapshot is the observable end state.
type snapshot struct {
	Status  state.MigrationStatus
	Target  map[string]string
	Results map[string]string
	Batches map[string]string
	Count   state.MigrationCounters
}

func (h *harness) snapshot() snapshot {
	m := h.st.migs[migID]
	s := snapshot{Status: m.Status, Target: h.w.target, Results: map[string]string{}, Batches: map[string]string{}, Count: m.Counters}
	for _, r := range h.st.results {
		s.Results[r.SourcePath] = fmt.Sprintf("%s|%s|%s|%v|%s", r.Outcome, r.TargetPath, r.BatchID, r.Renamed, r.Reason)
	}
	for _, b := range h.st.batches {
		s.Batches[b.ID] = fmt.Sprintf("%s|%d|%s", b.Status, b.Attempt, b.Reason)
	}
	return s
}

func (h *harness) assertOneJobPerBatch() {
	h.t.Helper()
	live := h.w.liveJobs()
	for _, b := range h.st.batches {
		if b.Status == state.BatchCancelled {
			continue
		}
		if live[b.ID] != b.Attempt {
			h.t.Errorf("batch %s (attempt %d): %d jobs imported, want one per attempt", b.ID, b.Attempt, live[b.ID])
		}
	}
}

// interruptedSubmit is the reason a batch gets for an attempt whose submit
// was interrupted.
const interruptedSubmit = "attempt 1 failed: its submit was interrupted (the intent expired without a recorded job id); a job it may have created imports only that attempt's package"

// assertAtMostOneJobPerAttempt: no attempt of a batch imported twice, and
// the batch's last attempt imported once.
func (h *harness) assertAtMostOneJobPerAttempt(name string) {
	h.t.Helper()
	live := h.w.liveJobsByAttempt()
	for k, n := range live {
		if n > 1 {
			h.t.Errorf("%s: batch|attempt %s has %d imported jobs, want at most one", name, k, n)
		}
	}
	for _, b := range h.st.batches {
		if b.Status != state.BatchCancelled && live[fmt.Sprintf("%s|%d", b.ID, b.Attempt)] != 1 {
			h.t.Errorf("%s: batch %s's last attempt %d has %d imported jobs, want one", name, b.ID, b.Attempt, live[fmt.Sprintf("%s|%d", b.ID, b.Attempt)])
		}
	}
}

func TestHappyPath(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.run(false)
	s := h.snapshot()
	if s.Status != state.MigrationCompletedWithErrors {
		t.Fatalf("status %s, want completedWithErrors", s.Status)
	}
	if h.fails != 0 {
		t.Errorf("%d step errors in a clean run", h.fails)
	}
	wantTarget := map[string]string{"docs/b/q_a.txt": "docs/b/q:a.txt", "docs/b/ver.txt": "docs/b/ver.txt", "empty.txt": "empty.txt"}
	for i := range 6 {
		p := fmt.Sprintf("docs/a/file%02d.txt", i)
		wantTarget[p] = p
	}
	for i := range 5 {
		p := fmt.Sprintf("z/ünï/%d.md", i)
		wantTarget[p] = p
	}
	if !reflect.DeepEqual(s.Target, wantTarget) {
		t.Errorf("target:\n got %v\nwant %v", s.Target, wantTarget)
	}
	for path, want := range map[string]string{
		"docs/a/desktop.ini":    "skipped||",
		"docs/b/q:a.txt":        "renamed|docs/b/q_a.txt|",
		"docs/c/reject.exe":     "failed|docs/c/reject.exe|",
		"docs/c/unreadable.bin": "failed|docs/c/unreadable.bin|",
		"empty.txt":             "imported|empty.txt|",
	} {
		if got := s.Results[path]; !strings.HasPrefix(got, want) {
			t.Errorf("result %s = %q, want prefix %q", path, got, want)
		}
	}
	for path, reason := range map[string]string{
		"docs/a/desktop.ini":    "reserved-name",
		"docs/b/q:a.txt":        "invalid-character",
		"docs/c/reject.exe":     "File type is blocked",
		"docs/c/unreadable.bin": "source could not be read",
	} {
		if !strings.Contains(s.Results[path], reason) {
			t.Errorf("result %s = %q lacks reason %q", path, s.Results[path], reason)
		}
	}
	// 17 files (ver.txt's three versions are one file), one skipped.
	c := s.Count
	if c.Entries != 17 || c.Skipped != 1 || c.Items != 16 || c.Renamed != 1 || c.FilesMigrated != 14 || c.FilesFailed != 2 {
		t.Errorf("counters %+v", c)
	}
	if c.Batches != c.BatchesDone || c.Batches == 0 {
		t.Errorf("batches %d, done %d", c.Batches, c.BatchesDone)
	}
	h.assertOneJobPerBatch()
	if len(h.st.results) != 17 {
		t.Errorf("%d item results, want 17", len(h.st.results))
	}
}

func TestEveryMessageTwice(t *testing.T) {
	ref := newHarness(t)
	ref.start()
	ref.run(false)

	h := newHarness(t)
	h.start()
	h.start()
	h.run(true)
	if got, want := h.snapshot(), ref.snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("end state differs when every message runs twice:\n got %+v\nwant %+v", got, want)
	}
	h.assertOneJobPerBatch()
}

// TestConcurrentDuplicates delivers every message twice at once: ETag
// races, the submit lease and the poll sequence must still give one job per
// batch and the same end state.
func TestConcurrentDuplicates(t *testing.T) {
	ref := newHarness(t)
	ref.start()
	ref.run(false)
	for range 20 {
		h := newHarness(t)
		h.concurrent = true
		h.start()
		h.run(false)
		if got, want := h.snapshot(), ref.snapshot(); !reflect.DeepEqual(got, want) {
			t.Fatalf("end state differs under concurrent duplicates:\n got %+v\nwant %+v", got, want)
		}
		h.assertOneJobPerBatch()
	}
}

// TestCrashAtEveryCall fails each dependency call of a clean run in turn,
// once before it takes effect and once after (the effect happened but the
// step sees an error, as if it crashed on the next line), redelivers, and
// checks that the end state is the clean run's.
func TestCrashAtEveryCall(t *testing.T) {
	ref := newHarness(t)
	ref.start()
	ref.run(false)
	want := ref.snapshot()
	total := ref.f.calls

	for _, after := range []bool{false, true} {
		for at := 1; at <= total; at++ {
			h := newHarness(t)
			h.f.at, h.f.after = at, after
			h.start()
			h.run(false)
			name := fmt.Sprintf("call %d (%s, after=%v)", at, h.f.hitOp, after)
			got := h.snapshot()
			// A crash between the submit intent and the job's record
			// (CreateJob, or the intent write landing unseen) leaves a job
			// Graph may have made with its id lost (see Engine.Submit):
			// that attempt counts as failed and the next has its own
			// package. The target, items and counters are the clean run's;
			// the batch is one attempt further.
			got.Batches = maps.Clone(got.Batches)
			for id, v := range got.Batches {
				v = strings.Replace(v, "|2|"+interruptedSubmit, "|1|", 1)
				got.Batches[id] = strings.Replace(v, "|1|; ", "|1|", 1)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: end state differs:\n got %+v\nwant %+v", name, got, want)
			}
			h.assertAtMostOneJobPerAttempt(name)
		}
	}
	t.Logf("%d calls in a clean run, each failed before and after", total)
}

func TestFatalErrorRetriesThenFails(t *testing.T) {
	h := newHarness(t, func(h *harness, _ *Deps, _ *Config) {
		h.w.fatal = func(batch string, nth int) bool { return batch == BatchID(0, 0) }
	})
	h.start()
	h.run(false)
	b := h.st.batches[bkey(migID, BatchID(0, 0))]
	if b.Status != state.BatchFailed || b.Attempt != 3 {
		t.Fatalf("batch %s: %s attempt %d, want failed after 3", b.ID, b.Status, b.Attempt)
	}
	for _, want := range []string{"after 3 attempts", "fatal", "could not be decrypted"} {
		if !strings.Contains(b.Reason, want) {
			t.Errorf("reason %q lacks %q", b.Reason, want)
		}
	}
	r := h.st.results[migID+"|docs/a/file00.txt"]
	if r.Outcome != state.OutcomeFailed || !strings.Contains(r.Reason, "after 3 attempts") {
		t.Errorf("item result %+v", r)
	}
	if live := h.w.liveJobs()[b.ID]; live != 3 {
		t.Errorf("%d jobs for the failing batch, want 3 (one per attempt)", live)
	}
	if s := h.snapshot(); s.Status != state.MigrationCompletedWithErrors || s.Count.BatchesFailed != 1 {
		t.Errorf("migration %s, batches failed %d", s.Status, s.Count.BatchesFailed)
	}

	// A fatal error on the first job only: the retry imports the batch.
	h2 := newHarness(t, func(h *harness, _ *Deps, _ *Config) {
		h.w.fatal = func(batch string, nth int) bool { return batch == BatchID(0, 0) && nth == 1 }
	})
	h2.start()
	h2.run(false)
	b = h2.st.batches[bkey(migID, BatchID(0, 0))]
	if b.Status != state.BatchSucceeded || b.Attempt != 2 || !strings.Contains(b.Reason, "attempt 1 failed") {
		t.Errorf("batch after one fatal: %s attempt %d reason %q", b.Status, b.Attempt, b.Reason)
	}
	if _, ok := h2.w.target["docs/a/file00.txt"]; !ok {
		t.Error("retried batch not imported")
	}
}

func TestThrottleIsScheduledNotSurfaced(t *testing.T) {
	h := newHarness(t, func(h *harness, _ *Deps, _ *Config) {
		h.w.throttle = map[string]int{"provision": 2, "create": 2, "events": 2}
		h.w.retryAfter = 10 * time.Minute
	})
	start := h.w.clock()
	var throttledAt []time.Time
	h.before = func(n queue.Message) {
		if strings.Contains(n.Nonce, "t") {
			throttledAt = append(throttledAt, n.NotBefore)
		}
	}
	h.start()
	h.run(false)
	if h.fails != 0 {
		t.Errorf("%d step errors; throttling must not surface", h.fails)
	}
	if s := h.snapshot(); s.Status != state.MigrationCompletedWithErrors || s.Count.FilesMigrated != 14 {
		t.Errorf("status %s migrated %d", s.Status, s.Count.FilesMigrated)
	}
	if len(throttledAt) < 4 {
		t.Errorf("%d rescheduled stage/submit messages, want 4", len(throttledAt))
	}
	for _, at := range throttledAt {
		if at.Sub(start) < 10*time.Minute {
			t.Errorf("rescheduled for %s, before Retry-After", at)
		}
	}
	h.assertOneJobPerBatch()
}

func TestSASExpiryReprovisions(t *testing.T) {
	h := newHarness(t)
	// The first batch's staging takes a day and a half: at submit its SAS
	// has < 12 h left.
	first := true
	h.before = func(n queue.Message) {
		if n.Step == queue.StepSubmit && first {
			first = false
			h.w.advance(h.w.clock().Add(40 * time.Hour))
		}
	}
	h.start()
	h.run(false)
	batches := len(h.st.batches)
	if h.w.provisions <= batches {
		t.Errorf("%d provisions for %d batches: no re-provisioning", h.w.provisions, batches)
	}
	if s := h.snapshot(); s.Count.FilesMigrated != 14 {
		t.Errorf("migrated %d", s.Count.FilesMigrated)
	}
	for _, b := range h.st.batches {
		if b.Attempt != 1 {
			t.Errorf("batch %s attempt %d: a short SAS is not a failed attempt", b.ID, b.Attempt)
		}
	}
	h.assertOneJobPerBatch()
}

func TestInvalidAzureResourceReprovisions(t *testing.T) {
	h := newHarness(t)
	// Containers expire between staging and submit (faster than the 12 h
	// rule can see): the create call is refused with invalidAzureResource.
	done := map[string]bool{}
	h.before = func(n queue.Message) {
		if n.Step == queue.StepSubmit && n.BatchID == BatchID(0, 0) && !done[n.BatchID] {
			done[n.BatchID] = true
			h.w.mu.Lock()
			h.w.sasValidity = 48 * time.Hour
			h.w.mu.Unlock()
			b := h.st.batches[bkey(migID, n.BatchID)]
			b.SASExpiry = h.w.clock().Add(72 * time.Hour) // our record is stale
			h.st.batches[bkey(migID, n.BatchID)] = b
			h.w.advance(h.w.clock().Add(49 * time.Hour))
		}
	}
	h.start()
	h.run(false)
	b := h.st.batches[bkey(migID, BatchID(0, 0))]
	if b.Status != state.BatchSucceeded || b.Attempt != 2 || !strings.Contains(b.Reason, "invalidAzureResource") {
		t.Errorf("batch %s attempt %d reason %q", b.Status, b.Attempt, b.Reason)
	}
}

func TestCancel(t *testing.T) {
	h := newHarness(t)
	h.start()
	// Deliver until the first job exists, then cancel.
	ctx := context.Background()
	h.runUntilJob()
	if err := h.eng.Cancel(ctx, migID); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.Cancel(ctx, migID); err != nil {
		t.Fatal(err)
	}
	h.run(false)
	s := h.snapshot()
	if s.Status != state.MigrationCancelled {
		t.Fatalf("status %s", s.Status)
	}
	if !h.w.jobs[0].deleted {
		t.Error("the queued job was not deleted")
	}
	if len(h.w.jobs) != 1 {
		t.Errorf("%d jobs created after cancel", len(h.w.jobs)-1)
	}
	if len(s.Target) != 0 {
		t.Errorf("imported after cancel: %v", s.Target)
	}
	for _, b := range h.st.batches {
		if b.Status != state.BatchCancelled {
			t.Errorf("batch %s %s", b.ID, b.Status)
		}
	}
	if r := h.st.results[migID+"|docs/a/file00.txt"]; r.Outcome != state.OutcomeCancelled {
		t.Errorf("item %+v", r)
	}
}

func TestCancelLetsRunningJobFinish(t *testing.T) {
	h := newHarness(t)
	h.start()
	ctx := context.Background()
	// Run until the first job has started (its first poll read events).
	for len(h.w.jobs) == 0 || !h.w.jobs[0].started {
		n, ok := h.snd.pop()
		if !ok {
			t.Fatal("queue drained")
		}
		h.w.advance(n.NotBefore)
		if err := h.eng.Run(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.eng.Cancel(ctx, migID); err != nil {
		t.Fatal(err)
	}
	h.run(false)
	b := h.st.batches[bkey(migID, BatchID(0, 0))]
	if b.Status != state.BatchSucceeded {
		t.Errorf("started batch ended %s, want succeeded", b.Status)
	}
	if s := h.snapshot(); s.Status != state.MigrationCancelled {
		t.Errorf("status %s", s.Status)
	}
}

func TestDrainRedrivesLostMessages(t *testing.T) {
	for _, lose := range []queue.Step{queue.StepProvision, queue.StepStageBatch, queue.StepSubmit, queue.StepPoll} {
		t.Run(string(lose), func(t *testing.T) {
			h := newHarness(t)
			lost := map[string]bool{}
			h.drop = func(n queue.Message) bool {
				if n.Step == lose && n.Nonce == "" && !lost[n.BatchID] {
					lost[n.BatchID] = true
					return true
				}
				return false
			}
			h.start()
			h.run(false)
			if s := h.snapshot(); s.Status != state.MigrationCompletedWithErrors || s.Count.FilesMigrated != 14 {
				t.Errorf("after losing %s messages: status %s migrated %d", lose, s.Status, s.Count.FilesMigrated)
			}
			h.assertOneJobPerBatch()
		})
	}
}

func TestStalePollIsDropped(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.run(false)
	before := h.snapshot()
	calls := h.f.calls
	// A poll delivered long after the batch finished changes nothing.
	if err := h.eng.Poll(context.Background(), migID, BatchID(0, 0), 1, 0); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.snapshot(), before) {
		t.Error("a stale poll changed the state")
	}
	if h.f.calls-calls > 3 {
		t.Errorf("a stale poll made %d calls", h.f.calls-calls)
	}
}

func TestNoSecretsInLogsOrState(t *testing.T) {
	h := newHarness(t, func(h *harness, _ *Deps, _ *Config) {
		h.w.fatal = func(batch string, nth int) bool { return batch == BatchID(0, 1) && nth == 1 }
		h.w.throttle = map[string]int{"create": 1}
	})
	h.f.at = 40 // one failure on the way, so error paths log too
	h.start()
	h.run(false)
	var dump strings.Builder
	dump.WriteString(h.logs.String())
	for _, m := range h.st.migs {
		fmt.Fprintf(&dump, "%+v\n", m)
	}
	// The fake store holds batches' containers in plaintext (sealing them
	// at rest is the real store's job, checked by
	// TestNoSecretsInLogsTablesOrErrors); what the engine writes in words
	// must be free of them.
	for _, b := range h.st.batches {
		fmt.Fprintf(&dump, "%s %s\n", b.Reason, b.FatalReason)
	}
	for _, r := range h.st.results {
		fmt.Fprintf(&dump, "%+v\n", r)
	}
	text := dump.String()
	if h.logs.Len() == 0 || !strings.Contains(text, "attempt 1 failed") {
		t.Fatal("the dump holds no logs or no failure reason; the test would prove nothing")
	}
	keys := []string{"sig=", "SECRETSIG"}
	for n := 1; n <= h.w.provisions; n++ {
		keys = append(keys, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(n)}, 32)))
	}
	for _, k := range keys {
		if strings.Contains(text, k) {
			t.Errorf("logs or state contain %q", k)
		}
	}
}

func TestStartIsIdempotent(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.start()
	if n := len(h.snd.q); n != 2 {
		t.Fatalf("%d plan messages", n)
	}
	a, b := h.snd.q[0].n.MessageID(), h.snd.q[1].n.MessageID()
	if a != b {
		t.Errorf("redelivered start sent %q and %q; same id expected for de-duplication", a, b)
	}
	h.run(false)
	// Once planning has begun, a late duplicate start sends nothing.
	sent := h.snd.sent
	h.start()
	if h.snd.sent != sent {
		t.Error("late duplicate start re-sent a plan message")
	}
}

func TestMessageIDs(t *testing.T) {
	ids := map[string]bool{}
	for _, n := range []queue.Message{
		{Step: queue.StepProvision, MigrationID: "m", Page: 1},
		{Step: queue.StepProvision, MigrationID: "m", Page: 2},
		{Step: queue.StepStageBatch, MigrationID: "m", BatchID: "b", Attempt: 1},
		{Step: queue.StepStageBatch, MigrationID: "m", BatchID: "b", Attempt: 2},
		{Step: queue.StepSubmit, MigrationID: "m", BatchID: "b", Attempt: 1},
		{Step: queue.StepPoll, MigrationID: "m", BatchID: "b", Attempt: 1, Seq: 0},
		{Step: queue.StepPoll, MigrationID: "m", BatchID: "b", Attempt: 1, Seq: 1},
		{Step: queue.StepPoll, MigrationID: "m", BatchID: "b", Attempt: 1, Seq: 1, Nonce: "d1"},
	} {
		id := n.MessageID()
		if ids[id] {
			t.Errorf("duplicate message id %s", id)
		}
		ids[id] = true
	}
	keys := make([]string, 0, len(ids))
	for k := range ids {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Log(keys)
}

type badSources struct{}

func (badSources) Source(ctx context.Context, m *state.Migration) (source.Source, error) {
	return nil, &request.Error{Fields: []request.FieldError{{Field: "source.path", Message: "must be absolute"}}}
}

func TestInvalidRequestFailsMigration(t *testing.T) {
	h := newHarness(t, func(_ *harness, d *Deps, _ *Config) { d.Sources = badSources{} })
	h.start()
	h.run(false)
	m := h.st.migs[migID]
	if m.Status != state.MigrationFailed || !strings.Contains(m.Reason, "source.path") {
		t.Errorf("migration %s reason %q", m.Status, m.Reason)
	}
	if h.fails != 0 {
		t.Errorf("%d redeliveries for a permanent error", h.fails)
	}
}

func TestPostponedJobIsPolledAtPickup(t *testing.T) {
	e := &Engine{cfg: Config{}.withDefaults()}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &state.Batch{LastEventAt: now}
	if got := e.nextPoll(b, now, false, now.Add(3*time.Minute)); !got.Equal(now.Add(3 * time.Minute)) {
		t.Errorf("postponed to +3m: next poll %s", got.Sub(now))
	}
	if got := e.nextPoll(b, now, false, now.Add(3*time.Hour)); !got.Equal(now.Add(5 * time.Minute)) {
		t.Errorf("postponed to +3h: next poll %s, want the 5 min idle cap", got.Sub(now))
	}
	if got := e.nextPoll(b, now, true, time.Time{}); !got.Equal(now) {
		t.Errorf("more pages: next poll %s, want now", got.Sub(now))
	}
	if got := e.nextPoll(&state.Batch{LastEventAt: now.Add(-2 * time.Hour)}, now, false, time.Time{}); !got.Equal(now.Add(5 * time.Minute)) {
		t.Errorf("silent job: next poll %s, want the idle interval", got.Sub(now))
	}
}

// TestStaleCursorRestartsPaging: a refused progress cursor starts paging
// again from the first event (stored once by id) instead of retrying the
// same cursor until the message dead-letters; the outcome is the same as
// without the refusals.
func TestStaleCursorRestartsPaging(t *testing.T) {
	plain := newHarness(t, func(h *harness, _ *Deps, c *Config) { h.w.slowJobs = true })
	plain.start()
	plain.run(false)
	h := newHarness(t, func(h *harness, _ *Deps, c *Config) { h.w.staleCursors, h.w.slowJobs = 3, true })
	h.start()
	h.run(false)
	if h.w.staleCursors != 0 {
		t.Fatalf("%d stale cursors left: the test did not exercise them", h.w.staleCursors)
	}
	want, got := plain.snapshot(), h.snapshot()
	if got.Status != want.Status || got.Count != want.Count || !reflect.DeepEqual(got.Results, want.Results) || !reflect.DeepEqual(got.Batches, want.Batches) {
		t.Errorf("with refused cursors: %s %+v\nwithout: %s %+v", got.Status, got.Count, want.Status, want.Count)
	}
	h.assertOneJobPerBatch()
}

// TestAccessDeniedIsPermanent: a 403 from Graph fails the batch at once,
// without new attempts or restages, with a reason naming the permission.
func TestAccessDeniedIsPermanent(t *testing.T) {
	h := newHarness(t, func(h *harness, _ *Deps, _ *Config) { h.w.denyCreate = true })
	h.start()
	h.run(false)
	s := h.snapshot()
	if s.Status != state.MigrationFailed {
		t.Fatalf("status %s", s.Status)
	}
	if h.w.provisions != len(s.Batches) {
		t.Errorf("%d provisions for %d batches: a 403 was retried with a restage", h.w.provisions, len(s.Batches))
	}
	for id, b := range s.Batches {
		if !strings.HasPrefix(b, "failed|1|") || !strings.Contains(b, "FileStorageContainer.Selected") {
			t.Errorf("batch %s: %s", id, b)
		}
	}
	for p, r := range s.Results {
		if !strings.HasPrefix(r, "failed|") && !strings.HasPrefix(r, "skipped|") {
			t.Errorf("%s: %s", p, r)
		}
	}
}

// TestRestartedFatalIsNotTheOutcome: a fatal error SharePoint recovered
// from by restarting the job does not fail the batch.
func TestRestartedFatalIsNotTheOutcome(t *testing.T) {
	h := newHarness(t, func(h *harness, _ *Deps, c *Config) {
		h.w.fatal = func(batch string, nth int) bool { return batch == BatchID(0, 1) && nth == 1 }
		h.w.restartFatal = true
	})
	h.start()
	h.run(false)
	s := h.snapshot()
	if b := s.Batches[BatchID(0, 1)]; !strings.HasPrefix(b, "succeeded|1|") {
		t.Errorf("restarted batch: %s; want succeeded in its first attempt", b)
	}
	if got := h.w.liveJobs()[BatchID(0, 1)]; got != 1 {
		t.Errorf("%d jobs for the restarted batch, want 1", got)
	}
}

// TestUnreconciledErrorsAreReported: totalErrors beyond the error events
// makes the batch completedWithErrors with the count, and every item it
// reports imported carries the doubt.
func TestUnreconciledErrorsAreReported(t *testing.T) {
	h := newHarness(t, func(h *harness, _ *Deps, _ *Config) { h.w.phantomErrors = 2 })
	h.start()
	h.run(false)
	s := h.snapshot()
	b := s.Batches[BatchID(0, 0)]
	if !strings.HasPrefix(b, "completedWithErrors|1|") || !strings.Contains(b, "2 errors counted by SharePoint (totalErrors) without an error event") {
		t.Errorf("batch: %s", b)
	}
	if r := s.Results["docs/a/file00.txt"]; !strings.HasPrefix(r, "imported|") || !strings.Contains(r, "did not tie to an item") {
		t.Errorf("item of that batch: %s", r)
	}
}

// TestDeleteAnsweredButJobRan: a delete that answers 204 while the job
// starts anyway does not report its imported items as cancelled: the events
// decide.
func TestDeleteAnsweredButJobRan(t *testing.T) {
	h := newHarness(t, func(h *harness, _ *Deps, _ *Config) { h.w.raceDelete = true })
	h.start()
	ctx := context.Background()
	h.runUntilJob()
	if err := h.eng.Cancel(ctx, migID); err != nil {
		t.Fatal(err)
	}
	h.run(false)
	first := h.w.jobs[0]
	if !first.started {
		t.Fatal("the first job did not run; the test proves nothing")
	}
	for i, it := range first.items {
		r := h.st.results[migID+"|"+it.Path]
		if _, bad := first.failed[i]; bad || strings.Contains(it.Target, "reject") {
			continue
		}
		if r.Outcome != state.OutcomeImported && r.Outcome != state.OutcomeRenamed {
			t.Errorf("%s: %s after the job that imported it ran; want imported", it.Path, r.Outcome)
		}
	}
	if s := h.snapshot(); s.Status != state.MigrationCancelled {
		t.Errorf("status %s, want cancelled (the rest was)", s.Status)
	}
}

// TestJobsPerContainerCapped: no more than MaxJobsPerContainer jobs are in
// flight in a container at once; the others wait for a slot, and all
// batches still finish.
func TestJobsPerContainerCapped(t *testing.T) {
	var h *harness
	peak := 0
	h = newHarness(t, func(hh *harness, _ *Deps, c *Config) {
		c.MaxJobsPerContainer = 2
		hh.w.slowJobs = true // a job stays running over more than one poll
		hh.w.onCreate = func() {
			hh.st.mu.Lock()
			defer hh.st.mu.Unlock()
			n := 0
			for _, b := range hh.st.batches {
				if b.Status == state.BatchRunning || b.Status == state.BatchSubmitting {
					n++
				}
			}
			peak = max(peak, n)
		}
	})
	h.start()
	h.run(false)
	s := h.snapshot()
	if s.Status != state.MigrationCompletedWithErrors || s.Count.BatchesDone != s.Count.Batches || s.Count.Batches < 4 {
		t.Fatalf("status %s, %d of %d batches done", s.Status, s.Count.BatchesDone, s.Count.Batches)
	}
	if peak > 2 || peak == 0 {
		t.Errorf("%d jobs in flight in the container at a job creation; the cap is 2", peak)
	}
	h.assertOneJobPerBatch()
}

// TestWarningsReachTheItem: a warning SharePoint ties to an item (an author
// it could not resolve and replaced with System Account) is in that item's
// report row; the item still counts as imported.
func TestWarningsReachTheItem(t *testing.T) {
	const msg = "user i:0#.f|membership|gone@former.example could not be resolved; System Account was used"
	h := newHarness(t, func(h *harness, _ *Deps, _ *Config) {
		h.w.warn = map[string]string{"docs/a/file01.txt": msg}
	})
	h.start()
	h.run(false)
	r := h.snapshot().Results["docs/a/file01.txt"]
	if !strings.HasPrefix(r, "imported|") || !strings.Contains(r, "SharePoint warning") || !strings.Contains(r, "System Account") {
		t.Errorf("warned item: %s", r)
	}
	if r := h.snapshot().Results["docs/a/file00.txt"]; strings.Contains(r, "warning") {
		t.Errorf("another item got the warning: %s", r)
	}
}

// TestReportRowsNameJobAndCode: a report row says which job and attempt
// decided it, the source version read, and for a failed item SharePoint's
// error code.
func TestReportRowsNameJobAndCode(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.run(false)
	bad := h.st.results[migID+"|docs/c/reject.exe"]
	if bad.Outcome != state.OutcomeFailed || bad.ResultCode != "-2147024816" || bad.JobID == "" || bad.Attempt != 1 {
		t.Errorf("failed row: %+v", bad)
	}
	ok := h.st.results[migID+"|docs/a/file00.txt"]
	if ok.Outcome != state.OutcomeImported || ok.JobID == "" || ok.Attempt != 1 || ok.ResultCode != "" {
		t.Errorf("imported row: %+v", ok)
	}
}

type redirectingSource struct{ fakeSource }

func (redirectingSource) List(context.Context, string, int) (source.Page, error) {
	return source.Page{}, fmt.Errorf("list: %w", &source.RedirectError{From: "https://a.blob.core.windows.net", To: "http://127.0.0.1:9"})
}

// TestRedirectingSourceFailsAtOnce: a source endpoint that redirects to
// another host fails the migration with that reason on the first delivery,
// rather than being retried until the message dead-letters.
func TestRedirectingSourceFailsAtOnce(t *testing.T) {
	h := newHarness(t, func(_ *harness, d *Deps, _ *Config) { d.Sources = fakeSources{redirectingSource{}} })
	h.start()
	n, _ := h.snd.pop()
	if err := h.eng.Run(context.Background(), n); err != nil {
		t.Fatalf("first delivery: %v; want the failure recorded, not a retry", err)
	}
	m := h.st.migs[migID]
	if m.Status != state.MigrationFailed || !strings.Contains(m.Reason, "redirect") {
		t.Errorf("migration %s %q", m.Status, m.Reason)
	}
}
