package pipeline

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/state"
)

// This file holds in-memory fakes for the unit tests of the state machine.
// They model only what the steps rely on; the integration tests run the
// same steps against Azurite, the Service Bus emulator and the Graph
// emulator.

type world struct {
	mu     sync.Mutex
	now    time.Time
	target map[string]string // target path -> source path imported there
	jobs   []*fakeJob
	staged map[string]stagedPkg // data container URI -> package

	sasValidity time.Duration
	// fatal decides whether a job of batch (attempt-th job) fails fatally.
	fatal func(batchID string, nth int) bool
	// throttle makes the next n calls of op return 429 with retryAfter.
	throttle   map[string]int
	retryAfter time.Duration
	// staleCursors makes the next n event reads with a cursor fail as a
	// refused cursor (400), as the service may after a long pause.
	staleCursors int
	// slowJobs makes a job's first events read show it queued only, so a
	// second read (with a cursor) is needed.
	slowJobs bool
	// denyCreate makes job creation answer 403, as for an app without
	// FileStorageContainer.Selected.
	denyCreate bool
	// restartFatal makes a job that hits its fatal error restart itself
	// (a Start with isRestarted) and then import.
	restartFatal bool
	// phantomErrors adds to a job's totalErrors without error events.
	phantomErrors int
	// raceDelete makes a delete answer 204 while the job starts anyway.
	raceDelete bool
	// onCreate, when set, runs at every job creation (world unlocked).
	onCreate func()
	// warn makes the import warn about these targets (target -> message),
	// as SharePoint does when it replaces an author it cannot resolve.
	warn       map[string]string
	provisions int
}

type stagedPkg struct {
	batchID string
	attempt int
	items   []state.Item
	failed  map[int]string
}

type fakeJob struct {
	id, container, batchID string
	attempt                int
	items                  []state.Item
	failed                 map[int]string
	deleted, started       bool
	reads                  int
	events                 []graph.Event
}

func newWorld() *world {
	return &world{
		now:         time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC),
		target:      map[string]string{},
		staged:      map[string]stagedPkg{},
		sasValidity: 48 * time.Hour,
		throttle:    map[string]int{},
		retryAfter:  90 * time.Second,
		fatal:       func(string, int) bool { return false },
	}
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) advance(to time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if to.After(w.now) {
		w.now = to
	}
}

// liveJobs counts, per batch, the jobs that were not deleted.
func (w *world) liveJobs() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := map[string]int{}
	for _, j := range w.jobs {
		if !j.deleted {
			n[j.batchID]++
		}
	}
	return n
}

// liveJobsByAttempt counts the jobs that were not deleted per batch and
// attempt ("batch|attempt").
func (w *world) liveJobsByAttempt() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := map[string]int{}
	for _, j := range w.jobs {
		if !j.deleted {
			n[fmt.Sprintf("%s|%d", j.batchID, j.attempt)]++
		}
	}
	return n
}

func (w *world) throttled(op string) error {
	if w.throttle[op] > 0 {
		w.throttle[op]--
		return &graph.Error{Op: op, StatusCode: http.StatusTooManyRequests, Code: "activityLimitReached", RetryAfter: w.retryAfter}
	}
	return nil
}

// ---- Graph ----

type fakeGraph struct{ w *world }

func (g fakeGraph) ProvisionContainers(ctx context.Context, containerID string) (graph.ContainerInfo, error) {
	w := g.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.throttled("provision"); err != nil {
		return graph.ContainerInfo{}, err
	}
	w.provisions++
	se := w.now.Add(w.sasValidity).Format(time.RFC3339)
	n := w.provisions
	return graph.ContainerInfo{
		DataContainerURI:     fmt.Sprintf("https://fake.blob/data%d?se=%s&sp=rw&sig=SECRETSIG%d", n, se, n),
		MetadataContainerURI: fmt.Sprintf("https://fake.blob/meta%d?se=%s&sp=rw&sig=SECRETSIG%d", n, se, n),
		EncryptionKey:        base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(n)}, 32)),
	}, nil
}

func (g fakeGraph) CreateJob(ctx context.Context, containerID string, info graph.ContainerInfo) (string, error) {
	w := g.w
	if w.onCreate != nil {
		w.onCreate()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.throttled("create"); err != nil {
		return "", err
	}
	if w.denyCreate {
		return "", &graph.Error{Op: "createMigrationJob", StatusCode: http.StatusForbidden, Code: "accessDenied", Message: "Access denied"}
	}
	if exp, _ := info.Expiry(); !exp.After(w.now) {
		return "", &graph.Error{Op: "create", StatusCode: 400, Code: "migrationBadRequest", InnerCode: "invalidAzureResource"}
	}
	pkg, ok := w.staged[info.DataContainerURI]
	if !ok {
		return "", errors.New("fake: nothing staged in these containers")
	}
	j := &fakeJob{id: fmt.Sprintf("job-%d", len(w.jobs)+1), container: containerID, batchID: pkg.batchID, attempt: pkg.attempt, items: pkg.items, failed: pkg.failed}
	j.events = append(j.events, ev(j, graph.KindQueued))
	w.jobs = append(w.jobs, j)
	return j.id, nil
}

func (g fakeGraph) DeleteJob(ctx context.Context, containerID, jobID string) error {
	w := g.w
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, j := range w.jobs {
		if j.id == jobID && !j.started && !j.deleted && w.raceDelete {
			return nil
		}
		if j.id == jobID && !j.started && !j.deleted {
			j.deleted = true
			j.events = append(j.events, ev(j, graph.KindDeleted))
			return nil
		}
	}
	return &graph.Error{Op: "delete", StatusCode: 404, Code: "migrationNotFound", InnerCode: "jobNotFound"}
}

func ev(j *fakeJob, k graph.EventKind) graph.Event {
	return graph.Event{Kind: k, ID: fmt.Sprintf("%s-e%d", j.id, len(j.events)), JobID: j.id}
}

// Events runs the job on its first read: a job imports as soon as anyone
// looks, which keeps the fake simple and deterministic.
func (g fakeGraph) Events(ctx context.Context, containerID, jobID, cursor string) (graph.EventBatch, error) {
	w := g.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.throttled("events"); err != nil {
		return graph.EventBatch{}, err
	}
	if cursor != "" && w.staleCursors > 0 {
		w.staleCursors--
		return graph.EventBatch{}, &graph.Error{Op: graph.OpListEvents, StatusCode: http.StatusBadRequest, Code: "invalidRequest"}
	}
	var j *fakeJob
	nth := 0
	for _, x := range w.jobs {
		if x.id == jobID {
			j = x
		}
	}
	if j == nil {
		return graph.EventBatch{}, &graph.Error{Op: "events", StatusCode: 404, Code: "migrationNotFound", InnerCode: "jobNotFound"}
	}
	for _, x := range w.jobs {
		if x.batchID == j.batchID && !x.deleted && x.started {
			nth++
		}
	}
	j.reads++
	if !j.started && !j.deleted && !(w.slowJobs && j.reads == 1) {
		j.started = true
		j.events = append(j.events, ev(j, graph.KindStart))
		p := &graph.Progress{IsCompleted: true}
		if w.fatal(j.batchID, nth+1) {
			e := ev(j, graph.KindError)
			e.Error = &graph.JobError{Level: graph.LevelFatalError, ObjectType: graph.ObjectInvalid, Error: graph.PublicError{Code: "-2146232060", Message: "Manifest.xml could not be decrypted"}}
			j.events = append(j.events, e)
			p.TotalErrors = 1
		}
		if w.fatal(j.batchID, nth+1) && w.restartFatal {
			r := ev(j, graph.KindStart)
			r.Start = &graph.Start{IsRestarted: true, TotalRetryCount: 1}
			j.events = append(j.events, r)
			p.TotalErrors = 0
		}
		if !w.fatal(j.batchID, nth+1) || w.restartFatal {
			for i, it := range j.items {
				if _, bad := j.failed[i]; bad {
					continue
				}
				if strings.Contains(it.Target, "reject") {
					e := ev(j, graph.KindError)
					e.Error = &graph.JobError{Level: graph.LevelError, ObjectType: graph.ObjectFile, ObjectURL: "Document Library/" + it.Target, Error: graph.PublicError{Code: "-2147024816", Message: "File type is blocked"}}
					j.events = append(j.events, e)
					p.TotalErrors++
					continue
				}
				if msg, ok := w.warn[it.Target]; ok {
					e := ev(j, graph.KindError)
					e.Error = &graph.JobError{Level: graph.LevelWarning, ObjectType: graph.ObjectFile, ObjectURL: "Document Library/" + it.Target, Error: graph.PublicError{Code: "-2147024809", Message: msg}}
					j.events = append(j.events, e)
					p.TotalWarnings++
				}
				w.target[it.Target] = it.Path
				p.FilesProcessed++
				p.BytesProcessed += graph.Int64(it.Size())
			}
		}
		p.TotalErrors += graph.Int64(w.phantomErrors)
		e := ev(j, graph.KindProgress)
		e.Progress = p
		j.events = append(j.events, e)
	}
	from := 0
	if cursor != "" {
		from, _ = strconv.Atoi(cursor)
	}
	out := graph.EventBatch{Cursor: strconv.Itoa(len(j.events))}
	for _, e := range j.events[from:] {
		out.Events = append(out.Events, e)
		if e.Completed() {
			out.Completed = true
		}
	}
	return out, nil
}

// ---- Stager ----

type fakeStager struct{ w *world }

func (s fakeStager) Stage(ctx context.Context, m *state.Migration, b *state.Batch, items []state.Item, info graph.ContainerInfo) (StageResult, error) {
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if exp, _ := info.Expiry(); exp.Before(w.now.Add(12 * time.Hour)) {
		return StageResult{}, fmt.Errorf("fake stage: %w", ErrSASTooShort)
	}
	res := StageResult{Failed: map[int]string{}}
	for i, it := range items {
		if strings.Contains(it.Path, "unreadable") {
			res.Failed[i] = "source returned 404 BlobNotFound"
		}
	}
	w.staged[info.DataContainerURI] = stagedPkg{batchID: b.ID, attempt: b.Attempt, items: append([]state.Item(nil), items...), failed: res.Failed}
	return res, nil
}

// ---- Namer, Planner, Sources ----

type fakeNamer struct{}

func (fakeNamer) Name(ctx context.Context, m *state.Migration, p string, size int64) (Decision, error) {
	switch {
	case strings.Contains(p, "desktop.ini"):
		return Decision{Skip: true, Reason: "reserved-name: desktop.ini is reserved by SharePoint"}, nil
	case strings.ContainsAny(p, ":*"):
		return Decision{Target: strings.NewReplacer(":", "_", "*", "_").Replace(p), Renamed: true, Reason: "invalid-character: replaced with _"}, nil
	}
	return Decision{Target: p}, nil
}

type fakePlanner struct{ n int }

func (p fakePlanner) Plan(_ *state.Migration, items []state.Item) ([][]state.Item, error) {
	var out [][]state.Item
	for len(items) > 0 {
		k := min(p.n, len(items))
		out = append(out, items[:k:k])
		items = items[k:]
	}
	return out, nil
}

type fakeSource struct{ entries []source.Entry }

func (s fakeSource) List(ctx context.Context, cursor string, max int) (source.Page, error) {
	from := 0
	if cursor != "" {
		from, _ = strconv.Atoi(cursor)
	}
	to := min(from+max, len(s.entries))
	pg := source.Page{Entries: append([]source.Entry(nil), s.entries[from:to]...)}
	if to < len(s.entries) {
		pg.Next = strconv.Itoa(to)
	}
	return pg, nil
}

func (s fakeSource) Open(ctx context.Context, e source.Entry) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(e.Path)), nil
}

type fakeSources struct{ src source.Source }

func (f fakeSources) Source(ctx context.Context, m *state.Migration) (source.Source, error) {
	return f.src, nil
}

// ---- Sender ----

type queued struct {
	n   queue.Message
	seq int
}

type fakeSender struct {
	mu   sync.Mutex
	q    []queued
	seq  int
	sent int
}

func (s *fakeSender) Send(ctx context.Context, msgs ...queue.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		s.seq++
		s.sent++
		s.q = append(s.q, queued{m, s.seq})
	}
	return nil
}

// pop takes the message due first (ties in send order).
func (s *fakeSender) pop() (queue.Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.q) == 0 {
		return queue.Message{}, false
	}
	sort.SliceStable(s.q, func(i, j int) bool {
		if !s.q[i].n.NotBefore.Equal(s.q[j].n.NotBefore) {
			return s.q[i].n.NotBefore.Before(s.q[j].n.NotBefore)
		}
		return s.q[i].seq < s.q[j].seq
	})
	n := s.q[0].n
	s.q = s.q[1:]
	return n, true
}

// ---- Store ----

type memStore struct {
	// clock stamps Created/Updated as the real store does.
	clock    func() time.Time
	mu       sync.Mutex
	etag     int
	migs     map[string]state.Migration
	batches  map[string]state.Batch
	items    map[string][]state.Item
	events   map[string][]graph.Event
	results  map[string]state.ItemResult
	resultsW int
}

func newMemStore() *memStore {
	return &memStore{
		migs: map[string]state.Migration{}, batches: map[string]state.Batch{}, items: map[string][]state.Item{},
		events: map[string][]graph.Event{}, results: map[string]state.ItemResult{},
	}
}

func (s *memStore) tag() string { s.etag++; return strconv.Itoa(s.etag) }

func (s *memStore) now() time.Time {
	if s.clock == nil {
		return time.Now().UTC()
	}
	return s.clock().UTC()
}

func bkey(m, b string) string { return m + "|" + b }

func (s *memStore) CreateMigration(ctx context.Context, m *state.Migration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.migs[m.ID]; ok {
		return state.ErrExists
	}
	if m.Status == "" {
		m.Status = state.MigrationRunning
	}
	m.ETag = s.tag()
	if m.Created.IsZero() {
		m.Created = s.now()
	}
	m.Updated = s.now()
	s.migs[m.ID] = *m
	return nil
}

func (s *memStore) GetMigration(ctx context.Context, id string) (*state.Migration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.migs[id]
	if !ok {
		return nil, state.ErrNotFound
	}
	return &m, nil
}

func (s *memStore) ReplaceMigration(ctx context.Context, m *state.Migration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.migs[m.ID]
	if !ok {
		return state.ErrStale
	}
	if cur.ETag != m.ETag {
		return state.ErrStale
	}
	m.ETag = s.tag()
	m.Updated = s.now()
	s.migs[m.ID] = *m
	return nil
}

func (s *memStore) CreateBatch(ctx context.Context, b *state.Batch, items []state.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := bkey(b.MigrationID, b.ID)
	if _, ok := s.batches[k]; ok {
		return state.ErrExists
	}
	if b.Status == "" {
		b.Status = state.BatchPlanned
	}
	b.ETag = s.tag()
	b.Created, b.Updated = s.now(), s.now()
	s.batches[k] = *b
	s.items[k] = append([]state.Item(nil), items...)
	return nil
}

func (s *memStore) PutBatchItems(ctx context.Context, mig, batch string, items []state.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[bkey(mig, batch)] = append([]state.Item(nil), items...)
	return nil
}

func (s *memStore) GetBatch(ctx context.Context, mig, id string) (*state.Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.batches[bkey(mig, id)]
	if !ok {
		return nil, state.ErrNotFound
	}
	return &b, nil
}

func (s *memStore) ReplaceBatch(ctx context.Context, b *state.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := bkey(b.MigrationID, b.ID)
	cur, ok := s.batches[k]
	if !ok {
		return state.ErrStale
	}
	if cur.ETag != b.ETag {
		return state.ErrStale
	}
	b.ETag = s.tag()
	b.Updated = s.now()
	s.batches[k] = *b
	return nil
}

func (s *memStore) ListBatches(ctx context.Context, mig string) ([]*state.Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*state.Batch
	for _, b := range s.batches {
		if b.MigrationID == mig {
			out = append(out, &b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *memStore) BatchItems(ctx context.Context, mig, batch string) ([]state.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]state.Item(nil), s.items[bkey(mig, batch)]...), nil
}

func (s *memStore) PutEvents(ctx context.Context, mig, batch string, evs []graph.Event) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := bkey(mig, batch)
next:
	for _, e := range evs {
		for _, x := range s.events[k] {
			if x.ID == e.ID {
				continue next
			}
		}
		s.events[k] = append(s.events[k], e)
	}
	return len(evs), nil
}

func (s *memStore) ListEvents(ctx context.Context, mig, batch, job string) ([]graph.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []graph.Event
	for _, e := range s.events[bkey(mig, batch)] {
		if job == "" || e.JobID == job {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *memStore) PutResults(ctx context.Context, rs []state.ItemResult) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		s.results[r.MigrationID+"|"+r.SourcePath] = r
		s.resultsW++
	}
	return nil
}

func (s *memStore) InFlight(ctx context.Context, limit int) ([]state.Ref, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []state.Ref
	for _, m := range s.migs {
		if !m.Status.Terminal() {
			out = append(out, state.Ref{MigrationID: m.ID})
		}
	}
	for _, b := range s.batches {
		if !b.Status.Terminal() {
			out = append(out, state.Ref{MigrationID: b.MigrationID, BatchID: b.ID, ContainerID: b.ContainerID, Status: string(b.Status)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MigrationID+out[i].BatchID < out[j].MigrationID+out[j].BatchID })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *memStore) ForgetInFlight(ctx context.Context, mig, batch string) error { return nil }

func (s *memStore) JobsInFlight(ctx context.Context, container string, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, b := range s.batches {
		if b.ContainerID == container && (b.Status == state.BatchRunning || b.Status == state.BatchSubmitting) {
			n++
		}
	}
	return min(n, limit), nil
}

// ---- fault injection ----

// faults fails the at-th call (counting every dependency call) either
// before the call takes effect or after it (the effect happened, the
// caller sees an error: a crash right after the call).
type faults struct {
	mu    sync.Mutex
	calls int
	at    int
	after bool
	hitOp string
}

var errInjected = errors.New("injected fault")

func (f *faults) around(op string, call func() error) error {
	f.mu.Lock()
	f.calls++
	hit := f.calls == f.at
	if hit {
		f.hitOp = op
	}
	f.mu.Unlock()
	if hit && !f.after {
		return fmt.Errorf("%s: %w", op, errInjected)
	}
	err := call()
	if hit && err == nil {
		return fmt.Errorf("%s (after): %w", op, errInjected)
	}
	return err
}

type faultStore struct {
	Store
	f *faults
}

func (s faultStore) CreateMigration(ctx context.Context, m *state.Migration) error {
	return s.f.around("CreateMigration", func() error { return s.Store.CreateMigration(ctx, m) })
}
func (s faultStore) ReplaceMigration(ctx context.Context, m *state.Migration) error {
	return s.f.around("ReplaceMigration", func() error { return s.Store.ReplaceMigration(ctx, m) })
}
func (s faultStore) CreateBatch(ctx context.Context, b *state.Batch, items []state.Item) error {
	return s.f.around("CreateBatch", func() error { return s.Store.CreateBatch(ctx, b, items) })
}
func (s faultStore) PutBatchItems(ctx context.Context, m, b string, items []state.Item) error {
	return s.f.around("PutBatchItems", func() error { return s.Store.PutBatchItems(ctx, m, b, items) })
}
func (s faultStore) ReplaceBatch(ctx context.Context, b *state.Batch) error {
	return s.f.around("ReplaceBatch", func() error { return s.Store.ReplaceBatch(ctx, b) })
}
func (s faultStore) PutEvents(ctx context.Context, m, b string, evs []graph.Event) (n int, err error) {
	err = s.f.around("PutEvents", func() (err error) { n, err = s.Store.PutEvents(ctx, m, b, evs); return })
	return
}
func (s faultStore) PutResults(ctx context.Context, rs []state.ItemResult) error {
	return s.f.around("PutResults", func() error { return s.Store.PutResults(ctx, rs) })
}
func (s faultStore) GetBatch(ctx context.Context, m, b string) (*state.Batch, error) {
	var out *state.Batch
	err := s.f.around("GetBatch", func() (err error) { out, err = s.Store.GetBatch(ctx, m, b); return })
	return out, err
}

type faultGraph struct {
	Graph
	f *faults
}

func (g faultGraph) ProvisionContainers(ctx context.Context, c string) (info graph.ContainerInfo, err error) {
	err = g.f.around("Provision", func() (err error) { info, err = g.Graph.ProvisionContainers(ctx, c); return })
	return
}
func (g faultGraph) CreateJob(ctx context.Context, c string, info graph.ContainerInfo) (id string, err error) {
	err = g.f.around("CreateJob", func() (err error) { id, err = g.Graph.CreateJob(ctx, c, info); return })
	return
}
func (g faultGraph) DeleteJob(ctx context.Context, c, j string) error {
	return g.f.around("DeleteJob", func() error { return g.Graph.DeleteJob(ctx, c, j) })
}
func (g faultGraph) Events(ctx context.Context, c, j, cur string) (eb graph.EventBatch, err error) {
	err = g.f.around("Events", func() (err error) { eb, err = g.Graph.Events(ctx, c, j, cur); return })
	return
}

type faultStager struct {
	Stager
	f *faults
}

func (s faultStager) Stage(ctx context.Context, m *state.Migration, b *state.Batch, items []state.Item, info graph.ContainerInfo) (res StageResult, err error) {
	err = s.f.around("Stage", func() (err error) { res, err = s.Stager.Stage(ctx, m, b, items, info); return })
	return
}

type faultSender struct {
	Sender
	f *faults
}

func (s faultSender) Send(ctx context.Context, msgs ...queue.Message) error {
	return s.f.around("Send", func() error { return s.Sender.Send(ctx, msgs...) })
}
