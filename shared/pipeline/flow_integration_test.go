package pipeline_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

// More flows against the emulators: an Azure Blob source, concurrent
// duplicate deliveries, lost messages recovered by the drain, and cancel.

// itContainer returns a library no other test imports into.
func itContainer(t *testing.T, i int) string {
	t.Helper()
	if i >= len(itContainers) {
		t.Fatalf("container %d: only %d test containers", i, len(itContainers))
	}
	return itContainers[i].ID
}

func TestBlobSource(t *testing.T) {
	e := newITEnv(t, itOptions{})
	ctx := context.Background()
	bc, err := azblob.NewClientFromConnectionString(e.s.StorageConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	const cont = "pipeline-blob-source"
	if _, err := bc.CreateContainer(ctx, cont, nil); err != nil && !strings.Contains(err.Error(), "ContainerAlreadyExists") {
		t.Fatal(err)
	}
	specs := map[string]fileSpec{}
	names := []string{"reports/2026/q1.csv", "reports/2026/Q1.csv", "Übersicht/März.txt", "a:b.txt", "empty.dat", "deep/x/y/z/leaf.json"}
	for i, name := range names {
		body := []byte(strings.Repeat(fmt.Sprintf("%d:%s\n", i, name), i*50))
		if _, err := bc.UploadBuffer(ctx, cont, "export/"+name, body, &azblob.UploadBufferOptions{
			Metadata: map[string]*string{"author": ptr("alice@contoso.com")},
		}); err != nil {
			t.Fatal(err)
		}
		props, err := bc.ServiceClient().NewContainerClient(cont).NewBlobClient("export/"+name).GetProperties(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		specs[name] = fileSpec{size: int64(len(body)), sha: hex.EncodeToString(sum[:]), mtime: props.LastModified.UTC()}
	}
	cid := itContainer(t, 8)
	e.start("blob-source", request.Request{
		V: request.Version,
		Source: request.Source{
			Kind: request.KindAzureBlob, ContainerURL: e.s.BlobEndpoint + "/" + cont,
			Credential: request.CredentialConnectionString, ConnectionSetting: "SOURCE_STORAGE", Prefix: "export/",
		},
		Target: request.Target{ContainerID: cid},
	})
	m := e.drive("blob-source", runMode{}, 2*time.Minute)
	if m.Status != state.MigrationCompleted {
		t.Fatalf("status %s (%s)", m.Status, m.Reason)
	}
	e.verifyImport("blob-source", cid, specs)
	rs := e.results("blob-source")
	if r := rs["reports/2026/q1.csv"]; r.Outcome != state.OutcomeRenamed || !strings.Contains(r.Reason, "case") {
		t.Errorf("case collision: %+v", r)
	}
	var created struct {
		CreatedBy struct {
			User struct {
				Email string `json:"email"`
			} `json:"user"`
		} `json:"createdBy"`
	}
	e.graphGet("drives/"+cid+"/root:/deep/x/y/z/leaf.json:", &created)
	if !strings.EqualFold(created.CreatedBy.User.Email, "alice@contoso.com") {
		t.Errorf("author from blob metadata not preserved: %+v", created)
	}
}

func ptr[T any](v T) *T { return &v }

func TestConcurrentDuplicateDeliveries(t *testing.T) {
	if testing.Short() {
		t.Skip("60-file import with every message handled twice, four at a time")
	}
	e := newITEnv(t, itOptions{})
	dir := t.TempDir()
	specs := genSource(t, dir, 60, false)
	cid := itContainer(t, 9)
	e.start("concurrent", localRequest(dir, cid, request.Batch{MaxItems: 8, MaxBytes: 1 << 20}))
	m := e.drive("concurrent", runMode{dup: true, parallel: 4}, 3*time.Minute)
	if m.Status != state.MigrationCompleted {
		t.Fatalf("status %s (%s)", m.Status, m.Reason)
	}
	e.verifyImport("concurrent", cid, specs)
	e.assertJobs("concurrent")
	t.Logf("%d batches, %d step errors (lost races are retried by redelivery)", m.Counters.Batches, e.stepErrors.Load())
}

func TestDrainRecoversLostMessages(t *testing.T) {
	cfg := itConfig()
	cfg.StuckAfter, cfg.PollGrace = 3*time.Second, time.Second
	e := newITEnv(t, itOptions{cfg: cfg})
	dir := t.TempDir()
	specs := genSource(t, dir, 24, false)
	cid := itContainer(t, 10)
	var mu sync.Mutex
	lost := map[string]bool{}
	drop := func(n queue.Message) bool {
		mu.Lock()
		defer mu.Unlock()
		// The first stage, submit and poll message of every batch vanish.
		k := string(n.Step) + "/" + n.BatchID
		if n.Step == queue.StepProvision || n.Nonce != "" || lost[k] {
			return false
		}
		lost[k] = true
		return true
	}
	e.start("lost", localRequest(dir, cid, request.Batch{MaxItems: 10, MaxBytes: 1 << 20}))
	m := e.drive("lost", runMode{drop: drop}, 3*time.Minute)
	if m.Status != state.MigrationCompleted {
		t.Fatalf("status %s (%s)", m.Status, m.Reason)
	}
	if len(lost) < 6 {
		t.Errorf("only %d messages were lost; the test proves little", len(lost))
	}
	if !strings.Contains(e.logs.String(), "poll overdue; re-driven") {
		t.Error("no overdue poll was re-driven")
	}
	e.verifyImport("lost", cid, specs)
	e.assertJobs("lost")
}

func TestCancelDeletesQueuedJobs(t *testing.T) {
	e := newITEnv(t, itOptions{})
	e.emu.ClearFaults()
	t.Cleanup(e.emu.ClearFaults)
	for range 4 {
		e.emu.AddJobFaults(graphemu.JobFaults{QueueDelay: time.Minute})
	}
	dir := t.TempDir()
	genSource(t, dir, 20, false)
	cid := itContainer(t, 11)
	cancelled := false
	mode := runMode{after: func(n queue.Message, err error) {
		e.jobs.mu.Lock()
		created := e.jobs.created
		e.jobs.mu.Unlock()
		if !cancelled && created > 0 {
			cancelled = true
			if err := e.eng.Cancel(context.Background(), "cancel"); err != nil {
				t.Errorf("cancel: %v", err)
			}
		}
	}}
	e.start("cancel", localRequest(dir, cid, request.Batch{MaxItems: 6, MaxBytes: 1 << 20}))
	m := e.drive("cancel", mode, 2*time.Minute)
	if m.Status != state.MigrationCancelled {
		t.Fatalf("status %s", m.Status)
	}
	e.jobs.mu.Lock()
	live, created := len(e.jobs.live), e.jobs.created
	e.jobs.mu.Unlock()
	if created == 0 || live != 0 {
		t.Errorf("%d jobs created, %d not deleted; want every queued job deleted", created, live)
	}
	if tree := imported(e.driveTree(cid)); len(tree) != 0 {
		t.Errorf("%d items imported after cancel", len(tree))
	}
	for p, r := range e.results("cancel") {
		if r.Outcome != state.OutcomeCancelled && r.Outcome != state.OutcomeSkipped {
			t.Errorf("%q: %s", p, r.Outcome)
		}
	}
}
