package api

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
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
	sent []queue.Message
}

func (s *sender) Send(_ context.Context, msgs ...queue.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, msgs...)
	return nil
}

const key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// backend wires the EngineBackend over real Table Storage (Azurite) and a
// real engine whose Graph, staging and sources are never reached by these
// tests.
func backend(t *testing.T) (*EngineBackend, *state.Store, *pipeline.Engine, *sender) {
	t.Helper()
	if azurite == nil {
		t.Skip("needs Azurite (not started with -short)")
	}
	ctx := context.Background()
	prefix := "M" + strings.NewReplacer("_", "", "/", "").Replace(t.Name())
	st, err := state.NewFromConnectionString(azurite.StorageConnectionString, state.Options{TablePrefix: prefix, SealKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	snd := &sender{}
	eng, err := pipeline.New(pipeline.Deps{Store: st, Graph: noGraph{}, Stager: noStager{}, Namer: noNamer{}, Planner: noPlanner{},
		Sources: noSources{}, Sender: snd}, pipeline.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &EngineBackend{Engine: eng, Store: st}, st, eng, snd
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
	svc, _, _, snd := backend(t)
	ctx := context.Background()
	m, created, err := svc.Start(ctx, "m1", req(t, "a"))
	if err != nil || !created {
		t.Fatalf("Start = %v, %v", created, err)
	}
	if m.ID != "m1" || m.Status != StatusRunning || m.Request == nil || strings.Contains(m.Request.Source.ContainerURL, "S3cr3tSig") {
		t.Errorf("started migration = %+v", m)
	}
	if len(snd.sent) != 1 || snd.sent[0].Step != queue.StepProvision {
		t.Errorf("sent %+v, want the first plan message", snd.sent)
	}
	// Same request (even with a rotated SAS): nothing new.
	rotated := req(t, "a")
	rotated.Source.ContainerURL = strings.Replace(rotated.Source.ContainerURL, "S3cr3tSig", "0therSig", 1)
	if _, created, err := svc.Start(ctx, "m1", rotated); err != nil || created {
		t.Errorf("repeat Start = %v, %v", created, err)
	}
	// Different request, same id: conflict.
	if _, _, err := svc.Start(ctx, "m1", req(t, "b")); !errors.Is(err, ErrIDConflict) {
		t.Errorf("conflicting Start = %v", err)
	}
	if _, created, err := svc.Start(ctx, "m2", req(t, "c")); err != nil || !created {
		t.Errorf("second migration Start = %v, %v", created, err)
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
	if _, err := svc.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get unknown = %v", err)
	}
	if _, _, err := svc.Items(ctx, "nope", "", 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("Items unknown = %v", err)
	}
}

// TestDeadLetteredBatchItemsFail: failing a batch (its message was
// dead-lettered) goes through the engine, so its items read failed with
// the reason in the report, not pending.
func TestDeadLetteredBatchItemsFail(t *testing.T) {
	svc, st, eng, _ := backend(t)
	ctx := context.Background()
	if _, _, err := svc.Start(ctx, "m1", req(t, "a")); err != nil {
		t.Fatal(err)
	}
	b := &state.Batch{MigrationID: "m1", ID: "p000000-b000", ContainerID: "b!ISJs1WRro0y0EWgkUYcktDa0mE8z",
		Status: state.BatchStaged, Attempt: 1, Items: 2, Bytes: 3}
	items := []state.Item{{Path: "x.txt", Target: "a/x.txt"}, {Path: "y:z.txt", Target: "a/y_z.txt", Renamed: true, NamingReason: "':' replaced"}}
	if err := st.CreateBatch(ctx, b, items); err != nil {
		t.Fatal(err)
	}
	var pending []state.ItemResult
	for _, it := range items {
		pending = append(pending, state.ItemResult{MigrationID: "m1", SourcePath: it.Path, TargetPath: it.Target, BatchID: b.ID, Outcome: state.OutcomePending})
	}
	if err := st.PutResults(ctx, pending); err != nil {
		t.Fatal(err)
	}
	reason := "message dead-lettered on queue submit: MaxDeliveryCountExceeded"
	if err := eng.FailBatch(ctx, "m1", b.ID, reason); err != nil {
		t.Fatal(err)
	}
	m, err := svc.Get(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Batches) != 1 || m.Batches[0].Status != string(state.BatchFailed) || m.Batches[0].Reason != reason || m.Batches[0].FilesFailed != 2 {
		t.Errorf("batch after FailBatch = %+v", m.Batches)
	}
	got, _, err := svc.Items(ctx, "m1", "", 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("items = %+v, %v", got, err)
	}
	for _, it := range got {
		if it.Outcome != OutcomeFailed || !strings.Contains(it.Reason, reason) {
			t.Errorf("%s: %s %q after its batch was dead-lettered; want failed with the reason", it.SourcePath, it.Outcome, it.Reason)
		}
	}
	// Failing an ended batch again changes nothing.
	if err := eng.FailBatch(ctx, "m1", b.ID, "other"); err != nil {
		t.Fatal(err)
	}
	if m, _ := svc.Get(ctx, "m1"); m.Batches[0].Reason != reason {
		t.Errorf("reason overwritten: %q", m.Batches[0].Reason)
	}
	if err := eng.FailMigration(ctx, "nope", "x"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("FailMigration unknown = %v", err)
	}
}

// TestGetAndListAgree: a migration whose planning failed after batches had
// been planned (and finished) reads the same status on GET and in LIST.
func TestGetAndListAgree(t *testing.T) {
	svc, st, eng, _ := backend(t)
	ctx := context.Background()
	if _, _, err := svc.Start(ctx, "m1", req(t, "a")); err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMigration(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	m.PlanPage, m.Counters.Batches, m.Counters.Items = 1, 1, 1
	if err := st.ReplaceMigration(ctx, m); err != nil {
		t.Fatal(err)
	}
	b := &state.Batch{MigrationID: "m1", ID: "p000000-b000", Status: state.BatchSucceeded, Attempt: 1, Items: 1, FilesMigrated: 1}
	if err := st.CreateBatch(ctx, b, []state.Item{{Path: "x.txt", Target: "a/x.txt"}}); err != nil {
		t.Fatal(err)
	}
	if err := eng.FailMigration(ctx, "m1", "message dead-lettered on queue provision"); err != nil {
		t.Fatal(err)
	}
	got, err := svc.Get(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	list, _, err := svc.List(ctx, "", 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if got.Status != StatusCompletedWithErrors || list[0].Status != got.Status || list[0].Reason != got.Reason {
		t.Errorf("GET says %s (%q), LIST says %s (%q); want both completedWithErrors", got.Status, got.Reason, list[0].Status, list[0].Reason)
	}
}

// TestPlanningFailedBeforeAnyBatch: nothing planned, so the migration failed.
func TestPlanningFailedBeforeAnyBatch(t *testing.T) {
	svc, _, eng, _ := backend(t)
	ctx := context.Background()
	if _, _, err := svc.Start(ctx, "m1", req(t, "a")); err != nil {
		t.Fatal(err)
	}
	if err := eng.FailMigration(ctx, "m1", "message dead-lettered on queue provision"); err != nil {
		t.Fatal(err)
	}
	m, _ := svc.Get(ctx, "m1")
	list, _, _ := svc.List(ctx, "", 10)
	if m.Status != StatusFailed || m.Reason != "message dead-lettered on queue provision" || len(list) != 1 || list[0].Status != StatusFailed {
		t.Errorf("after FailMigration: GET %s %q, LIST %+v", m.Status, m.Reason, list)
	}
}

func TestItemsAndCancel(t *testing.T) {
	svc, st, _, _ := backend(t)
	ctx := context.Background()
	if _, _, err := svc.Start(ctx, "m1", req(t, "a")); err != nil {
		t.Fatal(err)
	}
	results := []state.ItemResult{
		{MigrationID: "m1", SourcePath: "a.txt", TargetPath: "a/a.txt", Size: 1, Outcome: state.OutcomeImported},
		{MigrationID: "m1", SourcePath: "b:c.txt", TargetPath: "a/b_c.txt", Size: 2, Outcome: state.OutcomeRenamed, Renamed: true, Reason: "':' replaced"},
		{MigrationID: "m1", SourcePath: "CON", Outcome: state.OutcomeSkipped, Reason: "reserved name"},
		{MigrationID: "m1", SourcePath: "d.bin", Outcome: state.OutcomeFailed, Reason: "import error"},
		{MigrationID: "m1", SourcePath: "e.bin", Outcome: state.OutcomePending},
	}
	if err := st.PutResults(ctx, results); err != nil {
		t.Fatal(err)
	}
	got := map[string]Item{}
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
	want := map[string]string{"a.txt": OutcomeImported, "b:c.txt": OutcomeRenamed, "CON": OutcomeSkipped, "d.bin": OutcomeFailed, "e.bin": OutcomePending}
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
	if !m.CancelRequested || (m.Status != StatusCancelling && m.Status != StatusCancelled) {
		t.Errorf("after Cancel = %s cancelRequested=%v", m.Status, m.CancelRequested)
	}
	if _, err := svc.Cancel(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Cancel unknown = %v", err)
	}
}
