package devhost_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

func sbFunction(queue, dataType string, output string) string {
	dt := ""
	if dataType != "" {
		dt = fmt.Sprintf(`,"dataType":%q`, dataType)
	}
	out := ""
	if output != "" {
		out = fmt.Sprintf(`,{"type":"serviceBus","direction":"out","name":"out","queueName":%q,"connection":"SB"}`, output)
	}
	return fmt.Sprintf(`{"bindings":[{"type":"serviceBusTrigger","direction":"in","name":"msg","queueName":"%%Q_%s%%","connection":"SB"%s}%s]}`, strings.ReplaceAll(queue, "-", "_"), dt, out)
}

func (a *app) startSB(t *testing.T, settings map[string]string) {
	t.Helper()
	s := map[string]string{"SB": serviceBusConn}
	for _, q := range []string{"bytes", "bytes-binary", "fail", "text", "out-src", "out-dst", "crash", "lock", "concurrency", "duplicate", "duplicate-out"} {
		s["Q_"+strings.ReplaceAll(q, "-", "_")] = q
	}
	for k, v := range settings {
		s[k] = v
	}
	a.start(t, a.config(s))
}

func sbClient(t *testing.T) *azservicebus.Client {
	t.Helper()
	c, err := azservicebus.NewClientFromConnectionString(serviceBusConn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func send(t *testing.T, c *azservicebus.Client, queue string, m *azservicebus.Message) {
	t.Helper()
	s, err := c.NewSender(queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.SendMessage(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
}

func receive(t *testing.T, c *azservicebus.Client, queue string, sub azservicebus.SubQueue, n int) []*azservicebus.ReceivedMessage {
	t.Helper()
	r, err := c.NewReceiverForQueue(queue, &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete, SubQueue: sub})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	var got []*azservicebus.ReceivedMessage
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for len(got) < n {
		msgs, err := r.ReceiveMessages(ctx, n-len(got), nil)
		if err != nil {
			t.Fatalf("receiving %d messages from %s (sub-queue %v): got %d: %v", n, queue, sub, len(got), err)
		}
		got = append(got, msgs...)
	}
	return got
}

// queueEmpty reports whether queue has no active message left (completed,
// not merely locked).
func queueEmpty(t *testing.T, c *azservicebus.Client, queue string) bool {
	t.Helper()
	r, err := c.NewReceiverForQueue(queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := r.PeekMessages(ctx, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	return len(msgs) == 0
}

func ptr[T any](v T) *T { return &v }

// TestServiceBusRequestBytes checks the request the handler receives for a
// Service Bus message, byte for byte where the host's encoding matters
// (spec §3.3), and that success completes the message.
func TestServiceBusRequestBytes(t *testing.T) {
	a := newApp(t, defaultHostJSON, map[string]string{
		"Orders":    sbFunction("bytes", "", ""),
		"OrdersBin": sbFunction("bytes-binary", "binary", ""),
	})
	a.startSB(t, nil)
	c := sbClient(t)
	body := `{"orderId":"A-17","qty":2}`
	for _, q := range []string{"bytes", "bytes-binary"} {
		send(t, c, q, &azservicebus.Message{
			Body: []byte(body), MessageID: ptr("7d3c2b1a9f8e4d6c"), ContentType: ptr("application/json"),
			ApplicationProperties: map[string]any{"tenant": "contoso"},
		})
	}
	r := a.waitRequests(t, "/Orders", 1, 15*time.Second)[0]
	if r.Method != "POST" || r.Header["Content-Type"][0] != "application/json; charset=utf-8" || len(r.Header["X-Azure-Functions-Invocationid"]) != 1 || r.Header["X-Azure-Functions-Hostversion"] == nil {
		t.Errorf("request %s %s headers %v", r.Method, r.Path, r.Header)
	}
	data, meta := r.payload(t)
	if want := `"\"{\\\"orderId\\\":\\\"A-17\\\",\\\"qty\\\":2}\""`; string(data["msg"]) != want {
		t.Errorf("Data.msg = %s\nwant %s (double-encoded)", data["msg"], want)
	}
	exact := map[string]string{
		"DeliveryCount":         `"1"`,
		"MessageId":             `"\"7d3c2b1a9f8e4d6c\""`,
		"ContentType":           `"\"application/json\""`,
		"ApplicationProperties": `{"tenant":"contoso"}`,
		"UserProperties":        `{"tenant":"contoso"}`,
		"orderId":               `"\"A-17\""`,
		"qty":                   `"\"2\""`,
		"MessageActions":        `{}`,
	}
	for k, v := range exact {
		if string(meta[k]) != v {
			t.Errorf("Metadata.%s = %s, want %s", k, meta[k], v)
		}
	}
	patterns := map[string]string{
		"SequenceNumber":  `^"\d+"$`,
		"LockToken":       `^"\\"[0-9a-f-]{36}\\""$`,
		"EnqueuedTimeUtc": `^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"$`,
		"EnqueuedTime":    `^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"$`,
		"ExpiresAtUtc":    `^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"$`,
		"sys":             `^\{"MethodName":"Orders","RandGuid":"[0-9a-f-]{36}","UtcNow":"[^"]+Z"\}$`,
	}
	for k, re := range patterns {
		if !regexp.MustCompile(re).Match(meta[k]) {
			t.Errorf("Metadata.%s = %s, want it to match %s", k, meta[k], re)
		}
	}
	for _, absent := range []string{"ReplyTo", "SessionId", "CorrelationId"} {
		if _, ok := meta[absent]; ok {
			t.Errorf("Metadata.%s present although null", absent)
		}
	}

	rb := a.waitRequests(t, "/OrdersBin", 1, 15*time.Second)[0]
	data, meta = rb.payload(t)
	if want := `"eyJvcmRlcklkIjoiQS0xNyIsInF0eSI6Mn0="`; string(data["msg"]) != want {
		t.Errorf("binary Data.msg = %s, want %s", data["msg"], want)
	}
	if _, ok := meta["orderId"]; ok {
		t.Error("binary trigger: body properties promoted into Metadata")
	}
	eventually(t, 15*time.Second, func() bool { return queueEmpty(t, c, "bytes") && queueEmpty(t, c, "bytes-binary") },
		func() string { return "messages not completed after a successful invocation" })
}

// TestServiceBusFailureDeadLetters: a non-2xx answer, and a 2xx answer with a
// text/plain content type, abandon the message; Service Bus redelivers it
// with DeliveryCount + 1 and dead-letters it after maxDeliveryCount (3).
func TestServiceBusFailureDeadLetters(t *testing.T) {
	a := newApp(t, defaultHostJSON, map[string]string{
		"Fail": sbFunction("fail", "", ""),
		"Text": sbFunction("text", "", ""),
	})
	a.startSB(t, nil)
	c := sbClient(t)
	for _, q := range []string{"fail", "text"} {
		send(t, c, q, &azservicebus.Message{Body: []byte(q), MessageID: ptr("poison-" + q)})
	}
	for _, fn := range []string{"Fail", "Text"} {
		reqs := a.waitRequests(t, "/"+fn, 3, 20*time.Second)
		for i, r := range reqs {
			_, meta := r.payload(t)
			if want := fmt.Sprintf(`"%d"`, i+1); string(meta["DeliveryCount"]) != want {
				t.Errorf("%s delivery %d: DeliveryCount %s, want %s", fn, i+1, meta["DeliveryCount"], want)
			}
		}
	}
	for _, q := range []string{"fail", "text"} {
		dl := receive(t, c, q, azservicebus.SubQueueDeadLetter, 1)[0]
		if dl.MessageID != "poison-"+q || dl.DeadLetterReason == nil || *dl.DeadLetterReason != "MaxDeliveryCountExceeded" {
			t.Errorf("%s dead letter: id %s reason %v", q, dl.MessageID, dl.DeadLetterReason)
		}
	}
	if n := len(a.requests(t, "/Fail")); n != 3 {
		t.Errorf("Fail invoked %d times, want exactly maxDeliveryCount = 3", n)
	}
}

// TestServiceBusOutputBinding: Outputs.out is sent to the output queue with
// the host's conversions (objects indented, arrays fanned out, text/plain).
func TestServiceBusOutputBinding(t *testing.T) {
	a := newApp(t, defaultHostJSON, map[string]string{"Relay": sbFunction("out-src", "", "out-dst")})
	a.startSB(t, nil)
	c := sbClient(t)
	send(t, c, "out-src", &azservicebus.Message{Body: []byte(`output:{"next":"step"}`)})
	got := receive(t, c, "out-dst", azservicebus.SubQueue(0), 1)
	if string(got[0].Body) != "{\n  \"next\": \"step\"\n}" || got[0].ContentType == nil || *got[0].ContentType != "text/plain" {
		t.Errorf("output message %q content type %v", got[0].Body, got[0].ContentType)
	}
	send(t, c, "out-src", &azservicebus.Message{Body: []byte(`output:["one two","three four"]`)})
	got = receive(t, c, "out-dst", azservicebus.SubQueue(0), 2)
	bodies := []string{string(got[0].Body), string(got[1].Body)}
	if strings.Join(bodies, "|") != "one two|three four" {
		t.Errorf("array output fanned out into %q", bodies)
	}
	eventually(t, 15*time.Second, func() bool { return queueEmpty(t, c, "out-src") }, func() string { return "trigger messages not completed" })
}

// TestServiceBusCrashRedelivery: the handler dies mid-invocation; the host
// restarts it and the in-flight message comes back (DeliveryCount 2) to the
// new process.
func TestServiceBusCrashRedelivery(t *testing.T) {
	a := newApp(t, defaultHostJSON, map[string]string{"Crash": sbFunction("crash", "", "")})
	a.startSB(t, nil)
	c := sbClient(t)
	marker := filepath.Join(t.TempDir(), "crashed")
	send(t, c, "crash", &azservicebus.Message{Body: []byte("crash-once:" + marker)})
	reqs := a.waitRequests(t, "/Crash", 2, 20*time.Second)
	_, m1 := reqs[0].payload(t)
	_, m2 := reqs[1].payload(t)
	if reqs[0].PID == reqs[1].PID || string(m1["DeliveryCount"]) != `"1"` || string(m2["DeliveryCount"]) != `"2"` {
		t.Errorf("deliveries: pid %d count %s, then pid %d count %s; want a new process and DeliveryCount 2",
			reqs[0].PID, m1["DeliveryCount"], reqs[1].PID, m2["DeliveryCount"])
	}
	eventually(t, 15*time.Second, func() bool { return queueEmpty(t, c, "crash") }, func() string { return "redelivered message not completed" })
}

// TestServiceBusLockRenewal: a 1 s lock is renewed while the handler works
// for 3 s, so the message is delivered once and completes.
func TestServiceBusLockRenewal(t *testing.T) {
	if testing.Short() {
		t.Skip("holds a message for 3 s")
	}
	a := newApp(t, defaultHostJSON, map[string]string{"Hold": sbFunction("lock", "", "")})
	a.startSB(t, nil)
	c := sbClient(t)
	send(t, c, "lock", &azservicebus.Message{Body: []byte("hold:3000")})
	a.waitRequests(t, "/Hold", 1, 15*time.Second)
	eventually(t, 15*time.Second, func() bool { return queueEmpty(t, c, "lock") }, func() string { return "message not completed" })
	if n := len(a.requests(t, "/Hold")); n != 1 {
		t.Errorf("delivered %d times, want once (the lock should have been renewed)", n)
	}
}

// TestServiceBusConcurrency: no more than maxConcurrentCalls (2) invocations
// of one function at a time, and that many do run in parallel.
func TestServiceBusConcurrency(t *testing.T) {
	hostJSON := strings.Replace(defaultHostJSON, `"maxConcurrentCalls":4`, `"maxConcurrentCalls":2`, 1)
	a := newApp(t, hostJSON, map[string]string{"Busy": sbFunction("concurrency", "", "")})
	c := sbClient(t)
	for i := 0; i < 6; i++ {
		send(t, c, "concurrency", &azservicebus.Message{Body: []byte("hold:300")})
	}
	a.startSB(t, nil)
	reqs := a.waitRequests(t, "/Busy", 6, 20*time.Second)
	var peak int64
	for _, r := range reqs {
		peak = max(peak, r.InFlight)
	}
	if peak != 2 {
		t.Errorf("peak concurrency %d, want maxConcurrentCalls = 2", peak)
	}
	eventually(t, 15*time.Second, func() bool { return queueEmpty(t, c, "concurrency") }, func() string { return "messages not completed" })
	_ = json.Valid
}

// TestServiceBusDuplicateDelivery: with Config.DuplicateDelivery every
// message reaches the handler twice at the same time (the second as a
// redelivery: DeliveryCount + 1, another lock token), both deliveries' outputs
// are sent, and the message is completed once.
func TestServiceBusDuplicateDelivery(t *testing.T) {
	a := newApp(t, defaultHostJSON, map[string]string{"Dup": sbFunction("duplicate", "", "duplicate-out")})
	cfg := a.config(map[string]string{"SB": serviceBusConn, "Q_duplicate": "duplicate"})
	cfg.DuplicateDelivery = true
	h := a.start(t, cfg)
	c := sbClient(t)
	send(t, c, "duplicate", &azservicebus.Message{Body: []byte("hold:500"), MessageID: ptr("dup-1")})
	reqs := a.waitRequests(t, "/Dup", 2, 20*time.Second)
	_, m1 := reqs[0].payload(t)
	_, m2 := reqs[1].payload(t)
	counts := []string{string(m1["DeliveryCount"]), string(m2["DeliveryCount"])}
	sort.Strings(counts)
	if counts[0] != `"1"` || counts[1] != `"2"` {
		t.Errorf("DeliveryCount %v, want 1 and 2", counts)
	}
	if string(m1["MessageId"]) != string(m2["MessageId"]) || string(m1["LockToken"]) == string(m2["LockToken"]) {
		t.Errorf("MessageId %s/%s LockToken %s/%s: want the same message under two locks", m1["MessageId"], m2["MessageId"], m1["LockToken"], m2["LockToken"])
	}
	if reqs[0].InFlight < 2 && reqs[1].InFlight < 2 {
		t.Errorf("in flight %d and %d: the two deliveries did not overlap", reqs[0].InFlight, reqs[1].InFlight)
	}
	eventually(t, 15*time.Second, func() bool { return queueEmpty(t, c, "duplicate") }, func() string { return "message not completed" })

	send(t, c, "duplicate", &azservicebus.Message{Body: []byte(`output:"next step"`), MessageID: ptr("dup-2")})
	got := receive(t, c, "duplicate-out", azservicebus.SubQueue(0), 2)
	if string(got[0].Body) != "next step" || string(got[1].Body) != "next step" {
		t.Errorf("outputs %q and %q, want each delivery's output", got[0].Body, got[1].Body)
	}
	eventually(t, 15*time.Second, func() bool { return queueEmpty(t, c, "duplicate") }, func() string { return "second message not completed" })
	if n := len(a.requests(t, "/Dup")); n != 4 {
		t.Errorf("handler saw %d deliveries of 2 messages, want 4", n)
	}
	if d := h.Stats().DuplicateDeliveries; d != 2 {
		t.Errorf("Stats().DuplicateDeliveries = %d, want 2", d)
	}
}
