package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

var azurite *stack.Stack

func TestMain(m *testing.M) {
	stacktest.Main(m, stack.Options{Azurite: true}, stacktest.NotShort, func(s *stack.Stack) { azurite = s })
}

const testKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func template(t *testing.T) request.Request {
	t.Helper()
	r, err := request.DecodeBytes([]byte(`{"v":1,"source":{"kind":"azureBlob","containerUrl":"https://acct.blob.core.windows.net/src?sv=1&sp=rl&sig=T0pS3cret"},"target":{"containerId":"b!ISJs1WRro0y0EWgkUYcktDa0mE8z"}}`))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// memStore is an in-memory Store for the runner's logic; TableStore has its
// own test against Azurite below.
type memStore struct {
	mu   sync.Mutex
	list []*Schedule
	gen  int
}

func (m *memStore) List(context.Context) ([]*Schedule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Schedule
	for _, s := range m.list {
		cp := *s
		out = append(out, &cp)
	}
	return out, nil
}

func (m *memStore) MarkSlot(_ context.Context, s *Schedule, slot time.Time, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, cur := range m.list {
		if cur.ID == s.ID {
			if cur.ETag != s.ETag {
				return ErrConflict
			}
			m.gen++
			cur.LastSlot, cur.LastMigrationID, cur.ETag = slot, id, fmt.Sprint(m.gen)
			return nil
		}
	}
	return ErrConflict
}

// starter records starts and, like the engine, starts an id only once.
type starter struct {
	mu      sync.Mutex
	started map[string]request.Request
	calls   int
	fail    error
}

func (s *starter) StartMigration(_ context.Context, id string, req request.Request) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail != nil {
		return false, s.fail
	}
	if s.started == nil {
		s.started = map[string]request.Request{}
	}
	if _, ok := s.started[id]; ok {
		return false, nil
	}
	s.started[id] = req
	return true, nil
}

func TestRunnerStartsEachSlotOnce(t *testing.T) {
	ctx := context.Background()
	store := &memStore{list: []*Schedule{
		{ID: "hourly", Cron: "0 0 * * * *", Request: template(t), Created: at("2026-11-26T09:30:00Z"), ETag: "0"},
		{ID: "nightly", Cron: "0 0 2 * * *", Request: template(t), Created: at("2026-11-26T09:30:00Z"), ETag: "0"},
	}}
	st := &starter{}
	r := &Runner{Store: store, Starter: st}

	// 09:59: nothing due (the 09:00 slot is before the schedule existed).
	if err := r.Run(ctx, at("2026-11-26T09:59:00Z")); err != nil {
		t.Fatal(err)
	}
	if len(st.started) != 0 {
		t.Fatalf("started %v before any slot was due", st.started)
	}
	// 10:00:20, then a second timer run for the same slot.
	for range 2 {
		if err := r.Run(ctx, at("2026-11-26T10:00:20Z")); err != nil {
			t.Fatal(err)
		}
	}
	want := request.IDForSchedule("hourly", at("2026-11-26T10:00:00Z"))
	if len(st.started) != 1 || st.started[want].ID != want {
		t.Fatalf("started %v, want exactly %s", keys(st.started), want)
	}
	// A concurrent runner that read the schedule before the slot was marked
	// calls the starter again, but the deterministic id starts nothing.
	stale := &memStore{list: []*Schedule{{ID: "hourly", Cron: "0 0 * * * *", Request: template(t), Created: at("2026-11-26T09:30:00Z"), ETag: "0"}}}
	if err := (&Runner{Store: stale, Starter: st}).Run(ctx, at("2026-11-26T10:00:40Z")); err != nil {
		t.Fatal(err)
	}
	if len(st.started) != 1 {
		t.Fatalf("a second runner for the same slot started %v", keys(st.started))
	}
	// After an outage only the latest missed slot runs.
	if err := r.Run(ctx, at("2026-11-26T14:10:00Z")); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.started[request.IDForSchedule("hourly", at("2026-11-26T14:00:00Z"))]; !ok || len(st.started) != 2 {
		t.Fatalf("after an outage started %v", keys(st.started))
	}
	// The template's secret reaches the engine intact.
	if got := st.started[want].Source.ContainerURL; !strings.Contains(got, "T0pS3cret") {
		t.Errorf("template URL handed to the starter = %q", got)
	}
}

func TestRunnerFailureLeavesSlotDue(t *testing.T) {
	ctx := context.Background()
	store := &memStore{list: []*Schedule{{ID: "hourly", Cron: "0 0 * * * *", Request: template(t), Created: at("2026-11-26T09:30:00Z"), ETag: "0"}}}
	st := &starter{fail: errors.New("table storage down")}
	r := &Runner{Store: store, Starter: st}
	if err := r.Run(ctx, at("2026-11-26T10:00:20Z")); err == nil || !strings.Contains(err.Error(), "hourly") {
		t.Fatalf("Run = %v, want an error naming the schedule", err)
	}
	st.fail = nil
	if err := r.Run(ctx, at("2026-11-26T10:01:00Z")); err != nil {
		t.Fatal(err)
	}
	if len(st.started) != 1 {
		t.Fatalf("the failed slot was not retried: %v", keys(st.started))
	}
}

func TestScheduleValidate(t *testing.T) {
	tmpl := template(t)
	withID := tmpl
	withID.ID = "fixed"
	bad := tmpl
	bad.Options.Batch.MaxItems = 1000
	for _, tt := range []struct {
		s     Schedule
		field string
	}{
		{Schedule{Cron: "", Request: tmpl}, "cron"},
		{Schedule{Cron: "* * * * * *", Request: tmpl}, "cron"},
		{Schedule{Cron: "0 61 * * * *", Request: tmpl}, "cron"},
		{Schedule{ID: "bad id!", Cron: "0 0 * * * *", Request: tmpl}, "id"},
		{Schedule{Cron: "0 0 * * * *", Request: withID}, "request.id"},
		{Schedule{Cron: "0 0 * * * *", Request: bad}, "request.options.batch.maxItems"},
	} {
		err := tt.s.Validate()
		var re *request.Error
		if !errors.As(err, &re) {
			t.Errorf("%+v: err = %v", tt.s.Cron, err)
			continue
		}
		found := false
		for _, f := range re.Fields {
			found = found || f.Field == tt.field
		}
		if !found {
			t.Errorf("error %v does not name %s", err, tt.field)
		}
	}
	ok := Schedule{ID: "nightly", Cron: "0 0 2 * * *", Request: tmpl}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid schedule: %v", err)
	}
}

func TestTableStore(t *testing.T) {
	if azurite == nil {
		t.Skip("needs Azurite (not started with -short)")
	}
	ctx := context.Background()
	svc, err := aztables.NewServiceClientFromConnectionString(azurite.StorageConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := state.NewSealer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	ts := NewTableStore(svc, "T"+strings.ReplaceAll(t.Name(), "_", ""), sealer)
	if err := ts.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ts.CreateTable(ctx); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	s := &Schedule{ID: "nightly", Cron: "0 0 2 * * *", Request: template(t), Created: at("2026-11-26T09:30:00Z")}
	if err := ts.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := ts.Create(ctx, &Schedule{ID: "nightly", Cron: "0 0 3 * * *", Request: template(t)}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate Create = %v", err)
	}

	// The secret is sealed at rest: the raw entity does not contain it.
	raw, err := svc.NewClient(ts.name).GetEntity(ctx, partition, "nightly", nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw.Value), "T0pS3cret") {
		t.Errorf("stored entity holds the SAS signature: %s", raw.Value)
	}

	got, err := ts.Get(ctx, "nightly")
	if err != nil {
		t.Fatal(err)
	}
	if got.Cron != s.Cron || got.Request.Digest() != s.Request.Digest() || !strings.Contains(got.Request.Source.ContainerURL, "T0pS3cret") || !got.Created.Equal(s.Created) {
		t.Errorf("Get = %+v", got)
	}

	// MarkSlot is conditional: a stale copy loses.
	stale := *got
	if err := ts.MarkSlot(ctx, got, at("2026-11-27T02:00:00Z"), "s-nightly-x"); err != nil {
		t.Fatal(err)
	}
	if err := ts.MarkSlot(ctx, &stale, at("2026-11-27T02:00:00Z"), "s-nightly-x"); !errors.Is(err, ErrConflict) {
		t.Errorf("stale MarkSlot = %v, want ErrConflict", err)
	}

	// The runner over the real store: the slot is recorded and not started
	// twice.
	st := &starter{}
	r := &Runner{Store: ts, Starter: st}
	for range 2 {
		if err := r.Run(ctx, at("2026-11-28T02:00:05Z")); err != nil {
			t.Fatal(err)
		}
	}
	list, err := ts.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := request.IDForSchedule("nightly", at("2026-11-28T02:00:00Z"))
	if len(list) != 1 || list[0].LastMigrationID != want || st.calls != 1 {
		t.Errorf("after two runs: list %+v, starter calls %d", list, st.calls)
	}
	b, _ := json.Marshal(list[0].Request.Redacted())
	if strings.Contains(string(b), "T0pS3cret") {
		t.Error("redacted template holds the secret")
	}

	if err := ts.Delete(ctx, "nightly"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Get(ctx, "nightly"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete = %v", err)
	}
	if err := ts.Delete(ctx, "nightly"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete = %v", err)
	}
}

func keys(m map[string]request.Request) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
