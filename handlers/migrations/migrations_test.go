package migrations

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

var azurite *stack.Stack

func TestMain(m *testing.M) {
	stacktest.Main(m, stack.Options{Azurite: true}, stacktest.NotShort, func(s *stack.Stack) { azurite = s })
}

// Collaborators the tested paths never call: embedding the interface keeps
// the stub honest (a call would panic).
type (
	noGraph   struct{ pipeline.Graph }
	noStager  struct{ pipeline.Stager }
	noNamer   struct{ pipeline.Namer }
	noPlanner struct{ pipeline.Planner }
	noSources struct{ pipeline.Sources }
)

// sender records the engine's next messages.
type sender struct {
	mu   sync.Mutex
	sent []pipeline.Next
}

func (s *sender) Send(_ context.Context, msgs []pipeline.Next) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, msgs...)
	return nil
}

const key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// service wires the Service over real Table Storage (Azurite) and a real
// engine whose Graph, staging and sources are never reached by these tests.
func service(t *testing.T) (*Service, *pipeline.TableStore, *sender) {
	t.Helper()
	if azurite == nil {
		t.Skip("needs Azurite (not started with -short)")
	}
	ctx := context.Background()
	sealer, err := state.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "M" + strings.NewReplacer("_", "", "/", "").Replace(t.Name())
	st, err := state.NewFromConnectionString(azurite.StorageConnectionString, state.Options{TablePrefix: prefix, SealKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	ts := pipeline.NewTableStore(st, sealer)
	snd := &sender{}
	eng, err := pipeline.New(pipeline.Deps{Store: ts, Graph: noGraph{}, Stager: noStager{}, Namer: noNamer{}, Planner: noPlanner{},
		Sealer: sealer, Sources: noSources{}, Sender: snd}, pipeline.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &Service{Engine: eng, Store: ts, Lister: st,
		OpenRequest: func(m state.Migration) ([]byte, error) { return pipeline.OpenRequest(sealer, m) }}, ts, snd
}

func req(t *testing.T, folder string) request.Request {
	t.Helper()
	r, err := request.DecodeBytes([]byte(`{"v":1,"source":{"kind":"azureBlob","containerUrl":"https://acct.blob.core.windows.net/src?sv=1&sp=rl&sig=S3cr3tSig"},"target":{"containerId":"b!ISJs1WRro0y0EWgkUYcktDa0mE8z","folder":"` + folder + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStartIsIdempotent(t *testing.T) {
	svc, _, snd := service(t)
	ctx := context.Background()
	m, created, err := svc.Start(ctx, "m1", req(t, "a"))
	if err != nil || !created {
		t.Fatalf("Start = %v, %v", created, err)
	}
	if m.ID != "m1" || m.Status != api.StatusRunning || m.Request == nil || strings.Contains(m.Request.Source.ContainerURL, "S3cr3tSig") {
		t.Errorf("started migration = %+v", m)
	}
	if len(snd.sent) != 1 || snd.sent[0].Step != pipeline.StepPlan {
		t.Errorf("sent %+v, want the first plan message", snd.sent)
	}
	// Same request (even with a rotated SAS): nothing new.
	rotated := req(t, "a")
	rotated.Source.ContainerURL = strings.Replace(rotated.Source.ContainerURL, "S3cr3tSig", "0therSig", 1)
	if _, created, err := svc.Start(ctx, "m1", rotated); err != nil || created {
		t.Errorf("repeat Start = %v, %v", created, err)
	}
	// Different request, same id: conflict.
	if _, _, err := svc.Start(ctx, "m1", req(t, "b")); !errors.Is(err, api.ErrIDConflict) || !IsConflict(err) {
		t.Errorf("conflicting Start = %v", err)
	}
	// The starter interface used by schedules and the provision queue.
	if created, err := svc.StartMigration(ctx, "m2", req(t, "c")); err != nil || !created {
		t.Errorf("StartMigration = %v, %v", created, err)
	}
	list, _, err := svc.List(ctx, "", 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	for _, m := range list {
		if m.Request == nil || m.Request.Target.ContainerID == "" || strings.Contains(m.Request.Source.ContainerURL, "S3cr3tSig") {
			t.Errorf("listed %s with request %+v", m.ID, m.Request)
		}
	}
	if _, err := svc.Get(ctx, "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Get unknown = %v", err)
	}
	if _, _, err := svc.Items(ctx, "nope", "", 10); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Items unknown = %v", err)
	}
}

func TestFailuresAreVisible(t *testing.T) {
	svc, ts, _ := service(t)
	ctx := context.Background()
	if _, _, err := svc.Start(ctx, "m1", req(t, "a")); err != nil {
		t.Fatal(err)
	}
	b := &pipeline.Batch{MigrationID: "m1", ID: pipeline.BatchID(0, 0), ContainerID: "b!ISJs1WRro0y0EWgkUYcktDa0mE8z",
		Status: pipeline.BatchStaged, Attempt: 1, Items: 1, Bytes: 3, Updated: time.Now()}
	items := []pipeline.Item{{Target: "a/x.txt"}}
	if err := ts.CreateBatch(ctx, b, items); err != nil {
		t.Fatal(err)
	}
	reason := "message dead-lettered on queue submit: MaxDeliveryCountExceeded"
	if err := svc.FailBatch(ctx, "m1", b.ID, reason); err != nil {
		t.Fatal(err)
	}
	m, err := svc.Get(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Batches) != 1 || m.Batches[0].Status != string(pipeline.BatchFailed) || m.Batches[0].Reason != reason {
		t.Errorf("batch after FailBatch = %+v", m.Batches)
	}
	// Failing an ended batch again changes nothing.
	if err := svc.FailBatch(ctx, "m1", b.ID, "other"); err != nil {
		t.Fatal(err)
	}
	if m, _ := svc.Get(ctx, "m1"); m.Batches[0].Reason != reason {
		t.Errorf("reason overwritten: %q", m.Batches[0].Reason)
	}

	if err := svc.FailMigration(ctx, "m1", "message dead-lettered on queue provision"); err != nil {
		t.Fatal(err)
	}
	m, _ = svc.Get(ctx, "m1")
	if m.Status != api.StatusFailed || m.Reason != "message dead-lettered on queue provision" {
		t.Errorf("migration after FailMigration = %s %q", m.Status, m.Reason)
	}
	list, _, _ := svc.List(ctx, "", 10)
	if len(list) != 1 || list[0].Status != api.StatusFailed {
		t.Errorf("listed = %+v", list)
	}
	if err := svc.FailMigration(ctx, "nope", "x"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Errorf("FailMigration unknown = %v", err)
	}
}

func TestItemsAndCancel(t *testing.T) {
	svc, ts, _ := service(t)
	ctx := context.Background()
	if _, _, err := svc.Start(ctx, "m1", req(t, "a")); err != nil {
		t.Fatal(err)
	}
	results := []pipeline.ItemResult{
		{MigrationID: "m1", SourcePath: "a.txt", TargetPath: "a/a.txt", Size: 1, Outcome: pipeline.OutcomeMigrated},
		{MigrationID: "m1", SourcePath: "b:c.txt", TargetPath: "a/b_c.txt", Size: 2, Outcome: pipeline.OutcomeMigrated, Renamed: true, Reason: "':' replaced"},
		{MigrationID: "m1", SourcePath: "CON", Outcome: pipeline.OutcomeSkipped, Reason: "reserved name"},
		{MigrationID: "m1", SourcePath: "d.bin", Outcome: pipeline.OutcomeFailed, Reason: "import error"},
		{MigrationID: "m1", SourcePath: "e.bin", Outcome: pipeline.OutcomePending},
	}
	if err := ts.PutItemResults(ctx, results); err != nil {
		t.Fatal(err)
	}
	got := map[string]api.Item{}
	token := ""
	for {
		page, next, err := svc.Items(ctx, "m1", token, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page {
			got[it.SourcePath] = it
		}
		if next == "" {
			break
		}
		token = next
	}
	want := map[string]string{"a.txt": api.OutcomeImported, "b:c.txt": api.OutcomeRenamed, "CON": api.OutcomeSkipped, "d.bin": api.OutcomeFailed, "e.bin": api.OutcomePending}
	for path, outcome := range want {
		if got[path].Outcome != outcome {
			t.Errorf("%s: outcome %q, want %q", path, got[path].Outcome, outcome)
		}
	}
	if got["b:c.txt"].Reason != "':' replaced" || got["b:c.txt"].TargetPath != "a/b_c.txt" {
		t.Errorf("renamed item = %+v", got["b:c.txt"])
	}

	m, err := svc.Cancel(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if !m.CancelRequested || (m.Status != api.StatusCancelling && m.Status != api.StatusCancelled) {
		t.Errorf("after Cancel = %s cancelRequested=%v", m.Status, m.CancelRequested)
	}
	if _, err := svc.Cancel(ctx, "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Cancel unknown = %v", err)
	}
}
