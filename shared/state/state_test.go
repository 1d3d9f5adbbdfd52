package state

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
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

func TestConcurrentUpdatesBothApply(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, _, err := s.CreateMigration(ctx, Migration{ID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateBatch(ctx, Batch{MigrationID: "m1", Index: 1}); err != nil {
		t.Fatal(err)
	}
	// Both updaters read the same version before either writes, so one of
	// them must lose the race, re-read and apply its change again.
	var read sync.WaitGroup
	read.Add(2)
	var calls atomic.Int32
	update := func(apply func(*Batch)) error {
		first := true
		_, err := s.UpdateBatch(ctx, "m1", BatchID(1), func(b *Batch) error {
			calls.Add(1)
			if first {
				first = false
				read.Done()
				read.Wait()
			}
			apply(b)
			return nil
		})
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs[0] = update(func(b *Batch) { b.JobID = "job-1" }) }()
	go func() { defer wg.Done(); errs[1] = update(func(b *Batch) { b.Cursor = "cursor-7"; b.Errors++ }) }()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if calls.Load() < 3 {
		t.Errorf("update functions ran %d times; the loser should have re-read", calls.Load())
	}
	b, err := s.GetBatch(ctx, "m1", BatchID(1))
	if err != nil {
		t.Fatal(err)
	}
	if b.JobID != "job-1" || b.Cursor != "cursor-7" || b.Errors != 1 {
		t.Errorf("batch after both updates: job %q cursor %q errors %d", b.JobID, b.Cursor, b.Errors)
	}
}

func TestReplaceWithStaleETag(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	m, created, err := s.CreateMigration(ctx, Migration{ID: "m1", Request: `{"v":1}`, ClientRequestID: "c-1"})
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	again, created, err := s.CreateMigration(ctx, Migration{ID: "m1", Request: `{"v":1,"other":true}`})
	if err != nil || created || again.Request != `{"v":1}` || again.ClientRequestID != "c-1" {
		t.Fatalf("second create: created=%v request=%q err=%v", created, again.Request, err)
	}
	m.State = MigrationPlanning
	m.Items = 1 << 40 // Int64 round trip
	m2, err := s.ReplaceMigration(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	m.State = MigrationRunning
	if _, err := s.ReplaceMigration(ctx, m); !errors.Is(err, ErrStale) {
		t.Fatalf("replace with stale ETag: %v, want ErrStale", err)
	}
	got, err := s.GetMigration(ctx, "m1")
	if err != nil || got.State != MigrationPlanning || got.Items != 1<<40 || got.ETag != m2.ETag {
		t.Fatalf("stored %+v, %v", got, err)
	}
	// ErrNoChange: no write, ETag unchanged.
	got2, err := s.UpdateMigration(ctx, "m1", func(*Migration) error { return ErrNoChange })
	if err != nil || got2.ETag != got.ETag {
		t.Fatalf("no-change update wrote: %v", err)
	}
	if _, err := s.GetMigration(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing migration: %v", err)
	}
	if _, _, err := s.CreateMigration(ctx, Migration{ID: "a/b"}); err == nil || !strings.Contains(err.Error(), "migration id") {
		t.Errorf("bad id: %v", err)
	}
}

// TestSecretsAreSealed reads every table raw and searches for the SAS
// signature and the key.
func TestSecretsAreSealed(t *testing.T) {
	s, sealKey := newStore(t)
	ctx := context.Background()
	info := provisioned()
	if _, _, err := s.CreateBatch(ctx, Batch{MigrationID: "m1", Index: 1, Containers: info}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateBatch(ctx, "m1", BatchID(1), func(b *Batch) error { b.State = BatchStaged; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBatch(ctx, "m1", BatchID(1))
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
	// A sealed value moved to another row does not open there.
	resp, err := s.batches.GetEntity(ctx, "m1", BatchID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := unmarshalEntity(resp.Value, resp.ETag)
	e.p["Index"] = aztables.EDMInt64(2)
	data, _ := marshalEntity("m1", BatchID(2), e.p)
	if _, err := s.batches.AddEntity(ctx, data, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBatch(ctx, "m1", BatchID(2)); err == nil {
		t.Error("a sealed value copied to another row opened")
	} else if strings.Contains(err.Error(), "sig=") || strings.Contains(err.Error(), "gcm1:") {
		t.Errorf("error reveals the value: %v", err)
	}
	// A store with another key cannot open the batch.
	other, err := New(s.svc, Options{TablePrefix: strings.TrimSuffix(s.names[0], "Migrations"), SealKey: randomKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.GetBatch(ctx, "m1", BatchID(1)); err == nil {
		t.Error("opened with the wrong key")
	}
}

func TestInFlightIndex(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, _, err := s.CreateMigration(ctx, Migration{ID: "m1"}); err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 5; i++ {
		if _, _, err := s.CreateBatch(ctx, Batch{MigrationID: "m1", Index: i}); err != nil {
			t.Fatal(err)
		}
	}
	due := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	finish := map[string]BatchState{BatchID(0): BatchCompleted, BatchID(1): BatchFailed, BatchID(2): BatchCancelled}
	for id, st := range finish {
		if _, err := s.UpdateBatch(ctx, "m1", id, func(b *Batch) error { b.State = st; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.UpdateBatch(ctx, "m1", BatchID(3), func(b *Batch) error {
		b.State, b.JobID, b.NextPollAt = BatchSubmitted, "job", due
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	refs, err := s.InFlight(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]InFlightRef{}
	for _, r := range refs {
		got[r.MigrationID+"/"+r.BatchID] = r
	}
	if len(got) != 3 {
		t.Fatalf("in-flight = %+v, want m1, m1/000003, m1/000004", refs)
	}
	if r := got["m1/"+BatchID(3)]; r.State != string(BatchSubmitted) || !r.NextPollAt.Equal(due) {
		t.Errorf("submitted batch row = %+v", r)
	}
	if r, ok := got["m1/"]; !ok || r.State != string(MigrationAccepted) {
		t.Errorf("migration row = %+v", r)
	}
	// Finishing the migration drops its row too.
	if _, err := s.UpdateMigration(ctx, "m1", func(m *Migration) error { m.State = MigrationCompleted; return nil }); err != nil {
		t.Fatal(err)
	}
	// A stale row (crash between the terminal write and the unindex) is
	// dropped by ForgetInFlight, a live one kept.
	if err := s.putInFlight(ctx, "m1", BatchID(0), string(BatchSubmitted), time.Time{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetInFlight(ctx, "m1", BatchID(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetInFlight(ctx, "m1", BatchID(4)); err != nil {
		t.Fatal(err)
	}
	refs, _ = s.InFlight(ctx, 0)
	if len(refs) != 2 || refs[0].BatchID != BatchID(3) || refs[1].BatchID != BatchID(4) {
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
	ev, err := j2[0].Graph()
	if err != nil || !ev.Completed() || ev.Progress.TotalErrors != 2 {
		t.Fatalf("decoded stored event = %+v, %v", ev, err)
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
	var items []BatchItem
	for i := 0; i < 150; i++ {
		items = append(items, BatchItem{Seq: int64(i), SourcePath: fmt.Sprintf("dir/f%03d.txt", i), TargetPath: fmt.Sprintf("dir/f%03d.txt", i), Size: int64(i), Detail: `{"etag":"x"}`})
	}
	if err := s.PutBatchItems(ctx, "m1", BatchID(0), items); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBatchItems(ctx, "m1", BatchID(0), items); err != nil { // re-run
		t.Fatal(err)
	}
	back, err := s.BatchItems(ctx, "m1", BatchID(0))
	if err != nil || len(back) != 150 || back[149].Seq != 149 || back[7] != items[7] {
		t.Fatalf("batch items: %d, %v", len(back), err)
	}

	var results []Result
	for i := 0; i < 250; i++ {
		results = append(results, Result{MigrationID: "m1", SourcePath: fmt.Sprintf("dir/f%03d.txt", i), Outcome: OutcomePending, BatchID: BatchID(0)})
	}
	if err := s.PutResults(ctx, results); err != nil {
		t.Fatal(err)
	}
	results[5].Outcome, results[5].Reason = OutcomeSkipped, "name contains ':' (replace policy: skip)"
	// The same item twice in one call: the last write wins.
	results = append(results, Result{MigrationID: "m1", SourcePath: "dir/f006.txt", Outcome: OutcomeRenamed, Renamed: true, Reason: "collision"})
	if err := s.PutResults(ctx, results); err != nil {
		t.Fatal(err)
	}
	seen := map[string]Result{}
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
