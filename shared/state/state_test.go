package state

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/naming"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
)

// The naming policy's collision memory is this store.
var _ naming.Claims = (*Store)(nil)

var storageConn string

func TestMain(m *testing.M) {
	stacktest.Main(m, stack.Options{Azurite: true}, stacktest.Always, func(s *stack.Stack) { storageConn = s.StorageConnectionString })
}

func randomKey(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// newStore opens a store on its own tables, so tests do not see each
// other's rows.
func newStore(t testing.TB) (*Store, string) {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	key := randomKey(t)
	s, err := NewFromConnectionString(storageConn, Options{TablePrefix: "t" + hex.EncodeToString(b), SealKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range s.TableNames() {
			s.svc.DeleteTable(context.Background(), n, nil)
		}
	})
	return s, key
}

const sasSig = "sig=U2VjcmV0U2lnbmF0dXJlRm9yVGVzdHM%3D"

func provisioned() graph.ContainerInfo {
	return graph.ContainerInfo{
		DataContainerURI:     "https://acct.blob.core.windows.net/data?sv=2023-11-03&sp=rw&se=2030-01-01T00:00:00Z&" + sasSig,
		MetadataContainerURI: "https://acct.blob.core.windows.net/meta?sv=2023-11-03&sp=rw&se=2030-01-01T00:00:00Z&" + sasSig,
		EncryptionKey:        "q3Jm7m1m0yX1oQy9oE6l6o5bV4l0vJmZ8rL2cQe9b2Y=",
	}
}

func newBatch(t *testing.T, s *Store, b Batch) *Batch {
	t.Helper()
	if err := s.CreateBatch(context.Background(), &b, []Item{{Path: "a.txt", Target: "a.txt"}}); err != nil {
		t.Fatal(err)
	}
	return &b
}

// update is the conditional-update loop over a batch, as the engine runs it.
func update(ctx context.Context, s *Store, b *Batch, fn func(*Batch)) (*Batch, error) {
	reload := func(ctx context.Context) (*Batch, error) { return s.GetBatch(ctx, b.MigrationID, b.ID) }
	got, _, err := Update(ctx, b, reload, s.ReplaceBatch, func(x *Batch) (bool, error) { fn(x); return true, nil })
	return got, err
}

func TestConcurrentUpdatesBothApply(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.CreateMigration(ctx, &Migration{ID: "m1"}); err != nil {
		t.Fatal(err)
	}
	b := newBatch(t, s, Batch{MigrationID: "m1", ID: "b1"})
	// Both updaters start from the same version, so one of them must lose
	// the race, re-read and apply its change again.
	var read sync.WaitGroup
	read.Add(2)
	var calls atomic.Int32
	run := func(apply func(*Batch)) error {
		first := true
		_, err := update(ctx, s, b, func(x *Batch) {
			calls.Add(1)
			if first {
				first = false
				read.Done()
				read.Wait()
			}
			apply(x)
		})
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs[0] = run(func(b *Batch) { b.JobID = "job-1" }) }()
	go func() {
		defer wg.Done()
		errs[1] = run(func(b *Batch) { b.EventCursor = "cursor-7"; b.Progress.Errors++ })
	}()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if calls.Load() < 3 {
		t.Errorf("update functions ran %d times; the loser should have re-read", calls.Load())
	}
	got, err := s.GetBatch(ctx, "m1", "b1")
	if err != nil {
		t.Fatal(err)
	}
	if got.JobID != "job-1" || got.EventCursor != "cursor-7" || got.Progress.Errors != 1 {
		t.Errorf("batch after both updates: job %q cursor %q errors %d", got.JobID, got.EventCursor, got.Progress.Errors)
	}
}

// TestPostponementRoundTrip: a batch's postponement (SharePoint's reason
// and next pickup) survives the store.
func TestPostponementRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	b := newBatch(t, s, Batch{MigrationID: "m1", ID: "b1"})
	want := Postponement{Reason: "Job postponed: <b>tenant</b> busy", NextPickup: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), JobsInQueue: 17}
	if _, err := update(ctx, s, b, func(x *Batch) { x.Postponed = want }); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBatch(ctx, "m1", "b1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Postponed != want {
		t.Errorf("stored postponement %+v, want %+v", got.Postponed, want)
	}
	if _, err := update(ctx, s, got, func(x *Batch) { x.Postponed = Postponement{} }); err != nil {
		t.Fatal(err)
	}
	if got, err = s.GetBatch(ctx, "m1", "b1"); err != nil || got.Postponed != (Postponement{}) {
		t.Errorf("cleared postponement read back as %+v, %v", got.Postponed, err)
	}
}

func TestUpdateGivesUpAfterMaxRaces(t *testing.T) {
	n := 0
	cur := &Batch{ID: "b"}
	_, wrote, err := Update(context.Background(), cur,
		func(context.Context) (*Batch, error) { return &Batch{ID: "b"}, nil },
		func(context.Context, *Batch) error { n++; return ErrStale },
		func(*Batch) (bool, error) { return true, nil })
	if !errors.Is(err, ErrContended) || wrote || n != MaxRaces {
		t.Fatalf("err %v wrote %v after %d writes; want ErrContended after %d", err, wrote, n, MaxRaces)
	}
	_, wrote, err = Update(context.Background(), cur, nil, nil, func(*Batch) (bool, error) { return false, nil })
	if err != nil || wrote {
		t.Fatalf("no-change update: wrote %v, %v", wrote, err)
	}
}

func TestReplaceWithStaleETag(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	req := request.Request{V: 1, Source: request.Source{Kind: request.KindAzureBlob, ContainerURL: "https://acct.blob.core.windows.net/src?sv=1&" + sasSig},
		Target: request.Target{ContainerID: "b!c"}}
	m := &Migration{ID: "m1", ContainerID: "b!c", Request: req}
	if err := s.CreateMigration(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMigration(ctx, &Migration{ID: "m1"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	m.PlanPage = 3
	m.Counters.Items = 1 << 40 // Int64 round trip
	stale := *m
	if err := s.ReplaceMigration(ctx, m); err != nil {
		t.Fatal(err)
	}
	stale.Status = MigrationFailed
	if err := s.ReplaceMigration(ctx, &stale); !errors.Is(err, ErrStale) {
		t.Fatalf("replace with stale ETag: %v, want ErrStale", err)
	}
	got, err := s.GetMigration(ctx, "m1")
	if err != nil || got.Status != MigrationRunning || got.PlanPage != 3 || got.Counters.Items != 1<<40 || got.ETag != m.ETag {
		t.Fatalf("stored %+v, %v", got, err)
	}
	if got.Request.Digest() != req.Digest() || got.Request.Source.ContainerURL != req.Source.ContainerURL {
		t.Errorf("request round trip: %+v", got.Request.Redacted())
	}
	if _, err := s.GetMigration(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing migration: %v", err)
	}
	if err := s.CreateMigration(ctx, &Migration{ID: "a/b"}); err == nil || !strings.Contains(err.Error(), "migration id") {
		t.Errorf("bad id: %v", err)
	}
}

// TestSecretsAreSealed reads every table raw and searches for the SAS
// signature and the key.
func TestSecretsAreSealed(t *testing.T) {
	s, sealKey := newStore(t)
	ctx := context.Background()
	info := provisioned()
	req := request.Request{V: 1, Source: request.Source{Kind: request.KindAzureBlob, ContainerURL: info.DataContainerURI}, Target: request.Target{ContainerID: "b!c"}}
	if err := s.CreateMigration(ctx, &Migration{ID: "m1", Request: req}); err != nil {
		t.Fatal(err)
	}
	b := newBatch(t, s, Batch{MigrationID: "m1", ID: "b1", Containers: info})
	if _, err := update(ctx, s, b, func(b *Batch) { b.Status = BatchStaged }); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBatch(ctx, "m1", "b1")
	if err != nil || got.Containers != info {
		t.Fatalf("round trip: %v, %+v", err, got.Containers)
	}
	sawSealed := false
	secrets := []string{"U2VjcmV0U2lnbmF0dXJlRm9yVGVzdHM", info.EncryptionKey, "q3Jm7m1m0yX1oQy9oE6l6o5bV4l0vJmZ8rL2cQe9b2Y", sealKey, "blob.core.windows.net"}
	for _, name := range s.TableNames() {
		pager := s.svc.NewClient(name).NewListEntitiesPager(nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, raw := range page.Entities {
				sawSealed = sawSealed || strings.Contains(string(raw), `"SealedDataURI":"gcm1:`)
				for _, sec := range secrets {
					if strings.Contains(string(raw), sec) {
						t.Errorf("table %s stores %q in plaintext: %s", name, sec, raw)
					}
				}
			}
		}
	}
	if !sawSealed {
		t.Fatal("no sealed container info found in the raw tables")
	}
	// A sealed value moved to another row does not open there: not the
	// batch's containers, not the migration's request.
	for _, mv := range []struct {
		c      *aztables.Client
		pk, rk string
		npk    string
		nrk    string
		get    func() error
	}{
		{s.batches, "m1", "b1", "m1", "b2", func() error { _, err := s.GetBatch(ctx, "m1", "b2"); return err }},
		{s.migrations, "m1", migrationRK, "m2", migrationRK, func() error { _, err := s.GetMigration(ctx, "m2"); return err }},
	} {
		resp, err := mv.c.GetEntity(ctx, mv.pk, mv.rk, nil)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := unmarshalEntity(resp.Value, resp.ETag)
		data, _ := marshalEntity(mv.npk, mv.nrk, e.p)
		if _, err := mv.c.AddEntity(ctx, data, nil); err != nil {
			t.Fatal(err)
		}
		if err := mv.get(); err == nil {
			t.Errorf("a sealed value copied to %s/%s opened", mv.npk, mv.nrk)
		} else if strings.Contains(err.Error(), "sig=") || strings.Contains(err.Error(), "gcm1:") {
			t.Errorf("error reveals the value: %v", err)
		}
	}
	// A store with another key cannot open the batch.
	other, err := New(s.svc, Options{TablePrefix: strings.TrimSuffix(s.names[0], "Migrations"), SealKey: randomKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.GetBatch(ctx, "m1", "b1"); err == nil {
		t.Error("opened with the wrong key")
	}
}

func TestInFlightIndex(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	m := &Migration{ID: "m1"}
	if err := s.CreateMigration(ctx, m); err != nil {
		t.Fatal(err)
	}
	bs := map[string]*Batch{}
	for i := range 5 {
		id := fmt.Sprintf("b%d", i)
		bs[id] = newBatch(t, s, Batch{MigrationID: "m1", ID: id, ContainerID: "b!c"})
	}
	due := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	finish := map[string]BatchStatus{"b0": BatchSucceeded, "b1": BatchFailed, "b2": BatchCancelled}
	for id, st := range finish {
		if _, err := update(ctx, s, bs[id], func(b *Batch) { b.Status = st }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := update(ctx, s, bs["b3"], func(b *Batch) { b.Status, b.JobID, b.NextPollAt = BatchRunning, "job", due }); err != nil {
		t.Fatal(err)
	}
	refs, err := s.InFlight(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Ref{}
	for _, r := range refs {
		got[r.MigrationID+"/"+r.BatchID] = r
	}
	if len(got) != 3 {
		t.Fatalf("in-flight = %+v, want m1, m1/b3, m1/b4", refs)
	}
	if r := got["m1/b3"]; r.Status != string(BatchRunning) || !r.NextPollAt.Equal(due) {
		t.Errorf("running batch row = %+v", r)
	}
	if r, ok := got["m1/"]; !ok || r.Status != string(MigrationRunning) {
		t.Errorf("migration row = %+v", r)
	}
	// One job running in b!c (b3), none elsewhere; the count stops at limit.
	if n, err := s.JobsInFlight(ctx, "b!c", 10); err != nil || n != 1 {
		t.Errorf("JobsInFlight(b!c) = %d, %v; want 1", n, err)
	}
	if n, err := s.JobsInFlight(ctx, "b!other", 10); err != nil || n != 0 {
		t.Errorf("JobsInFlight(b!other) = %d, %v; want 0", n, err)
	}
	// Finishing the migration drops its row too.
	m.Status = MigrationCompleted
	if err := s.ReplaceMigration(ctx, m); err != nil {
		t.Fatal(err)
	}
	// A stale row (crash between the terminal write and the unindex) is
	// dropped by ForgetInFlight, a live one kept.
	if err := s.putInFlight(ctx, Ref{MigrationID: "m1", BatchID: "b0", Status: string(BatchRunning), Updated: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetInFlight(ctx, "m1", "b0"); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetInFlight(ctx, "m1", "b4"); err != nil {
		t.Fatal(err)
	}
	refs, _ = s.InFlight(ctx, 0)
	if len(refs) != 2 || refs[0].BatchID != "b3" || refs[1].BatchID != "b4" {
		t.Errorf("in-flight after finishing = %+v", refs)
	}
	if refs, _ := s.InFlight(ctx, 1); len(refs) != 1 {
		t.Errorf("limit 1 returned %d rows", len(refs))
	}
}

func TestEventsStoredOnce(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	page, err := graph.DecodeEvents([]byte(`{"value":[
	 {"@odata.type":"#microsoft.graph.sharePointMigrationJobStartEvent","id":"e2","jobId":"j1","eventDateTime":"2026-03-10T09:05:40Z","isRestarted":false},
	 {"@odata.type":"#microsoft.graph.sharePointMigrationJobQueuedEvent","id":"e1","jobId":"j1","eventDateTime":"2026-03-10T09:02:12Z"},
	 {"@odata.type":"#microsoft.graph.sharePointMigrationJobProgressEvent","id":"e3","jobId":"j2","eventDateTime":"2026-03-10T10:00:00Z","isCompleted":true,"totalErrors":"2"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.PutEvents(ctx, "m1", "b1", page)
	if err != nil || n != 3 {
		t.Fatalf("first put: %d, %v", n, err)
	}
	n, err = s.PutEvents(ctx, "m1", "b1", page)
	if err != nil || n != 0 {
		t.Fatalf("second put stored %d again, %v", n, err)
	}
	all, err := s.ListEvents(ctx, "m1", "b1", "")
	if err != nil || len(all) != 3 || all[0].ID != "e1" || all[2].ID != "e3" {
		t.Fatalf("events = %+v, %v", all, err)
	}
	j2, err := s.ListEvents(ctx, "m1", "b1", "j2")
	if err != nil || len(j2) != 1 {
		t.Fatalf("job j2 events = %+v, %v", j2, err)
	}
	if ev := j2[0]; !ev.Completed() || ev.Progress.TotalErrors != 2 {
		t.Fatalf("decoded stored event = %+v", ev)
	}
}

func TestClaims(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	key := "document library/reports/q1 #1?.pdf" // characters keys may not hold
	if got, err := s.Claim(ctx, "m1", key, "Reports/Q1 #1?.pdf"); err != nil || got != "Reports/Q1 #1?.pdf" {
		t.Fatalf("first claim: %q, %v", got, err)
	}
	if got, err := s.Claim(ctx, "m1", key, "Reports/Q1 #1?.pdf"); err != nil || got != "Reports/Q1 #1?.pdf" {
		t.Fatalf("re-claim by the owner: %q, %v", got, err)
	}
	if got, err := s.Claim(ctx, "m1", key, "reports/q1 #1?.PDF"); err != nil || got != "Reports/Q1 #1?.pdf" {
		t.Fatalf("colliding claim: %q, %v", got, err)
	}
	if got, err := s.Claim(ctx, "m2", key, "other"); err != nil || got != "other" {
		t.Fatalf("claims are per migration: %q, %v", got, err)
	}
	// Racing claimants: exactly one wins and both learn who.
	var wg sync.WaitGroup
	owners := make([]string, 8)
	for i := range owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.Claim(ctx, "m3", "k", fmt.Sprintf("owner-%d", i))
			if err != nil {
				t.Error(err)
			}
			owners[i] = got
		}()
	}
	wg.Wait()
	for _, o := range owners[1:] {
		if o != owners[0] {
			t.Fatalf("claimants disagree on the owner: %v", owners)
		}
	}
}

func TestItemsAndResults(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	var items []Item
	for i := 0; i < 150; i++ {
		p := fmt.Sprintf("dir/f%03d.txt", i)
		items = append(items, Item{Path: p, Target: "x/" + p, Renamed: i == 7, NamingReason: "why",
			Versions: []source.Entry{{Path: p, Size: int64(i), ETag: "x"}}})
	}
	if err := s.PutBatchItems(ctx, "m1", "b0", items); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBatchItems(ctx, "m1", "b0", items); err != nil { // re-run
		t.Fatal(err)
	}
	back, err := s.BatchItems(ctx, "m1", "b0")
	if err != nil || len(back) != 150 || back[149].Path != items[149].Path || !reflect.DeepEqual(back[7], items[7]) {
		t.Fatalf("batch items: %d, %v", len(back), err)
	}

	var results []ItemResult
	for i := 0; i < 250; i++ {
		results = append(results, ItemResult{MigrationID: "m1", SourcePath: fmt.Sprintf("dir/f%03d.txt", i), Outcome: OutcomePending, BatchID: "b0"})
	}
	if err := s.PutResults(ctx, results); err != nil {
		t.Fatal(err)
	}
	results[5].Outcome, results[5].Reason = OutcomeSkipped, "name contains ':' (replace policy: skip)"
	// The same item twice in one call: the last write wins.
	results = append(results, ItemResult{MigrationID: "m1", SourcePath: "dir/f006.txt", Outcome: OutcomeRenamed, Renamed: true, Reason: "collision"})
	if err := s.PutResults(ctx, results); err != nil {
		t.Fatal(err)
	}
	seen := map[string]ItemResult{}
	token, pages := "", 0
	for {
		page, next, err := s.ListResults(ctx, "m1", token, 100)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page {
			if _, dup := seen[r.SourcePath]; dup {
				t.Fatalf("%s listed twice", r.SourcePath)
			}
			seen[r.SourcePath] = r
		}
		if next == "" {
			break
		}
		token = next
	}
	if len(seen) != 250 || pages != 3 {
		t.Fatalf("listed %d results in %d pages", len(seen), pages)
	}
	if r := seen["dir/f005.txt"]; r.Outcome != OutcomeSkipped || r.Reason == "" {
		t.Errorf("skipped result = %+v", r)
	}
	if r := seen["dir/f006.txt"]; r.Outcome != OutcomeRenamed || !r.Renamed {
		t.Errorf("renamed result = %+v", r)
	}
}

func TestSealer(t *testing.T) {
	if _, err := NewSealer("c2hvcnQ="); err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Errorf("short key: %v", err)
	}
	if _, err := NewSealer("not base64!"); err == nil {
		t.Error("bad base64 accepted")
	}
	sl, err := NewSealer(randomKey(t))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := sl.Seal([]byte("secret"))
	b, _ := sl.Seal([]byte("secret"))
	if a == b || strings.Contains(a, "secret") {
		t.Errorf("sealing is deterministic or transparent: %q %q", a, b)
	}
	if pt, err := sl.Open(a); err != nil || string(pt) != "secret" {
		t.Errorf("open: %q %v", pt, err)
	}
	if _, err := sl.OpenFor(a, "elsewhere"); err == nil {
		t.Error("opened under another context")
	}
}
