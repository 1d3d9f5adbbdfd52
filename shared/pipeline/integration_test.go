package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/wiring"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/google/uuid"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/staging"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Integration tests: the steps run directly (no Functions host) against
// Azurite (state, provisioned containers), the Service Bus emulator (every
// next message really goes through a queue, scheduled ones included) and
// the pipeline.Graph SPE emulator (which validates, decrypts and imports packages).
// The stack starts once per package, on first use.

var itStack struct {
	once sync.Once
	s    *stack.Stack
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if itStack.s != nil {
		itStack.s.Close()
	}
	os.Exit(code)
}

// itContainers are extra SPE containers, so that each integration run
// imports into a library of its own (the big runs can then be compared).
var itContainers = func() []graphemu.Container {
	var cs []graphemu.Container
	for i := range 15 {
		g := func(kind string) string {
			return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "pipeline-it-%s-%d", kind, i)).String()
		}
		cs = append(cs, graphemu.Container{
			ID:    fmt.Sprintf("b!pipelineIT%d_%s", i, strings.ReplaceAll(g("id"), "-", "")),
			WebID: g("web"), ListID: g("list"), RootFolderID: g("root"),
			SiteURL:       "https://contoso.sharepoint.com/contentstorage/CSP_" + g("site"),
			LibraryFolder: "Document Library",
		})
	}
	return cs
}()

func liveStack(t *testing.T) *stack.Stack {
	t.Helper()
	itStack.once.Do(func() {
		itStack.s, itStack.err = stack.Start(context.Background(), stack.Options{
			Graph: true, ServiceBus: true,
			GraphOptions: stack.GraphOptions{Containers: itContainers},
		})
	})
	if itStack.err != nil {
		t.Fatalf("local stack: %v", itStack.err)
	}
	return itStack.s
}

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type itEnv struct {
	t      *testing.T
	s      *stack.Stack
	emu    *graphemu.Server
	st     *state.Store
	sealer *state.Sealer
	sbc    *azservicebus.Client
	logs   *syncBuffer
	jobs   *jobCounter
	irq    *interrupter
	eng    *pipeline.Engine
	clock  *offsetClock

	stepErrors atomic.Int64
	polls      atomic.Int64 // poll steps run
}

// stepKey tags a step's context with the step's name, so that a counting
// transport can tell the engine's requests from the test driver's.
type stepKey struct{}

type itOptions struct {
	cfg pipeline.Config
	// emu is a private emulator (nil: the stack's).
	emu *graphemu.Server
	// maxRetryDelay bounds in-process Retry-After waits of the pipeline.Graph client.
	maxRetryDelay time.Duration
	// tableTransport, when set, carries every Table Storage request.
	tableTransport policy.Transporter
}

// offsetClock is the engine's clock, which a test can move forward.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) now() time.Time      { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) set(d time.Duration) { c.off.Store(int64(d)) }
func itConfig() pipeline.Config {
	return pipeline.Config{
		PageSize: 100, MaxAttempts: 3,
		PollInterval: 300 * time.Millisecond, IdlePollInterval: time.Second,
		SubmitLease: 3 * time.Second, StuckAfter: 8 * time.Second, PollGrace: 3 * time.Second,
		ThrottleBackoff: time.Second,
	}
}

func newITEnv(t *testing.T, o itOptions) *itEnv {
	t.Helper()
	s := liveStack(t)
	e := &itEnv{t: t, s: s, emu: s.Graph, logs: &syncBuffer{}, irq: &interrupter{}, clock: &offsetClock{}}
	if o.emu != nil {
		e.emu = o.emu
	}
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	prefix := fmt.Sprintf("pl%08x", h.Sum32())
	key := make([]byte, 32)
	rand.Read(key)
	sealKey := base64.StdEncoding.EncodeToString(key)
	tcOpts := &aztables.ClientOptions{}
	if o.tableTransport != nil {
		tcOpts.Transport = o.tableTransport
	}
	svc, err := aztables.NewServiceClientFromConnectionString(s.StorageConnectionString, tcOpts)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.New(svc, state.Options{TablePrefix: prefix, SealKey: sealKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	e.st = st
	if e.sealer, err = state.NewSealer(sealKey); err != nil {
		t.Fatal(err)
	}
	gc, err := graph.New(graph.StaticToken(stack.GraphToken), graph.Options{
		BaseURL: e.emu.URL(), Transport: e.emu.HTTPClient(), MaxRetryDelay: o.maxRetryDelay, RetryDelay: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.sbc, err = azservicebus.NewClientFromConnectionString(s.ServiceBusConnectionString, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sbc.Close(context.Background()) })
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	stager, err := staging.New(staging.Options{Logger: logger, Buffers: 6, FileConcurrency: 3, BlockConcurrency: 2, Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	comps := wiring.Components{
		State: st, Graph: gc, Queue: queue.NewSenderFromClient(e.sbc, queue.DefaultQueues()),
		Stager: stager,
		Logger: logger, Clock: e.clock.now,
		Getenv: func(k string) string {
			if k == "SOURCE_STORAGE" {
				return s.StorageConnectionString
			}
			return ""
		},
	}
	deps, err := wiring.Deps(comps)
	if err != nil {
		t.Fatal(err)
	}
	e.jobs = &jobCounter{Graph: irqGraph{deps.Graph, e.irq}, live: map[string]string{}}
	deps.Graph = e.jobs
	deps.Store = irqStore{deps.Store, e.irq}
	deps.Sender = irqSender{deps.Sender, e.irq}
	ss := deps.Stager.(*wiring.StagingStager)
	ss.Sources = irqSources{ss.Sources, e.irq}
	cfg := o.cfg
	if cfg.PageSize == 0 {
		cfg = itConfig()
	}
	if e.eng, err = pipeline.New(deps, cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *itEnv) start(migID string, req request.Request) {
	e.t.Helper()
	req.ApplyDefaults()
	if err := req.Validate(); err != nil {
		e.t.Fatalf("request: %v", err)
	}
	if _, err := e.eng.Start(context.Background(), &state.Migration{ID: migID, ContainerID: req.Target.ContainerID, Request: req}); err != nil {
		e.t.Fatalf("start: %v", err)
	}
}

type runMode struct {
	dup       bool // every delivery runs the step twice
	interrupt bool // the first delivery of every step (per batch) is cut short part-way
	// before runs before each delivery.
	before func(n queue.Message)
	// after runs after each delivery with its error.
	after func(n queue.Message, err error)
	// drop, when it returns true, loses the message (completed unrun, as
	// if dead-lettered): only the drain can recover.
	drop func(n queue.Message) bool
	// parallel handles up to this many messages at once, as the Functions
	// host does (not with interrupt).
	parallel int
}

type delivery struct {
	r   *azservicebus.Receiver
	msg *azservicebus.ReceivedMessage
}

// drive receives the migration's messages from the four queues and runs
// each step, until the migration is terminal or the deadline passes. A step
// error abandons the message (Service Bus redelivers it); the drain runs
// every second, as the timer would.
func (e *itEnv) drive(migID string, mode runMode, timeout time.Duration) *state.Migration {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ch := make(chan delivery)
	var wg sync.WaitGroup
	qs := queue.DefaultQueues()
	for _, name := range []string{qs.Provision, qs.StageBatch, qs.Submit, qs.Poll} {
		r, err := e.sbc.NewReceiverForQueue(name, nil)
		if err != nil {
			e.t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close(context.Background())
			for ctx.Err() == nil {
				msgs, err := r.ReceiveMessages(ctx, 8, nil)
				if err != nil {
					return
				}
				for _, m := range msgs {
					select {
					case ch <- delivery{r, m}:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	interrupted := map[string]bool{}
	sem := make(chan struct{}, max(mode.parallel, 1))
	var hwg sync.WaitGroup
	defer hwg.Wait()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	store := e.st
	for {
		m, err := store.GetMigration(context.Background(), migID)
		if err == nil && m.Status.Terminal() {
			return m
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("migration %s not finished after %s (status %v); last logs:\n%s", migID, timeout, m, tail(e.logs.String(), 4000))
		case <-tick.C:
			if _, err := e.eng.Drain(context.WithValue(ctx, stepKey{}, "drain")); err != nil {
				e.t.Logf("drain: %v", err)
			}
		case d := <-ch:
			if mode.parallel > 1 {
				sem <- struct{}{}
				hwg.Add(1)
				go func() {
					defer func() { <-sem; hwg.Done() }()
					e.handle(ctx, migID, d, mode, nil)
				}()
				continue
			}
			e.handle(ctx, migID, d, mode, interrupted)
		}
	}
}

func (e *itEnv) handle(ctx context.Context, migID string, d delivery, mode runMode, interrupted map[string]bool) {
	qm, err := queue.Decode(d.msg.Body)
	if err != nil || qm.MigrationID != migID {
		// Another test's leftover (a late scheduled poll): not ours.
		_ = d.r.CompleteMessage(ctx, d.msg, nil)
		return
	}
	n := qm
	if mode.before != nil {
		mode.before(n)
	}
	if mode.drop != nil && mode.drop(n) {
		_ = d.r.CompleteMessage(ctx, d.msg, nil)
		return
	}
	run := func() error {
		sctx, scancel := context.WithCancel(ctx)
		defer scancel()
		key := fmt.Sprintf("%s/%s/%d", n.Step, n.BatchID, n.Page)
		if mode.interrupt && !interrupted[key] {
			interrupted[key] = true
			h := fnv.New32a()
			h.Write([]byte(key))
			e.irq.arm(1+int(h.Sum32()%3), scancel)
		}
		defer e.irq.disarm()
		if n.Step == queue.StepPoll {
			e.polls.Add(1)
		}
		return e.eng.Run(context.WithValue(sctx, stepKey{}, string(n.Step)), n)
	}
	err = run()
	if err == nil && mode.dup {
		err = run()
	}
	if mode.after != nil {
		mode.after(n, err)
	}
	if err != nil {
		e.stepErrors.Add(1)
		_ = d.r.AbandonMessage(ctx, d.msg, nil)
		return
	}
	_ = d.r.CompleteMessage(ctx, d.msg, nil)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// ---- interruption and job counting ----

// interrupter cancels the running step's context at its k-th dependency
// call: the call (and everything after it in the step) fails part-way, as
// if the process had died there; the message is then redelivered.
type interrupter struct {
	mu     sync.Mutex
	left   int
	cancel func()
	hits   int
}

func (i *interrupter) arm(k int, cancel func()) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.left, i.cancel = k, cancel
}

func (i *interrupter) disarm() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.cancel = nil
}

func (i *interrupter) tick() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cancel == nil {
		return
	}
	if i.left--; i.left <= 0 {
		i.cancel()
		i.cancel = nil
		i.hits++
	}
}

type irqStore struct {
	pipeline.Store
	i *interrupter
}

func (s irqStore) CreateMigration(ctx context.Context, m *state.Migration) error {
	s.i.tick()
	return s.Store.CreateMigration(ctx, m)
}
func (s irqStore) GetMigration(ctx context.Context, id string) (*state.Migration, error) {
	s.i.tick()
	return s.Store.GetMigration(ctx, id)
}
func (s irqStore) ReplaceMigration(ctx context.Context, m *state.Migration) error {
	s.i.tick()
	return s.Store.ReplaceMigration(ctx, m)
}
func (s irqStore) CreateBatch(ctx context.Context, b *state.Batch, items []state.Item) error {
	s.i.tick()
	return s.Store.CreateBatch(ctx, b, items)
}
func (s irqStore) PutBatchItems(ctx context.Context, m, b string, items []state.Item) error {
	s.i.tick()
	return s.Store.PutBatchItems(ctx, m, b, items)
}
func (s irqStore) GetBatch(ctx context.Context, m, b string) (*state.Batch, error) {
	s.i.tick()
	return s.Store.GetBatch(ctx, m, b)
}
func (s irqStore) ReplaceBatch(ctx context.Context, b *state.Batch) error {
	s.i.tick()
	return s.Store.ReplaceBatch(ctx, b)
}
func (s irqStore) ListBatches(ctx context.Context, m string) ([]*state.Batch, error) {
	s.i.tick()
	return s.Store.ListBatches(ctx, m)
}
func (s irqStore) BatchItems(ctx context.Context, m, b string) ([]state.Item, error) {
	s.i.tick()
	return s.Store.BatchItems(ctx, m, b)
}
func (s irqStore) PutEvents(ctx context.Context, m, b string, evs []graph.Event) (int, error) {
	s.i.tick()
	return s.Store.PutEvents(ctx, m, b, evs)
}
func (s irqStore) ListEvents(ctx context.Context, m, b, j string) ([]graph.Event, error) {
	s.i.tick()
	return s.Store.ListEvents(ctx, m, b, j)
}
func (s irqStore) PutResults(ctx context.Context, rs []state.ItemResult) error {
	s.i.tick()
	return s.Store.PutResults(ctx, rs)
}
func (s irqStore) JobsInFlight(ctx context.Context, c string, limit int) (int, error) {
	s.i.tick()
	return s.Store.JobsInFlight(ctx, c, limit)
}
func (s irqStore) ForgetInFlight(ctx context.Context, m, b string) error {
	return s.Store.ForgetInFlight(ctx, m, b)
}

type irqGraph struct {
	pipeline.Graph
	i *interrupter
}

func (g irqGraph) ProvisionContainers(ctx context.Context, c string) (graph.ContainerInfo, error) {
	g.i.tick()
	return g.Graph.ProvisionContainers(ctx, c)
}
func (g irqGraph) CreateJob(ctx context.Context, c string, info graph.ContainerInfo) (string, error) {
	g.i.tick()
	return g.Graph.CreateJob(ctx, c, info)
}
func (g irqGraph) DeleteJob(ctx context.Context, c, j string) error {
	g.i.tick()
	return g.Graph.DeleteJob(ctx, c, j)
}
func (g irqGraph) Events(ctx context.Context, c, j, cur string) (graph.EventBatch, error) {
	g.i.tick()
	return g.Graph.Events(ctx, c, j, cur)
}

type irqSender struct {
	pipeline.Sender
	i *interrupter
}

func (s irqSender) Send(ctx context.Context, msgs ...queue.Message) error {
	s.i.tick()
	return s.Sender.Send(ctx, msgs...)
}

type irqSources struct {
	wiring.SourceOpener
	i *interrupter
}

func (s irqSources) Open(r request.Request) (source.Source, error) {
	src, err := s.SourceOpener.Open(r)
	if err != nil {
		return nil, err
	}
	return irqSource{src, s.i}, nil
}

// irqSource interrupts staging between files: some blobs are uploaded,
// the rest are not, and the manifests never are.
type irqSource struct {
	source.Source
	i *interrupter
}

func (s irqSource) Open(ctx context.Context, en source.Entry) (io.ReadCloser, error) {
	s.i.tick()
	return s.Source.Open(ctx, en)
}

// jobCounter records the jobs created and deleted, with the provisioned
// containers each was created over (one pair per batch attempt).
type jobCounter struct {
	pipeline.Graph
	mu      sync.Mutex
	created int
	live    map[string]string // job id -> data container (no query)
}

func (j *jobCounter) CreateJob(ctx context.Context, c string, info graph.ContainerInfo) (string, error) {
	id, err := j.Graph.CreateJob(ctx, c, info)
	if err == nil {
		j.mu.Lock()
		j.created++
		j.live[id] = staging.StripQuery(info.DataContainerURI)
		j.mu.Unlock()
	}
	return id, err
}

func (j *jobCounter) DeleteJob(ctx context.Context, c, id string) error {
	err := j.Graph.DeleteJob(ctx, c, id)
	if err == nil {
		j.mu.Lock()
		delete(j.live, id)
		j.mu.Unlock()
	}
	return err
}

// assertJobs checks that no batch attempt ran more than one job (jobs
// created and then deleted because nobody could track them never ran), that
// every batch's recorded job is one that ran, and that every batch ran one.
func (e *itEnv) assertJobs(migID string) {
	e.t.Helper()
	bs, err := e.st.ListBatches(context.Background(), migID)
	if err != nil {
		e.t.Fatal(err)
	}
	e.jobs.mu.Lock()
	defer e.jobs.mu.Unlock()
	perPair := map[string]int{}
	for _, pair := range e.jobs.live {
		perPair[pair]++
	}
	for pair, n := range perPair {
		if n > 1 {
			e.t.Errorf("%d jobs ran over the containers %s (one batch attempt)", n, pair)
		}
	}
	for _, b := range bs {
		if b.JobID != "" {
			if _, ok := e.jobs.live[b.JobID]; !ok {
				e.t.Errorf("batch %s: recorded job %s did not run", b.ID, b.JobID)
			}
		} else if b.Status != state.BatchCancelled {
			e.t.Errorf("batch %s (%s) has no job", b.ID, b.Status)
		}
	}
	if len(e.jobs.live) < len(bs) {
		e.t.Errorf("%d jobs ran for %d batches", len(e.jobs.live), len(bs))
	}
}

// ---- the source ----

type fileSpec struct {
	size  int64
	sha   string
	mtime time.Time
}

var itEpoch = time.Date(2023, 3, 4, 5, 6, 7, 0, time.UTC)

// genSource writes a deterministic source tree of n files under dir: nested
// folders, unicode names, names the naming policy must repair or skip, a
// zero-byte file and (when big) two files over 50 MB.
func genSource(t *testing.T, dir string, n int, big bool) map[string]fileSpec {
	t.Helper()
	var paths []string
	special := []string{
		"bad:name.txt", "what?.txt", "star*.txt", "pipe|name.txt", "quote\"d.txt", "less<more>.txt",
		"CON", "aux/inside-aux.txt", "desktop.ini", "forms/inside-forms.txt", "~$lockfile.docx", "_vti_cnf/hidden.txt",
		"trailing-space.txt ", " leading-space.txt",
		"Case/Readme.md", "case/readme.md", "Dup.txt", "dup.txt",
		"long/" + strings.Repeat("a", 150) + "/" + strings.Repeat("b", 150) + "/" + strings.Repeat("c", 100) + ".txt",
		"Ünïcödé/日本語/ファイル-1.txt", "Ünïcödé/日本語/ファイル-2.txt", "Ελληνικά/αρχείο.md", "emoji 🙂/smile 😀.txt",
		"empty/zero.bin",
	}
	paths = append(paths, special...)
	if big {
		paths = append(paths, "big/large-1.bin", "big/large-2.bin")
	}
	for i := 0; len(paths) < n; i++ {
		paths = append(paths, fmt.Sprintf("dept-%d/team-%d/project-%d/doc-%03d.txt", i%4, i%7, i%3, i))
	}
	specs := map[string]fileSpec{}
	for i, p := range paths {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(full)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
		var size int64
		switch {
		case p == "empty/zero.bin":
		case strings.HasPrefix(p, "big/"):
			size = 50<<20 + int64(i)*4099
			rng := mrand.NewChaCha8([32]byte{byte(i), 'p', 'i', 'p', 'e'})
			if _, err := io.CopyN(w, rng, size); err != nil {
				t.Fatal(err)
			}
		default:
			size = int64(1 + (i*7919)%6000)
			line := fmt.Sprintf("file %d %s\n", i, p)
			for written := int64(0); written < size; {
				k := min(int64(len(line)), size-written)
				w.WriteString(line[:k])
				written += k
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		mt := itEpoch.Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(full, mt, mt); err != nil {
			t.Fatal(err)
		}
		specs[p] = fileSpec{size: size, sha: hex.EncodeToString(h.Sum(nil)), mtime: mt}
	}
	return specs
}

// ---- reading the target back through the drive endpoints ----

type driveEntry struct {
	Folder   bool
	Size     int64
	SHA      string
	Modified string
}

func (e *itEnv) graphGet(path string, out any) []byte {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.emu.URL()+"/v1.0/"+path, nil)
	req.Header.Set("Authorization", "Bearer "+stack.GraphToken)
	resp, err := e.emu.HTTPClient().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			e.t.Fatal(err)
		}
	}
	return body
}

// driveChildren lists an item's children, following @odata.nextLink as a
// client must.
func driveChildren[T any](e *itEnv, containerID, itemID string) []T {
	e.t.Helper()
	var kids []T
	for link := fmt.Sprintf("drives/%s/items/%s/children", containerID, itemID); link != ""; {
		var page struct {
			Value []T    `json:"value"`
			Next  string `json:"@odata.nextLink"`
		}
		e.graphGet(link, &page)
		kids = append(kids, page.Value...)
		link = strings.TrimPrefix(page.Next, e.emu.URL()+"/v1.0/")
	}
	return kids
}

// imported leaves out of a drive tree what the container held before.
func imported[T any](tree map[string]T) map[string]T {
	out := map[string]T{}
	for p, v := range tree {
		if !preexisting[p] {
			out[p] = v
		}
	}
	return out
}

// driveTree walks the container's library with the drive endpoints
// (children, content) and returns every item by path.
func (e *itEnv) driveTree(containerID string) map[string]driveEntry {
	e.t.Helper()
	out := map[string]driveEntry{}
	type child struct {
		ID                   string    `json:"id"`
		Name                 string    `json:"name"`
		Size                 int64     `json:"size"`
		LastModifiedDateTime string    `json:"lastModifiedDateTime"`
		Folder               *struct{} `json:"folder"`
	}
	var walk func(itemID, prefix string)
	walk = func(itemID, prefix string) {
		for _, c := range driveChildren[child](e, containerID, itemID) {
			p := prefix + c.Name
			if c.Folder != nil {
				out[p] = driveEntry{Folder: true}
				walk(c.ID, p+"/")
				continue
			}
			sum := sha256.Sum256(e.graphGet(fmt.Sprintf("drives/%s/items/%s/content", containerID, c.ID), nil))
			out[p] = driveEntry{Size: c.Size, SHA: hex.EncodeToString(sum[:]), Modified: c.LastModifiedDateTime}
		}
	}
	var root struct {
		ID string `json:"id"`
	}
	e.graphGet(fmt.Sprintf("drives/%s/root", containerID), &root)
	walk(root.ID, "")
	return out
}

func (e *itEnv) results(migID string) map[string]state.ItemResult {
	e.t.Helper()
	out := map[string]state.ItemResult{}
	tok := ""
	for {
		rs, next, err := e.st.ListResults(context.Background(), migID, tok, 500)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, r := range rs {
			out[r.SourcePath] = r
		}
		if next == "" {
			return out
		}
		tok = next
	}
}

// preexisting are the library paths the stack's emulator seeds every
// container with (stack.DefaultGraphKnobs().Existing), which the import
// must leave alone and the checks leave out.
var preexisting = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range stack.DefaultGraphKnobs().Existing {
		m[strings.TrimSuffix(p, "/")] = true
	}
	return m
}()

// verifyImport checks the target against the source: every imported file
// present and byte-identical, its time preserved, folders exactly those the
// files imply, and every renamed or skipped item explained.
func (e *itEnv) verifyImport(migID, containerID string, specs map[string]fileSpec) map[string]driveEntry {
	e.t.Helper()
	tree := e.driveTree(containerID)
	rs := e.results(migID)
	wantFiles := map[string]bool{}
	wantFolders := map[string]bool{}
	for p, sp := range specs {
		r, ok := rs[p]
		if !ok {
			e.t.Errorf("%q: no per-item result", p)
			continue
		}
		switch r.Outcome {
		case state.OutcomeImported, state.OutcomeRenamed:
		case state.OutcomeSkipped:
			if r.Reason == "" {
				e.t.Errorf("%q skipped without a reason", p)
			}
			continue
		default:
			e.t.Errorf("%q: outcome %s (%s)", p, r.Outcome, r.Reason)
			continue
		}
		if (r.TargetPath != p) != r.Renamed || (r.Renamed && r.Reason == "") || (r.Renamed && r.Outcome != state.OutcomeRenamed) {
			e.t.Errorf("%q -> %q: renamed=%v outcome=%s reason %q", p, r.TargetPath, r.Renamed, r.Outcome, r.Reason)
		}
		wantFiles[r.TargetPath] = true
		for d := filepath.ToSlash(filepath.Dir(r.TargetPath)); d != "."; d = filepath.ToSlash(filepath.Dir(d)) {
			wantFolders[d] = true
		}
		got, ok := tree[r.TargetPath]
		if !ok || got.Folder {
			e.t.Errorf("%q: not imported at %q", p, r.TargetPath)
			continue
		}
		if got.SHA != sp.sha || got.Size != sp.size {
			e.t.Errorf("%q: content differs (size %d, want %d)", r.TargetPath, got.Size, sp.size)
		}
		if want := sp.mtime.UTC().Format(time.RFC3339); got.Modified != want {
			e.t.Errorf("%q: lastModifiedDateTime %s, want %s", r.TargetPath, got.Modified, want)
		}
	}
	for p, d := range tree {
		if preexisting[p] {
			continue // the container held it before (the stack's strict profile)
		}
		if d.Folder && !wantFolders[p] {
			e.t.Errorf("unexpected folder %q in the target", p)
		}
		if !d.Folder && !wantFiles[p] {
			e.t.Errorf("unexpected file %q in the target", p)
		}
	}
	for p := range wantFolders {
		if d, ok := tree[p]; !ok || !d.Folder {
			e.t.Errorf("folder %q missing", p)
		}
	}
	if len(rs) != len(specs) {
		e.t.Errorf("%d per-item results for %d source files", len(rs), len(specs))
	}
	return tree
}

func localRequest(dir, containerID string, batch request.Batch) request.Request {
	return request.Request{
		V:       request.Version,
		Source:  request.Source{Kind: request.KindLocalFolder, Path: dir},
		Target:  request.Target{ContainerID: containerID},
		Options: request.Options{Batch: batch},
	}
}

// TestImport300Files is the end-to-end check of the engine: a 300-file
// source migrated three times into three containers (plainly, with every
// step run twice, and with every step interrupted once part-way), each
// compared against the source and against the others.
func TestImport300Files(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 300 files (two over 50 MB) three times; run without -short")
	}
	dir := t.TempDir()
	specs := genSource(t, dir, 300, true)
	batch := request.Batch{MaxItems: 60, MaxBytes: 40 << 20}

	var trees []map[string]driveEntry
	var results []map[string]string
	for i, mode := range []struct {
		name string
		mode runMode
	}{
		{"plain", runMode{}},
		{"twice", runMode{dup: true}},
		{"interrupted", runMode{interrupt: true}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			e := newITEnv(t, itOptions{})
			cid := itContainers[i].ID
			migID := "it300-" + mode.name
			e.start(migID, localRequest(dir, cid, batch))
			if mode.mode.dup {
				e.start(migID, localRequest(dir, cid, batch))
			}
			m := e.drive(migID, mode.mode, 6*time.Minute)
			if m.Status != state.MigrationCompleted {
				t.Fatalf("migration %s: %s (%s)", migID, m.Status, m.Reason)
			}
			tree := e.verifyImport(migID, cid, specs)
			e.assertJobs(migID)
			rs := map[string]string{}
			for p, r := range e.results(migID) {
				rs[p] = fmt.Sprintf("%s|%s|%v|%s", r.Outcome, r.TargetPath, r.Renamed, r.Reason)
			}
			trees = append(trees, tree)
			results = append(results, rs)
			t.Logf("%s: %d files, %d batches, counters %+v, step errors %d, interruptions %d",
				mode.name, len(tree), m.Counters.Batches, m.Counters, e.stepErrors.Load(), e.irq.hits)
			if mode.mode.interrupt && e.irq.hits == 0 {
				t.Error("no step was interrupted")
			}
			if !mode.mode.interrupt && e.stepErrors.Load() != 0 {
				t.Errorf("%d step errors without faults", e.stepErrors.Load())
			}
			if i == 0 {
				checkNamingCases(t, e.results(migID))
			}
		})
	}
	if len(trees) == 3 {
		for i := 1; i < 3; i++ {
			if !equalTrees(trees[0], trees[i]) {
				t.Errorf("run %d ended in a different target state than the plain run", i)
			}
			if fmt.Sprint(results[0]) != fmt.Sprint(results[i]) {
				t.Errorf("run %d ended with different per-item results", i)
			}
		}
	}
}

func equalTrees(a, b map[string]driveEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkNamingCases pins the naming outcomes the source was built to hit.
func checkNamingCases(t *testing.T, rs map[string]state.ItemResult) {
	t.Helper()
	for src, want := range map[string]struct {
		outcome state.Outcome
		target  string
		reason  string
	}{
		"bad:name.txt":           {state.OutcomeRenamed, "bad_name.txt", "invalid"},
		"CON":                    {state.OutcomeRenamed, "_CON", "reserved"},
		"aux/inside-aux.txt":     {state.OutcomeRenamed, "_aux/inside-aux.txt", "reserved"},
		"desktop.ini":            {state.OutcomeRenamed, "", "reserved"},
		"forms/inside-forms.txt": {state.OutcomeRenamed, "", "forms"},
		"dup.txt":                {state.OutcomeRenamed, "dup (2).txt", "case"},
		"empty/zero.bin":         {state.OutcomeImported, "empty/zero.bin", ""},
		"long/" + strings.Repeat("a", 150) + "/" + strings.Repeat("b", 150) + "/" + strings.Repeat("c", 100) + ".txt": {state.OutcomeSkipped, "", "400"},
	} {
		r := rs[src]
		if r.Outcome != want.outcome || (want.target != "" && r.TargetPath != want.target) || !strings.Contains(strings.ToLower(r.Reason), want.reason) {
			t.Errorf("%q: %s %q reason %q; want %s %q reason mentioning %q", src, r.Outcome, r.TargetPath, r.Reason, want.outcome, want.target, want.reason)
		}
	}
	var renamed, skipped []string
	for p, r := range rs {
		switch r.Outcome {
		case state.OutcomeRenamed:
			renamed = append(renamed, p)
		case state.OutcomeSkipped:
			skipped = append(skipped, p)
		}
	}
	sort.Strings(renamed)
	t.Logf("renamed %d: %q; skipped %d", len(renamed), renamed, len(skipped))
}
