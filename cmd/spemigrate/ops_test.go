package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
	"github.com/spemigrate/spemigrate/shared/request"
)

var sb *stack.Stack

func TestMain(m *testing.M) {
	stacktest.Main(m, stack.Options{ServiceBus: true}, stacktest.NotShort, func(s *stack.Stack) { sb = s })
}

const (
	target  = "b!ISJs1WRro0y0EWgkUYcktDa0mE8zSlFEqFzqRn70Zwp1"
	sig     = "c2VjcmV0U2lnbmF0dXJl"
	srcURL  = "https://acct.blob.core.windows.net/docs?sv=2024-08-04&sp=rl&sig=" + sig
	reqJSON = `{"v":1,"source":{"kind":"azureBlob","containerUrl":"` + srcURL + `"},"target":{"containerId":"` + target + `"}}`
)

// backend is an in-memory api.Backend whose migrations advance one step per
// read, so watch sees progress and an end.
type backend struct {
	// localRoot is the folder the test deployment lets local sources read
	// (its SPEMIGRATE_LOCAL_SOURCE_ROOTS), holding export/ and d/.
	localRoot string
	mu        sync.Mutex
	ms        map[string]*api.Migration
	reads     map[string]int
	starts    int
	finalSt   string
	finalCode string // the summary code at the end ("" as an older API)
	items     []api.Item
	canceled  []string
}

func newBackend() *backend {
	return &backend{ms: map[string]*api.Migration{}, reads: map[string]int{}, finalSt: api.StatusCompleted}
}

func (b *backend) Start(_ context.Context, id string, req request.Request) (api.Migration, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m, ok := b.ms[id]; ok {
		return *m, false, nil
	}
	b.starts++
	red := req.Redacted()
	m := &api.Migration{ID: id, Status: api.StatusRunning, Request: &red, Created: time.Now()}
	b.ms[id] = m
	return *m, true, nil
}

func (b *backend) List(context.Context, string, int) ([]api.Migration, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []api.Migration
	for _, m := range b.ms {
		out = append(out, *m)
	}
	return out, "", nil
}

func (b *backend) Get(_ context.Context, id string) (api.Migration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.ms[id]
	if !ok {
		return api.Migration{}, api.ErrNotFound
	}
	b.reads[id]++
	n := int64(b.reads[id])
	m.Counters = api.Counters{Entries: 4, Items: 4, PlanDone: true, BytesPlanned: 4 << 20, Batches: 1,
		FilesMigrated: min(n, 4), BytesMigrated: min(n, 4) << 20}
	if n >= 4 {
		m.Status, m.SummaryCode = b.finalSt, b.finalCode
		m.Counters.BatchesDone = 1
	}
	return *m, nil
}

func (b *backend) Items(_ context.Context, id, _ string, _ int) ([]api.Item, string, error) {
	return b.items, "", nil
}

func (b *backend) Cancel(_ context.Context, id string) (api.Migration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.ms[id]
	if !ok {
		return api.Migration{}, api.ErrNotFound
	}
	b.canceled = append(b.canceled, id)
	m.Status, m.CancelRequested = api.StatusCancelling, true
	return *m, nil
}

func server(t *testing.T) (*httptest.Server, *backend) {
	b := newBackend()
	b.localRoot = t.TempDir()
	for _, d := range []string{"export", "d"} {
		if err := os.Mkdir(filepath.Join(b.localRoot, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	policy := request.Policy{LocalRoots: []string{b.localRoot}}
	srv := httptest.NewServer((&api.Server{Backend: b, Policy: policy}).Handler())
	t.Cleanup(srv.Close)
	return srv, b
}

func cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestSubmitStatusWatchReport(t *testing.T) {
	srv, b := server(t)
	dir := t.TempDir()
	reqFile := filepath.Join(dir, "req.json")
	if err := os.WriteFile(reqFile, []byte(reqJSON), 0o600); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := cli(t, "submit", "--url", srv.URL, "--id", "cli-1", reqFile)
	if code != 0 || !strings.Contains(out, "migration cli-1 started") || !strings.Contains(out, srv.URL+"/api/migrations/cli-1") {
		t.Fatalf("submit: %d %q %q", code, out, errOut)
	}
	out, _, code = cli(t, "submit", "--url", srv.URL, "--id", "cli-1", reqFile)
	if code != 0 || !strings.Contains(out, "already exists") {
		t.Errorf("second submit: %d %q", code, out)
	}
	// From flags, with a local folder.
	out, errOut, code = cli(t, "submit", "--url", srv.URL, "--source", filepath.Join(b.localRoot, "export"), "--target", target, "--folder", "Imports")
	if code != 0 || !strings.Contains(out, "started") {
		t.Errorf("submit from flags: %d %q %q", code, out, errOut)
	}

	// Invalid requests are refused before anything is sent.
	before := b.starts
	for _, args := range [][]string{
		{"--source", "ftp://example.com/x", "--target", target},
		{"--source", "/srv/export", "--target", "not-a-container"},
		{"--source", "/srv/export"},
	} {
		_, errOut, code := cli(t, append([]string{"submit", "--url", srv.URL}, args...)...)
		if code == 0 || errOut == "" {
			t.Errorf("submit %v accepted: %q", args, errOut)
		}
	}
	if b.starts != before {
		t.Errorf("invalid submissions reached the API")
	}
	_, errOut, _ = cli(t, "submit", "--url", srv.URL, "--source", "https://acct.blob.core.windows.net/docs/deep?sig="+sig, "--target", target)
	if !strings.Contains(errOut, "source.containerUrl") || !strings.Contains(errOut, "Nothing was sent") || strings.Contains(errOut, sig) {
		t.Errorf("invalid URL error = %q", errOut)
	}

	out, _, code = cli(t, "status", "--url", srv.URL)
	if code != 0 || !strings.Contains(out, "cli-1") || !strings.Contains(out, "STATUS") {
		t.Errorf("status list: %d %q", code, out)
	}
	out, _, code = cli(t, "status", "--url", srv.URL, "cli-1")
	if code != 0 || !strings.Contains(out, "migration cli-1") || strings.Contains(out, sig) {
		t.Errorf("status: %d %q", code, out)
	}

	out, errOut, code = cli(t, "watch", "--url", srv.URL, "--every", "10ms", "cli-1")
	if code != 0 || !strings.Contains(out, "100%") || !strings.Contains(out, "completed") {
		t.Errorf("watch: %d %q %q", code, out, errOut)
	}
	if !strings.Contains(out, "files/s") {
		t.Errorf("watch shows no rate: %q", out)
	}

	b.items = []api.Item{
		{SourcePath: "a.txt", TargetPath: "a.txt", Size: 10, Outcome: api.OutcomeImported},
		{SourcePath: "b:c.txt", TargetPath: "b_c.txt", Size: 5, Outcome: api.OutcomeRenamed, Reason: "':' replaced"},
		{SourcePath: "CON.txt", Outcome: api.OutcomeSkipped, Reason: "reserved name"},
		{SourcePath: "x.bin", Outcome: api.OutcomeFailed, Reason: "import error"},
	}
	out, _, code = cli(t, "report", "--url", srv.URL, "cli-1")
	for _, want := range []string{"4 items", "imported   1", "renamed    1", "b:c.txt → b_c.txt: ':' replaced", "CON.txt: reserved name", "x.bin: import error"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("report lacks %q: %q", want, out)
		}
	}
	out, _, _ = cli(t, "report", "--url", srv.URL, "--csv", "-", "cli-1")
	if !strings.HasPrefix(out, strings.Join(api.ReportHeader, ",")) {
		t.Errorf("report --csv - = %q", out)
	}

	out, _, code = cli(t, "cancel", "--url", srv.URL, "cli-1")
	if code != 0 || !strings.Contains(out, "cancel requested") || len(b.canceled) != 1 {
		t.Errorf("cancel: %d %q", code, out)
	}
	_, errOut, code = cli(t, "status", "--url", srv.URL, "nope")
	if code == 0 || !strings.Contains(errOut, "404") {
		t.Errorf("status of unknown: %d %q", code, errOut)
	}
}

func TestWatchFailsForUnsuccessfulMigration(t *testing.T) {
	srv, b := server(t)
	b.finalSt = api.StatusCompletedWithErrors
	if _, _, code := cli(t, "submit", "--url", srv.URL, "--id", "w1", "--source", filepath.Join(b.localRoot, "d"), "--target", target); code != 0 {
		t.Fatal("submit failed")
	}
	out, errOut, code := cli(t, "watch", "--url", srv.URL, "--every", "10ms", "w1")
	if code == 0 || !strings.Contains(errOut, "completedWithErrors") {
		t.Errorf("watch of a migration with errors: %d %q %q", code, out, errOut)
	}
}

// watch's exit code is the migration's summary code's (docs/api.md).
func TestWatchExitCodes(t *testing.T) {
	for i, tc := range []struct {
		status, code string
		exit         int
	}{
		{api.StatusCompleted, api.SummarySucceeded, 0},
		{api.StatusCompleted, api.SummarySucceededWithRenames, 0},
		{api.StatusCompleted, api.SummarySucceededWithWarnings, 0},
		{api.StatusCompletedWithErrors, api.SummaryPartial, exitPartial},
		{api.StatusCompletedWithErrors, api.SummaryFailed, exitFailed},
		{api.StatusFailed, api.SummaryFailed, exitFailed},
		{api.StatusCancelled, api.SummaryCancelled, exitCancelled},
		{api.StatusCompletedWithErrors, "", exitPartial}, // an API without summary codes
		{api.StatusCompleted, "", 0},
	} {
		srv, b := server(t)
		b.finalSt, b.finalCode = tc.status, tc.code
		id := fmt.Sprintf("x%d", i)
		if _, _, code := cli(t, "submit", "--url", srv.URL, "--id", id, "--source", filepath.Join(b.localRoot, "d"), "--target", target); code != 0 {
			t.Fatal("submit failed")
		}
		out, errOut, code := cli(t, "watch", "--url", srv.URL, "--every", "10ms", id)
		want := tc.code
		if want == "" {
			want = summaryCode(api.Migration{Status: tc.status})
		}
		if code != tc.exit || !strings.Contains(out, "(summary "+want+")") {
			t.Errorf("%s/%q: exit %d, want %d; out %q err %q", tc.status, tc.code, code, tc.exit, out, errOut)
		}
	}
}

func TestSubmitToQueue(t *testing.T) {
	if sb == nil {
		t.Skip("needs the Service Bus emulator (not started with -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errOut, code := cli(t, "submit", "--queue", "--servicebus", sb.ServiceBusConnectionString, "--source", srcURL, "--target", target)
	if code != 0 {
		t.Fatalf("submit --queue: %d %q %q", code, out, errOut)
	}
	client, err := azservicebus.NewClientFromConnectionString(sb.ServiceBusConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(ctx)
	r, err := client.NewReceiverForQueue("provision", nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := r.ReceiveMessages(ctx, 1, nil)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %v %d", err, len(msgs))
	}
	m := msgs[0]
	if err := r.CompleteMessage(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	req, err := request.DecodeBytes(m.Body)
	if err != nil {
		t.Fatalf("the queued body is not a valid request: %v\n%s", err, m.Body)
	}
	if req.Source.ContainerURL != srcURL {
		t.Errorf("the worker needs the SAS; got %q", req.Source.ContainerURL)
	}
	var probe map[string]any
	_ = json.Unmarshal(m.Body, &probe)
	if _, isStep := probe["step"]; isStep {
		t.Error("a request must not look like a step message")
	}
	id := request.IDForMessage(m.MessageID)
	if !strings.Contains(out, id) || strings.Contains(out, sig) {
		t.Errorf("output %q does not give migration id %s (or shows the SAS)", out, id)
	}
}
