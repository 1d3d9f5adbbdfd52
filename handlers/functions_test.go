package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

// engine records what the functions ask of it and fails on demand, like
// the real engine would: unknown migrations are state.ErrNotFound.
type engine struct {
	mu       sync.Mutex
	calls    []string
	err      error
	start    map[string]request.Request
	rejected map[string]string
	failed   map[string]string
	known    map[string]bool
	drains   int
}

func (e *engine) record(format string, args ...any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, fmt.Sprintf(format, args...))
	return e.err
}

func (e *engine) Run(_ context.Context, m queue.Message) error {
	switch m.Step {
	case queue.StepProvision:
		return e.record("provision %s %d", m.MigrationID, m.Page)
	case queue.StepPoll:
		return e.record("poll %s %s a%d s%d", m.MigrationID, m.BatchID, m.Attempt, m.Seq)
	}
	return e.record("%s %s %s", m.Step, m.MigrationID, m.BatchID)
}

func (e *engine) Start(_ context.Context, m *state.Migration) (bool, error) {
	if err := e.record("start %s", m.ID); err != nil {
		return false, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.start == nil {
		e.start = map[string]request.Request{}
	}
	if prev, ok := e.start[m.ID]; ok {
		if prev.Digest() != m.Request.Digest() {
			return false, pipeline.ErrIDConflict
		}
		return false, nil
	}
	e.start[m.ID] = m.Request
	return true, nil
}

func (e *engine) Reject(_ context.Context, id, containerID, reason string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rejected == nil {
		e.rejected = map[string]string{}
	}
	e.rejected[id] = reason
	return nil
}

func (e *engine) Drain(context.Context) (pipeline.DrainReport, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.drains++
	return pipeline.DrainReport{Examined: 1}, nil
}

func (e *engine) FailBatch(_ context.Context, m, b, reason string) error {
	return e.fail(m+"/"+b, m, reason)
}

func (e *engine) FailMigration(_ context.Context, m, reason string) error {
	return e.fail(m, m, reason)
}

func (e *engine) fail(key, m, reason string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.known[m] {
		return fmt.Errorf("load %s: %w", m, state.ErrNotFound)
	}
	if e.failed == nil {
		e.failed = map[string]string{}
	}
	e.failed[key] = reason
	return nil
}

func (e *engine) last() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.calls) == 0 {
		return ""
	}
	return e.calls[len(e.calls)-1]
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func functions(e *engine) http.Handler {
	return app(e, nil)
}

func app(e *engine, dls handlers.DeadLetters) http.Handler {
	a := &handlers.App{Engine: e, DeadLetters: dls, Log: quiet(), API: http.NotFoundHandler()}
	return handlers.NewMux(quiet(), a.Functions())
}

// hostPayload builds the host's Service Bus invocation for body the way the
// host does: the default string dataType double-encodes the body; binary
// (what our function.json files ask for) sends base64.
func hostPayload(body string, binary bool, messageID string) string {
	var data any
	if binary {
		data = base64.StdEncoding.EncodeToString([]byte(body))
	} else {
		inner, _ := json.Marshal(body)
		data = string(inner)
	}
	mid, _ := json.Marshal(messageID)
	p, _ := json.Marshal(map[string]any{
		"Data": map[string]any{"msg": data},
		"Metadata": map[string]any{
			"DeliveryCount": "1", "MessageId": string(mid), "EnqueuedTimeUtc": "2026-11-26T10:14:03",
			"ContentType": `"application/json"`, "SequenceNumber": "7",
			"sys": map[string]any{"MethodName": "x", "UtcNow": "2026-11-26T10:14:03.5Z", "RandGuid": "0a8c1f5e-93b4-4d2e-8f67-2b1d3c4e5f60"},
		},
	})
	return string(p)
}

func invoke(t *testing.T, h http.Handler, fn, payload string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/"+fn, strings.NewReader(payload))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", fn, ct)
	}
	if !json.Valid(rec.Body.Bytes()) || rec.Body.Len() == 0 {
		t.Errorf("%s: body %q is not JSON", fn, rec.Body.String())
	}
	return rec.Code
}

func body(m queue.Message) string {
	b, err := m.Encode()
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestStepFunctionsCallTheirStep(t *testing.T) {
	e := &engine{}
	h := functions(e)
	tests := []struct {
		fn   string
		msg  queue.Message
		want string
	}{
		{"provision", queue.Provision("m1", 3), "provision m1 3"},
		{"stage-batch", queue.StageBatch("m1", "p000003-b001", 1), "stage-batch m1 p000003-b001"},
		{"submit", queue.Submit("m1", "p000003-b001", 2), "submit m1 p000003-b001"},
		{"poll", queue.Poll("m1", "p000003-b001", 2, 5), "poll m1 p000003-b001 a2 s5"},
	}
	for _, tt := range tests {
		if code := invoke(t, h, tt.fn, hostPayload(body(tt.msg), true, tt.msg.MessageID())); code != http.StatusOK {
			t.Errorf("%s: status %d", tt.fn, code)
		}
		if got := e.last(); got != tt.want {
			t.Errorf("%s: called %q, want %q", tt.fn, got, tt.want)
		}
		// The step queues' function.json say dataType binary: a body the
		// host would have sent otherwise is not guessed at, it is dropped.
		n := len(e.calls)
		if code := invoke(t, h, tt.fn, hostPayload(body(tt.msg), false, tt.msg.MessageID())); code != http.StatusOK || len(e.calls) != n {
			t.Errorf("%s: a string-encoded body answered %d and reached the engine %d times", tt.fn, code, len(e.calls)-n)
		}
	}
}

func TestStepFunctionFailures(t *testing.T) {
	e := &engine{}
	h := functions(e)
	msg := body(queue.Poll("m1", "b1", 1, 1))

	e.err = errors.New("table storage timeout")
	if code := invoke(t, h, "poll", hostPayload(msg, true, "x")); code < 300 {
		t.Errorf("transient failure answered %d; Service Bus would not redeliver", code)
	}
	e.err = fmt.Errorf("load migration m1: %w", state.ErrNotFound)
	if code := invoke(t, h, "poll", hostPayload(msg, true, "x")); code != http.StatusOK {
		t.Errorf("unknown migration answered %d; it would be retried ten times", code)
	}
	e.err = nil
	n := len(e.calls)
	for fn, bad := range map[string]string{
		"stage-batch": `{"v":1,"step":"stage-batch","migrationId":"m1"}`,         // no batch id
		"submit":      body(queue.Poll("m1", "b1", 1, 1)),                        // wrong queue
		"poll":        `{"v":9,"step":"poll","migrationId":"m1","batchId":"b1"}`, // unknown version
		"provision":   `not json at all`,
	} {
		if code := invoke(t, h, fn, hostPayload(bad, true, "x")); code != http.StatusOK {
			t.Errorf("%s: bad message answered %d, want 2xx (completed, not retried)", fn, code)
		}
	}
	if len(e.calls) != n {
		t.Errorf("bad messages reached the engine: %v", e.calls[n:])
	}
}

func TestProvisionQueueStartsRequests(t *testing.T) {
	e := &engine{}
	h := functions(e)
	// A blob source: the app's zero Policy (the strict one) refuses local
	// folders.
	req := `{"v":1,"source":{"kind":"azureBlob","containerUrl":"https://acct.blob.core.windows.net/data","credential":"managedIdentity"},"target":{"containerId":"b!ISJs1WRro0y0EWgkUYcktDa0mE8z"}}`

	// Without an id: derived from the MessageId, so a redelivery starts the
	// same migration.
	for range 2 {
		if code := invoke(t, h, "provision", hostPayload(req, true, "msg-42")); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	id := request.IDForMessage("msg-42")
	if len(e.start) != 1 || e.start[id].ID != id {
		t.Fatalf("started %v, want one migration %s", e.calls, id)
	}
	// With an id.
	withID := strings.Replace(req, `{"v":1,`, `{"v":1,"id":"from-script-1",`, 1)
	invoke(t, h, "provision", hostPayload(withID, true, "msg-43"))
	if _, ok := e.start["from-script-1"]; !ok {
		t.Fatalf("request id not used: %v", e.calls)
	}
	// Same id, different request: completed (not retried), nothing new.
	other := strings.Replace(withID, "/data", "/other", 1)
	if code := invoke(t, h, "provision", hostPayload(other, true, "msg-44")); code != http.StatusOK {
		t.Errorf("conflicting request answered %d", code)
	}
	// Invalid request: completed, nothing started, and recorded as a failed
	// migration under the derived id (a queue has no reply).
	n := len(e.calls)
	if code := invoke(t, h, "provision", hostPayload(`{"v":1,"source":{"kind":"ftp"}}`, true, "msg-45")); code != http.StatusOK {
		t.Errorf("invalid request answered %d", code)
	}
	if len(e.calls) != n {
		t.Errorf("an invalid request reached the engine: %v", e.calls[n:])
	}
	if r := e.rejected[request.IDForMessage("msg-45")]; !strings.Contains(r, "source.kind") {
		t.Errorf("rejection recorded as %q (all: %v)", r, e.rejected)
	}
	// With a usable id in the body, under that id; an SAS is never quoted.
	bad := `{"v":1,"id":"script-7","source":{"kind":"azureBlob","containerUrl":"https://a.blob.core.windows.net/c/d?sig=S3cr3t"},"target":{"containerId":"b!ISJs1WRro0y0EWgkUYcktDa0mE8z"}}`
	invoke(t, h, "provision", hostPayload(bad, true, "msg-46"))
	if r := e.rejected["script-7"]; !strings.Contains(r, "source.containerUrl") || strings.Contains(r, "S3cr3t") {
		t.Errorf("rejection of script-7 = %q", r)
	}
}

// memDeadLetters is an in-memory dead-letter reader; ServiceBusDeadLetters
// is tested against the Service Bus emulator in package queue.
type memDeadLetters struct {
	q         map[string][]queue.DeadLetter
	completed []string
}

func (m *memDeadLetters) Receive(_ context.Context, q string, max int) ([]queue.DeadLetter, error) {
	out := m.q[q]
	if len(out) > max {
		out = out[:max]
	}
	return append([]queue.DeadLetter(nil), out...), nil
}

func (m *memDeadLetters) Complete(_ context.Context, dl queue.DeadLetter) error {
	m.completed = append(m.completed, dl.MessageID)
	list := m.q[dl.Queue]
	for i, x := range list {
		if x.MessageID == dl.MessageID {
			m.q[dl.Queue] = append(list[:i], list[i+1:]...)
			break
		}
	}
	return nil
}

func TestDrainRecordsDeadLetters(t *testing.T) {
	dls := &memDeadLetters{q: map[string][]queue.DeadLetter{
		"stage-batch": {{Queue: "stage-batch", MessageID: "d1", DeliveryCount: 10, Reason: "MaxDeliveryCountExceeded", Description: "Message could not be consumed after 10 delivery attempts.",
			Body: []byte(body(queue.StageBatch("m1", "p000000-b000", 1)))}},
		"provision": {
			{Queue: "provision", MessageID: "d2", Body: []byte(body(queue.Provision("m2", 0))), Reason: "MaxDeliveryCountExceeded"},
			{Queue: "provision", MessageID: "d3", Body: []byte(`{"v":1,"id":"gone","source":{"kind":"localFolder","path":"/d"},"target":{"containerId":"b!ISJs1WRro0y0EWgkUYcktDa0mE8z"}}`)},
			{Queue: "provision", MessageID: "d4", Body: []byte(`garbage`)},
		},
	}}
	e := &engine{known: map[string]bool{"m1": true, "m2": true}}
	mux := app(e, dls)
	timer := `{"Data":{"tick":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"drain","UtcNow":"2026-11-26T10:00:00Z","RandGuid":"x"}}}`
	if code := invoke(t, mux, "drain", timer); code != http.StatusOK {
		t.Fatalf("drain status %d", code)
	}
	if e.drains != 1 {
		t.Errorf("Drain ran %d times", e.drains)
	}
	want := "message dead-lettered on queue stage-batch: MaxDeliveryCountExceeded: Message could not be consumed after 10 delivery attempts."
	if got := e.failed["m1/p000000-b000"]; got != want {
		t.Errorf("batch reason = %q", got)
	}
	if got := e.failed["m2"]; !strings.Contains(got, "queue provision") {
		t.Errorf("migration reason = %q", got)
	}
	// A request that never started is recorded as rejected under its id.
	if got := e.rejected["gone"]; !strings.Contains(got, "queue provision") {
		t.Errorf("never-started request recorded as %q (rejected: %v)", got, e.rejected)
	}
	if len(dls.completed) != 4 {
		t.Errorf("completed %v; every dead letter should leave the queue once handled", dls.completed)
	}
}

// Every function folder under handlers/ has code in the app, and every
// function the app serves has a folder: a mismatch is a function the host
// would invoke into a 404, or code no trigger reaches. A step's folder,
// queue and step name are one name, and every Service Bus trigger declares
// the dataType the code decodes (binary).
func TestFunctionTableMatchesFolders(t *testing.T) {
	var served []string
	for name := range (&handlers.App{}).Functions() {
		served = append(served, name)
	}
	sort.Strings(served)
	dirs, err := filepath.Glob("*/function.json")
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]bool{}
	for _, s := range queue.Steps {
		steps[string(s)] = true
	}
	var folders []string
	for _, d := range dirs {
		folder := filepath.Base(filepath.Dir(d))
		folders = append(folders, folder)
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		var fj struct {
			Bindings []struct {
				Type       string `json:"type"`
				Name       string `json:"name"`
				Queue      string `json:"queueName"`
				Connection string `json:"connection"`
				DataType   string `json:"dataType"`
			} `json:"bindings"`
		}
		if err := json.Unmarshal(b, &fj); err != nil {
			t.Errorf("%s: %v", d, err)
			continue
		}
		triggers := 0
		for _, b := range fj.Bindings {
			if strings.HasSuffix(b.Type, "Trigger") {
				triggers++
			}
			if b.Type != "serviceBusTrigger" {
				continue
			}
			if b.Connection != "ServiceBusConnection" {
				t.Errorf("%s: connection %q; every Service Bus binding uses the ServiceBusConnection setting", d, b.Connection)
			}
			if b.DataType != string(handlers.Binary) || b.Name != "msg" {
				t.Errorf("%s: binding %q dataType %q; the code reads binding msg as %q", d, b.Name, b.DataType, handlers.Binary)
			}
			if !steps[folder] || b.Queue != folder {
				t.Errorf("%s: queue %q; a step's function folder, queue and step share one name", d, b.Queue)
			}
		}
		if triggers != 1 {
			t.Errorf("%s: %d triggers, want exactly 1", d, triggers)
		}
	}
	sort.Strings(folders)
	if strings.Join(served, ",") != strings.Join(folders, ",") {
		t.Errorf("app serves %v\nfolders are %v", served, folders)
	}
}
