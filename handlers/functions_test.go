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
	"strings"
	"sync"
	"testing"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/handlers/drain"
	"github.com/spemigrate/spemigrate/handlers/poll"
	"github.com/spemigrate/spemigrate/handlers/provision"
	"github.com/spemigrate/spemigrate/handlers/stagebatch"
	"github.com/spemigrate/spemigrate/handlers/submit"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
)

// engine records the steps the functions call and fails on demand.
type engine struct {
	mu       sync.Mutex
	calls    []string
	err      error
	start    map[string]request.Request
	rejected map[string]string
}

func (e *engine) record(format string, args ...any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, fmt.Sprintf(format, args...))
	return e.err
}

func (e *engine) Plan(_ context.Context, m string, page int) error {
	return e.record("plan %s %d", m, page)
}
func (e *engine) Stage(_ context.Context, m, b string) error  { return e.record("stage %s %s", m, b) }
func (e *engine) Submit(_ context.Context, m, b string) error { return e.record("submit %s %s", m, b) }
func (e *engine) Poll(_ context.Context, m, b string, attempt, seq int) error {
	return e.record("poll %s %s a%d s%d", m, b, attempt, seq)
}

var errConflict = errors.New("id used for another request")

func (e *engine) StartMigration(_ context.Context, id string, req request.Request) (bool, error) {
	if err := e.record("start %s", id); err != nil {
		return false, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.start == nil {
		e.start = map[string]request.Request{}
	}
	if prev, ok := e.start[id]; ok {
		if prev.Digest() != req.Digest() {
			return false, errConflict
		}
		return false, nil
	}
	e.start[id] = req
	return true, nil
}

func (e *engine) RejectRequest(_ context.Context, id, containerID, reason string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rejected == nil {
		e.rejected = map[string]string{}
	}
	e.rejected[id] = reason
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
	log := quiet()
	return handlers.NewMux(log, map[string]handlers.Function{
		"provision":  provision.Function(&provision.Handler{Planner: e, Starter: e, Rejecter: e, Log: log, IsConflict: func(err error) bool { return errors.Is(err, errConflict) }}),
		"stagebatch": stagebatch.Function(log, e),
		"submit":     submit.Function(log, e),
		"poll":       poll.Function(log, e),
	})
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
		{"provision", queue.Provision("m1", 3), "plan m1 3"},
		{"stagebatch", queue.StageBatch("m1", "p000003-b001", 1), "stage m1 p000003-b001"},
		{"submit", queue.Submit("m1", "p000003-b001", 2), "submit m1 p000003-b001"},
		{"poll", queue.Poll("m1", "p000003-b001", 2, 5), "poll m1 p000003-b001 a2 s5"},
	}
	for _, tt := range tests {
		for _, binary := range []bool{true, false} {
			if code := invoke(t, h, tt.fn, hostPayload(body(tt.msg), binary, tt.msg.MessageID())); code != http.StatusOK {
				t.Errorf("%s (binary=%v): status %d", tt.fn, binary, code)
			}
			if got := e.last(); got != tt.want {
				t.Errorf("%s (binary=%v): called %q, want %q", tt.fn, binary, got, tt.want)
			}
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
	e.err = fmt.Errorf("load migration m1: %w", pipeline.ErrNotFound)
	if code := invoke(t, h, "poll", hostPayload(msg, true, "x")); code != http.StatusOK {
		t.Errorf("unknown migration answered %d; it would be retried ten times", code)
	}
	e.err = nil
	n := len(e.calls)
	for fn, bad := range map[string]string{
		"stagebatch": `{"v":1,"step":"stage-batch","migrationId":"m1"}`,         // no batch id
		"submit":     body(queue.Poll("m1", "b1", 1, 1)),                        // wrong queue
		"poll":       `{"v":9,"step":"poll","migrationId":"m1","batchId":"b1"}`, // unknown version
		"provision":  `not json at all`,
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
	req := `{"v":1,"source":{"kind":"localFolder","path":"/data"},"target":{"containerId":"b!ISJs1WRro0y0EWgkUYcktDa0mE8z"}}`

	// Without an id: derived from the MessageId, so a redelivery starts the
	// same migration.
	for range 2 {
		if code := invoke(t, h, "provision", hostPayload(req, false, "msg-42")); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	id := provision.IDForMessage("msg-42")
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
	if r := e.rejected[provision.IDForMessage("msg-45")]; !strings.Contains(r, "source.kind") {
		t.Errorf("rejection recorded as %q (all: %v)", r, e.rejected)
	}
	// With a usable id in the body, under that id; an SAS is never quoted.
	bad := `{"v":1,"id":"script-7","source":{"kind":"azureBlob","containerUrl":"https://a.blob.core.windows.net/c/d?sig=S3cr3t"},"target":{"containerId":"b!ISJs1WRro0y0EWgkUYcktDa0mE8z"}}`
	invoke(t, h, "provision", hostPayload(bad, true, "msg-46"))
	if r := e.rejected["script-7"]; !strings.Contains(r, "source.containerUrl") || strings.Contains(r, "S3cr3t") {
		t.Errorf("rejection of script-7 = %q", r)
	}
}

// failer records failures like the state would.
type failer struct {
	mu     sync.Mutex
	failed map[string]string
	known  map[string]bool
}

func (f *failer) FailBatch(_ context.Context, m, b, reason string) error {
	return f.fail(m+"/"+b, m, reason)
}

func (f *failer) FailMigration(_ context.Context, m, reason string) error {
	return f.fail(m, m, reason)
}

func (f *failer) fail(key, m, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.known[m] {
		return fmt.Errorf("load %s: %w", m, pipeline.ErrNotFound)
	}
	f.failed[key] = reason
	return nil
}

type drainer struct{ runs int }

func (d *drainer) Drain(context.Context) (pipeline.DrainReport, error) {
	d.runs++
	return pipeline.DrainReport{Examined: 1}, nil
}

// memDeadLetters is an in-memory dead-letter reader; ServiceBusDeadLetters
// is tested against the Service Bus emulator in package drain.
type memDeadLetters struct {
	q         map[string][]drain.DeadLetter
	completed []string
}

func (m *memDeadLetters) Receive(_ context.Context, q string, max int) ([]drain.DeadLetter, error) {
	out := m.q[q]
	if len(out) > max {
		out = out[:max]
	}
	return append([]drain.DeadLetter(nil), out...), nil
}

func (m *memDeadLetters) Complete(_ context.Context, dl drain.DeadLetter) error {
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
	dls := &memDeadLetters{q: map[string][]drain.DeadLetter{
		"stage-batch": {{Queue: "stage-batch", MessageID: "d1", DeliveryCount: 10, Reason: "MaxDeliveryCountExceeded", Description: "Message could not be consumed after 10 delivery attempts.",
			Body: []byte(body(queue.StageBatch("m1", "p000000-b000", 1)))}},
		"provision": {
			{Queue: "provision", MessageID: "d2", Body: []byte(body(queue.Provision("m2", 0))), Reason: "MaxDeliveryCountExceeded"},
			{Queue: "provision", MessageID: "d3", Body: []byte(`{"v":1,"id":"gone","source":{"kind":"localFolder","path":"/d"},"target":{"containerId":"b!ISJs1WRro0y0EWgkUYcktDa0mE8z"}}`)},
			{Queue: "provision", MessageID: "d4", Body: []byte(`garbage`)},
		},
	}}
	f := &failer{failed: map[string]string{}, known: map[string]bool{"m1": true, "m2": true}}
	d := &drainer{}
	h := &drain.Handler{Drainer: d, DeadLetters: dls, Failer: f, Log: quiet()}
	mux := handlers.NewMux(quiet(), map[string]handlers.Function{"drain": drain.Function(h)})
	timer := `{"Data":{"tick":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"drain","UtcNow":"2026-11-26T10:00:00Z","RandGuid":"x"}}}`
	if code := invoke(t, mux, "drain", timer); code != http.StatusOK {
		t.Fatalf("drain status %d", code)
	}
	if d.runs != 1 {
		t.Errorf("Drain ran %d times", d.runs)
	}
	want := "message dead-lettered on queue stage-batch: MaxDeliveryCountExceeded: Message could not be consumed after 10 delivery attempts."
	if got := f.failed["m1/p000000-b000"]; got != want {
		t.Errorf("batch reason = %q", got)
	}
	if got := f.failed["m2"]; !strings.Contains(got, "queue provision") {
		t.Errorf("migration reason = %q", got)
	}
	if len(dls.completed) != 4 {
		t.Errorf("completed %v; every dead letter should leave the queue once handled", dls.completed)
	}
}
