package servicebus

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"
	"github.com/spemigrate/spemigrate/infra/local/stack"
)

// One test per behaviour of the emulator's contract
// (spec/local-emulation.md §3 and issue 2, item 3). Each test has its own
// queue in testdata/queues.json.

func TestPeekLockReceiveAndComplete(t *testing.T) {
	c := newClient(t)
	base := stats(t, "complete")
	before := time.Now().Add(-time.Second)
	send(t, newSender(t, c, "complete"), text("hello"))
	r := newReceiver(t, c, "complete", nil)
	m := receiveN(t, r, 1, 10*time.Second)[0]
	if string(m.Body) != "hello" {
		t.Fatalf("body = %q", m.Body)
	}
	if m.SequenceNumber == nil || *m.SequenceNumber < 1 {
		t.Fatalf("sequence number = %v", m.SequenceNumber)
	}
	if m.EnqueuedTime == nil || m.EnqueuedTime.Before(before) || m.EnqueuedTime.After(time.Now().Add(time.Second)) {
		t.Fatalf("enqueued time = %v", m.EnqueuedTime)
	}
	if m.LockedUntil == nil || time.Until(*m.LockedUntil) < 30*time.Second {
		t.Fatalf("locked until = %v, want about a minute from now (default lockDuration)", m.LockedUntil)
	}
	if m.DeliveryCount != 1 {
		t.Fatalf("delivery count = %d, want 1", m.DeliveryCount)
	}
	if m.LockToken == ([16]byte{}) {
		t.Fatal("no lock token")
	}
	// While locked, nobody else gets it.
	r2 := newReceiver(t, c, "complete", nil)
	receiveNone(t, r2, 300*time.Millisecond)
	if err := r.CompleteMessage(ctxFor(t, 10*time.Second), m, nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
	if left := peekAll(t, r); len(left) != 0 {
		t.Fatalf("%d messages left after complete", len(left))
	}
	if st := stats(t, "complete"); st.Completed != base.Completed+1 || st.Active != 0 {
		t.Fatalf("stats after complete: %+v", st)
	}
}

func TestSendBatch(t *testing.T) {
	c := newClient(t)
	s := newSender(t, c, "batch")
	base := stats(t, "batch")
	b, err := s.NewMessageBatch(ctxFor(t, 10*time.Second), nil)
	if err != nil {
		t.Fatalf("new batch: %v", err)
	}
	for i := range 5 {
		if err := b.AddMessage(&azservicebus.Message{Body: []byte(fmt.Sprintf("m%d", i)), ApplicationProperties: map[string]any{"i": int64(i)}}, nil); err != nil {
			t.Fatalf("add: %v", err)
		}
	}
	if err := s.SendMessageBatch(ctxFor(t, 10*time.Second), b, nil); err != nil {
		t.Fatalf("send batch: %v", err)
	}
	r := newReceiver(t, c, "batch", &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete})
	ms := receiveN(t, r, 5, 10*time.Second)
	for i, m := range ms {
		if string(m.Body) != fmt.Sprintf("m%d", i) || m.ApplicationProperties["i"] != int64(i) {
			t.Fatalf("message %d: body %q, i=%v", i, m.Body, m.ApplicationProperties["i"])
		}
		if i > 0 && *m.SequenceNumber != *ms[i-1].SequenceNumber+1 {
			t.Fatalf("sequence numbers not consecutive: %d after %d", *m.SequenceNumber, *ms[i-1].SequenceNumber)
		}
		if m.MessageID == "" {
			t.Fatalf("message %d has no message id (the SDK fills one in for batches)", i)
		}
	}
	if st := stats(t, "batch"); st.Sent-base.Sent != 5 {
		t.Fatalf("stats sent +%d, want +5 (one per message in the batch)", st.Sent-base.Sent)
	}
}

func TestReceiveAndDelete(t *testing.T) {
	c := newClient(t)
	send(t, newSender(t, c, "rad"), text("a"), text("b"))
	r := newReceiver(t, c, "rad", &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete})
	ms := receiveN(t, r, 2, 10*time.Second)
	if string(ms[0].Body) != "a" || string(ms[1].Body) != "b" {
		t.Fatalf("bodies %q %q", ms[0].Body, ms[1].Body)
	}
	if left := peekAll(t, r); len(left) != 0 {
		t.Fatalf("%d messages left after receive-and-delete", len(left))
	}
	pl := newReceiver(t, c, "rad", nil)
	receiveNone(t, pl, 300*time.Millisecond)
}

func TestAbandonRedelivers(t *testing.T) {
	c := newClient(t)
	send(t, newSender(t, c, "abandon"), &azservicebus.Message{MessageID: to.Ptr("ab-1"), Body: []byte("x")})
	r := newReceiver(t, c, "abandon", nil)
	m := receiveN(t, r, 1, 10*time.Second)[0]
	err := r.AbandonMessage(ctxFor(t, 10*time.Second), m, &azservicebus.AbandonMessageOptions{
		PropertiesToModify: map[string]any{"attempt": "first"},
	})
	if err != nil {
		t.Fatalf("abandon: %v", err)
	}
	again := receiveN(t, r, 1, 10*time.Second)[0]
	if again.MessageID != "ab-1" || *again.SequenceNumber != *m.SequenceNumber {
		t.Fatalf("redelivered %q seq %d, want ab-1 seq %d", again.MessageID, *again.SequenceNumber, *m.SequenceNumber)
	}
	if again.DeliveryCount != 2 {
		t.Fatalf("delivery count after abandon = %d, want 2", again.DeliveryCount)
	}
	if again.ApplicationProperties["attempt"] != "first" {
		t.Fatalf("properties to modify not applied: %v", again.ApplicationProperties)
	}
	if err := r.CompleteMessage(ctxFor(t, 10*time.Second), again, nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
}

func TestDeadLetter(t *testing.T) {
	c := newClient(t)
	send(t, newSender(t, c, "deadletter"), &azservicebus.Message{MessageID: to.Ptr("dl-1"), Body: []byte("poison")})
	r := newReceiver(t, c, "deadletter", nil)
	m := receiveN(t, r, 1, 10*time.Second)[0]
	err := r.DeadLetterMessage(ctxFor(t, 10*time.Second), m, &azservicebus.DeadLetterOptions{
		Reason:           to.Ptr("BadInput"),
		ErrorDescription: to.Ptr("field size is negative"),
	})
	if err != nil {
		t.Fatalf("dead-letter: %v", err)
	}
	receiveNone(t, r, 300*time.Millisecond)
	// Entity names are case-insensitive, the dead-letter queue's too.
	dlq := deadLetterReceiver(t, c, "DeadLetter")
	d := receiveN(t, dlq, 1, 10*time.Second)[0]
	if d.MessageID != "dl-1" || string(d.Body) != "poison" {
		t.Fatalf("dead-lettered message %q %q", d.MessageID, d.Body)
	}
	if d.DeadLetterReason == nil || *d.DeadLetterReason != "BadInput" {
		t.Fatalf("reason = %v", d.DeadLetterReason)
	}
	if d.DeadLetterErrorDescription == nil || *d.DeadLetterErrorDescription != "field size is negative" {
		t.Fatalf("description = %v", d.DeadLetterErrorDescription)
	}
	if d.DeadLetterSource == nil || *d.DeadLetterSource != "deadletter" {
		t.Fatalf("source = %v", d.DeadLetterSource)
	}
	if err := dlq.CompleteMessage(ctxFor(t, 10*time.Second), d, nil); err != nil {
		t.Fatalf("complete from dead-letter queue: %v", err)
	}
}

func TestDeferAndReceiveDeferred(t *testing.T) {
	c := newClient(t)
	send(t, newSender(t, c, "defer"), &azservicebus.Message{MessageID: to.Ptr("df-1"), Body: []byte("later")})
	r := newReceiver(t, c, "defer", nil)
	m := receiveN(t, r, 1, 10*time.Second)[0]
	if err := r.DeferMessage(ctxFor(t, 10*time.Second), m, nil); err != nil {
		t.Fatalf("defer: %v", err)
	}
	receiveNone(t, r, 300*time.Millisecond)
	ds, err := r.ReceiveDeferredMessages(ctxFor(t, 10*time.Second), []int64{*m.SequenceNumber}, nil)
	if err != nil {
		t.Fatalf("receive deferred: %v", err)
	}
	if len(ds) != 1 || ds[0].MessageID != "df-1" || ds[0].State != azservicebus.MessageStateDeferred {
		t.Fatalf("deferred messages: %d %+v", len(ds), ds)
	}
	if ds[0].LockToken == ([16]byte{}) {
		t.Fatal("deferred message has no lock token")
	}
	if err := r.CompleteMessage(ctxFor(t, 10*time.Second), ds[0], nil); err != nil {
		t.Fatalf("complete deferred: %v", err)
	}
	// Once settled it is gone; Service Bus answers "message not found".
	ds, err = r.ReceiveDeferredMessages(ctxFor(t, 10*time.Second), []int64{*m.SequenceNumber}, nil)
	var sbErr *azservicebus.Error
	if len(ds) != 0 || !errors.As(err, &sbErr) || sbErr.Code != azservicebus.CodeNotFound {
		t.Fatalf("after completing, receive deferred = %d messages, %v; want CodeNotFound", len(ds), err)
	}
}

func TestLockExpiryRedelivers(t *testing.T) {
	t.Parallel() // waits on the clock; its queue is its own
	c := newClient(t)
	send(t, newSender(t, c, "lock-expiry"), &azservicebus.Message{MessageID: to.Ptr("le-1")})
	r := newReceiver(t, c, "lock-expiry", nil)
	m := receiveN(t, r, 1, 10*time.Second)[0]
	if d := time.Until(*m.LockedUntil); d > 1500*time.Millisecond {
		t.Fatalf("locked for %s, want the queue's 1s", d)
	}
	// Not settled: once the lock expires another receiver gets it.
	r2 := newReceiver(t, c, "lock-expiry", nil)
	again := receiveN(t, r2, 1, 10*time.Second)[0]
	if again.MessageID != "le-1" || again.DeliveryCount != 2 {
		t.Fatalf("redelivered %q with delivery count %d, want le-1 and 2", again.MessageID, again.DeliveryCount)
	}
	if again.EnqueuedTime == nil || !again.LockedUntil.After(*m.LockedUntil) {
		t.Fatalf("new lock %v does not follow the expired one %v", again.LockedUntil, m.LockedUntil)
	}
	if err := r2.CompleteMessage(ctxFor(t, 10*time.Second), again, nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
}

func TestLateSettlementLockLost(t *testing.T) {
	t.Parallel() // waits on the clock; its queue is its own
	c := newClient(t)
	base := stats(t, "lock-lost")
	send(t, newSender(t, c, "lock-lost"), text("slow"))
	r := newReceiver(t, c, "lock-lost", nil)
	m := receiveN(t, r, 1, 10*time.Second)[0]
	waitFor(t, 10*time.Second, "the lock to expire", func() bool { return stats(t, "lock-lost").LockExpired > base.LockExpired })
	err := r.CompleteMessage(ctxFor(t, 10*time.Second), m, nil)
	var sbErr *azservicebus.Error
	if !errors.As(err, &sbErr) || sbErr.Code != azservicebus.CodeLockLost {
		t.Fatalf("complete after lock expiry: %v, want an azservicebus.Error with CodeLockLost", err)
	}
	// The message is still there for the next receiver.
	again := receiveN(t, r, 1, 10*time.Second)[0]
	if err := r.CompleteMessage(ctxFor(t, 10*time.Second), again, nil); err != nil {
		t.Fatalf("complete redelivered: %v", err)
	}
}

func TestRenewLock(t *testing.T) {
	t.Parallel() // waits on the clock; its queue is its own
	c := newClient(t)
	base := stats(t, "renew")
	send(t, newSender(t, c, "renew"), text("long job"))
	r := newReceiver(t, c, "renew", nil)
	m := receiveN(t, r, 1, 10*time.Second)[0]
	first := *m.LockedUntil
	// Hold the message past its original 2s lock by renewing, as a long
	// handler would.
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(first.Add(time.Second)) {
		<-tick.C
		prev := *m.LockedUntil
		if err := r.RenewMessageLock(ctxFor(t, 10*time.Second), m, nil); err != nil {
			t.Fatalf("renew: %v", err)
		}
		if !m.LockedUntil.After(prev) {
			t.Fatalf("renew did not extend the lock: %v then %v", prev, *m.LockedUntil)
		}
	}
	if err := r.CompleteMessage(ctxFor(t, 10*time.Second), m, nil); err != nil {
		t.Fatalf("complete after renewals past the original lock: %v", err)
	}
	if st := stats(t, "renew"); st.LockExpired != base.LockExpired || st.Renewed-base.Renewed < 2 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestMaxDeliveryCountDeadLetters(t *testing.T) {
	c := newClient(t)
	send(t, newSender(t, c, "max-delivery"), &azservicebus.Message{MessageID: to.Ptr("md-1")})
	r := newReceiver(t, c, "max-delivery", nil)
	for i := 1; i <= 3; i++ { // maxDeliveryCount is 3
		m := receiveN(t, r, 1, 10*time.Second)[0]
		if m.DeliveryCount != uint32(i) {
			t.Fatalf("attempt %d: delivery count %d", i, m.DeliveryCount)
		}
		if err := r.AbandonMessage(ctxFor(t, 10*time.Second), m, nil); err != nil {
			t.Fatalf("abandon: %v", err)
		}
	}
	receiveNone(t, r, 300*time.Millisecond)
	dlq := deadLetterReceiver(t, c, "max-delivery")
	d := receiveN(t, dlq, 1, 10*time.Second)[0]
	if d.MessageID != "md-1" || d.DeadLetterReason == nil || *d.DeadLetterReason != "MaxDeliveryCountExceeded" {
		t.Fatalf("dead-lettered %q reason %v", d.MessageID, d.DeadLetterReason)
	}
	if err := dlq.CompleteMessage(ctxFor(t, 10*time.Second), d, nil); err != nil {
		t.Fatalf("complete from dead-letter queue: %v", err)
	}
}

func TestTTLExpiryDeadLetters(t *testing.T) {
	t.Parallel() // waits on the clock; its queue is its own
	c := newClient(t)
	send(t, newSender(t, c, "ttl-deadletter"), &azservicebus.Message{MessageID: to.Ptr("ttl-1")})
	dlq := deadLetterReceiver(t, c, "ttl-deadletter")
	d := receiveN(t, dlq, 1, 10*time.Second)[0]
	if d.MessageID != "ttl-1" || d.DeadLetterReason == nil || *d.DeadLetterReason != "TTLExpiredException" {
		t.Fatalf("dead-lettered %q reason %v", d.MessageID, d.DeadLetterReason)
	}
	if d.DeadLetterSource == nil || *d.DeadLetterSource != "ttl-deadletter" {
		t.Fatalf("source = %v", d.DeadLetterSource)
	}
	if left := peekAll(t, newReceiver(t, c, "ttl-deadletter", nil)); len(left) != 0 {
		t.Fatalf("%d messages left in the queue after expiry", len(left))
	}
	if err := dlq.CompleteMessage(ctxFor(t, 10*time.Second), d, nil); err != nil {
		t.Fatalf("complete from dead-letter queue: %v", err)
	}
}

func TestTTLExpiryWithoutDeadLettering(t *testing.T) {
	t.Parallel() // waits on the clock; its queue is its own
	c := newClient(t)
	base := stats(t, "ttl-drop")
	send(t, newSender(t, c, "ttl-drop"), &azservicebus.Message{MessageID: to.Ptr("gone")})
	r := newReceiver(t, c, "ttl-drop", nil)
	waitFor(t, 10*time.Second, "the message to expire", func() bool { return stats(t, "ttl-drop").Expired == base.Expired+1 })
	if left := peekAll(t, r); len(left) != 0 {
		t.Fatalf("%d messages left after expiry", len(left))
	}
	if dl := peekAll(t, deadLetterReceiver(t, c, "ttl-drop")); len(dl) != 0 {
		t.Fatalf("%d messages dead-lettered although the queue does not dead-letter on expiry", len(dl))
	}
}

func TestMessageTTLExpires(t *testing.T) {
	t.Parallel() // waits on the clock; its queue is its own
	// A per-message TTL shorter than the queue's default applies too.
	c := newClient(t)
	base := stats(t, "basic")
	send(t, newSender(t, c, "basic"), &azservicebus.Message{MessageID: to.Ptr("short-ttl"), TimeToLive: to.Ptr(500 * time.Millisecond)})
	waitFor(t, 10*time.Second, "the message to expire", func() bool { return stats(t, "basic").Expired > base.Expired })
	for _, m := range peekAll(t, newReceiver(t, c, "basic", nil)) {
		if m.MessageID == "short-ttl" {
			t.Fatal("expired message still in the queue")
		}
	}
}

func TestScheduleAndCancel(t *testing.T) {
	t.Parallel() // waits on the clock; its queue is its own
	c := newClient(t)
	s := newSender(t, c, "schedule")
	at := time.Now().Add(1500 * time.Millisecond)
	seqs, err := s.ScheduleMessages(ctxFor(t, 10*time.Second), []*azservicebus.Message{{MessageID: to.Ptr("soon")}}, at, nil)
	if err != nil || len(seqs) != 1 {
		t.Fatalf("schedule: %v %v", seqs, err)
	}
	later, err := s.ScheduleMessages(ctxFor(t, 10*time.Second), []*azservicebus.Message{{MessageID: to.Ptr("cancelled")}}, time.Now().Add(time.Hour), nil)
	if err != nil || len(later) != 1 {
		t.Fatalf("schedule: %v %v", later, err)
	}
	r := newReceiver(t, c, "schedule", nil)
	peeked := peekAll(t, r)
	if len(peeked) != 2 || peeked[0].State != azservicebus.MessageStateScheduled || *peeked[0].SequenceNumber != seqs[0] {
		t.Fatalf("peek before the scheduled time: %d messages", len(peeked))
	}
	if err := s.CancelScheduledMessages(ctxFor(t, 10*time.Second), later, nil); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	m := receiveN(t, r, 1, 10*time.Second)[0]
	if m.MessageID != "soon" || *m.SequenceNumber != seqs[0] {
		t.Fatalf("received %q seq %d", m.MessageID, *m.SequenceNumber)
	}
	if now := time.Now(); now.Before(at) {
		t.Fatalf("scheduled message delivered at %v, before its time %v", now, at)
	}
	if m.ScheduledEnqueueTime == nil || m.ScheduledEnqueueTime.Sub(at).Abs() > time.Millisecond {
		t.Fatalf("scheduled enqueue time = %v, want %v", m.ScheduledEnqueueTime, at)
	}
	if err := r.CompleteMessage(ctxFor(t, 10*time.Second), m, nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
	if left := peekAll(t, r); len(left) != 0 {
		t.Fatalf("cancelled message still there: %d messages", len(left))
	}
}

func TestPeek(t *testing.T) {
	c := newClient(t)
	s := newSender(t, c, "peek")
	for i := range 5 {
		send(t, s, text(fmt.Sprintf("p%d", i)))
	}
	r := newReceiver(t, c, "peek", nil)
	ctx := ctxFor(t, 10*time.Second)
	first, err := r.PeekMessages(ctx, 3, nil)
	if err != nil || len(first) != 3 {
		t.Fatalf("peek: %d %v", len(first), err)
	}
	rest, err := r.PeekMessages(ctx, 10, nil)
	if err != nil || len(rest) != 2 {
		t.Fatalf("second peek continues after the first: %d %v", len(rest), err)
	}
	all := append(first, rest...)
	for i, m := range all {
		if string(m.Body) != fmt.Sprintf("p%d", i) || m.State != azservicebus.MessageStateActive {
			t.Fatalf("peeked %d: %q state %v", i, m.Body, m.State)
		}
	}
	from := *all[3].SequenceNumber
	tail, err := r.PeekMessages(ctx, 10, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &from})
	if err != nil || len(tail) != 2 || string(tail[0].Body) != "p3" {
		t.Fatalf("peek from sequence number %d: %d %v", from, len(tail), err)
	}
	// Peeking locks nothing.
	ms := receiveN(t, r, 5, 10*time.Second)
	for _, m := range ms {
		if err := r.CompleteMessage(ctx, m, nil); err != nil {
			t.Fatalf("complete: %v", err)
		}
	}
}

func TestMessagePropertiesRoundTrip(t *testing.T) {
	c := newClient(t)
	when := time.Date(2026, 11, 26, 12, 30, 0, 0, time.UTC)
	in := &azservicebus.Message{
		MessageID:     to.Ptr("props-1"),
		CorrelationID: to.Ptr("corr-7"),
		Subject:       to.Ptr("stage-batch"),
		ContentType:   to.Ptr("application/json"),
		To:            to.Ptr("someone"),
		ReplyTo:       to.Ptr("replies"),
		Body:          []byte(`{"migration":"m1","batch":3}`),
		ApplicationProperties: map[string]any{
			"str":   "s",
			"i64":   int64(1) << 40,
			"i32":   int32(-7),
			"f64":   2.5,
			"bool":  true,
			"when":  when,
			"bytes": []byte{1, 2, 3},
		},
	}
	before := time.Now().Add(-time.Second)
	send(t, newSender(t, c, "props"), in)
	after := time.Now().Add(time.Second)
	r := newReceiver(t, c, "props", nil)
	m := receiveN(t, r, 1, 10*time.Second)[0]
	eq := func(name string, got, want *string) {
		if got == nil || *got != *want {
			t.Errorf("%s = %v, want %q", name, got, *want)
		}
	}
	if m.MessageID != "props-1" {
		t.Errorf("MessageID = %q", m.MessageID)
	}
	eq("CorrelationID", m.CorrelationID, in.CorrelationID)
	eq("Subject", m.Subject, in.Subject)
	eq("ContentType", m.ContentType, in.ContentType)
	eq("To", m.To, in.To)
	eq("ReplyTo", m.ReplyTo, in.ReplyTo)
	if !bytes.Equal(m.Body, in.Body) {
		t.Errorf("Body = %q", m.Body)
	}
	for k, want := range in.ApplicationProperties {
		got := m.ApplicationProperties[k]
		switch w := want.(type) {
		case time.Time:
			if g, ok := got.(time.Time); !ok || !g.Equal(w) {
				t.Errorf("property %s = %#v, want %v", k, got, w)
			}
		case []byte:
			if g, ok := got.([]byte); !ok || !bytes.Equal(g, w) {
				t.Errorf("property %s = %#v, want %v", k, got, w)
			}
		default:
			if got != want {
				t.Errorf("property %s = %#v (%T), want %#v (%T)", k, got, got, want, want)
			}
		}
	}
	if m.EnqueuedTime == nil || m.EnqueuedTime.Before(before) || m.EnqueuedTime.After(after) {
		t.Errorf("EnqueuedTime = %v", m.EnqueuedTime)
	}
	if m.SequenceNumber == nil || m.EnqueuedSequenceNumber == nil || *m.EnqueuedSequenceNumber != *m.SequenceNumber {
		t.Errorf("SequenceNumber = %v, EnqueuedSequenceNumber = %v", m.SequenceNumber, m.EnqueuedSequenceNumber)
	}
	if err := r.CompleteMessage(ctxFor(t, 10*time.Second), m, nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
}

func TestEntityNamesCaseInsensitive(t *testing.T) {
	c := newClient(t)
	send(t, newSender(t, c, "CASE"), text("upper"))
	m := receiveN(t, newReceiver(t, c, "Case", &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete}), 1, 10*time.Second)[0]
	if string(m.Body) != "upper" {
		t.Fatalf("body %q", m.Body)
	}
}

func TestUnknownQueueRefused(t *testing.T) {
	c := newClient(t)
	check := func(what string, err error) {
		t.Helper()
		var amqpErr *amqp.Error
		if !errors.As(err, &amqpErr) || amqpErr.Condition != amqp.ErrCondNotFound {
			t.Fatalf("%s on an unknown queue: %v, want the AMQP condition amqp:not-found", what, err)
		}
		if !strings.Contains(err.Error(), "no-such-queue") {
			t.Fatalf("%s: error %q does not name the queue", what, err)
		}
	}
	// The SDK treats amqp:not-found as fatal, so this fails fast instead of
	// retrying until the context expires.
	ctx := ctxFor(t, 20*time.Second)
	start := time.Now()
	s := newSender(t, c, "no-such-queue")
	check("send", s.SendMessage(ctx, text("x"), nil))
	r := newReceiver(t, c, "no-such-queue", nil)
	_, err := r.ReceiveMessages(ctx, 1, nil)
	check("receive", err)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refusal took %s; the SDK retried instead of failing", d)
	}
}

func TestMalformedConfigFailsAtStart(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct{ body, want string }{
		"bad json":     {`{"queues": [`, "not valid JSON"},
		"bad duration": {`{"queues": [{"name": "q", "lockDuration": "30s"}]}`, `queues[0].lockDuration: "30s" is not an ISO 8601 duration`},
		"unknown key":  {`{"queues": [{"name": "q", "maxDeliveryCnt": 3}]}`, "queues[0].maxDeliveryCnt: unknown key"},
		"duplicate":    {`{"queues": [{"name": "q"}, {"name": "Q"}]}`, `queues[1].name: "Q" is already declared`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
			if err := os.WriteFile(file, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := stack.Start(ctxFor(t, 30*time.Second), stack.Options{ServiceBus: true, ServiceBusConfig: file})
			if err == nil {
				s.Close()
				t.Fatal("the emulator started with a malformed config file")
			}
			if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name the file and %q", err, tc.want)
			}
		})
	}
}

func TestAdminStats(t *testing.T) {
	c := newClient(t)
	base, baseTotal := stats(t, "stats"), totalStats(t)
	send(t, newSender(t, c, "stats"), text("1"), text("2"), text("3"))
	r := newReceiver(t, c, "stats", nil)
	ms := receiveN(t, r, 2, 10*time.Second)
	for _, m := range ms {
		if err := r.CompleteMessage(ctxFor(t, 10*time.Second), m, nil); err != nil {
			t.Fatalf("complete: %v", err)
		}
	}
	st, total := stats(t, "stats"), totalStats(t)
	if st.Sent-base.Sent != 3 || st.Received-base.Received < 2 || st.Completed-base.Completed != 2 || st.Active != 1 {
		t.Fatalf("stats %+v after %+v: want sent +3, received +2 or more, completed +2, active 1", st, base)
	}
	if total.Sent-baseTotal.Sent < 3 || total.Completed-baseTotal.Completed < 2 {
		t.Fatalf("total %+v after %+v: want sent +3, completed +2", total, baseTotal)
	}
	if err := r.CompleteMessage(ctxFor(t, 10*time.Second), receiveN(t, r, 1, 10*time.Second)[0], nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
}

func TestSessionsRefusedClearly(t *testing.T) {
	// Sessions are out of scope; a session receiver gets a plain answer
	// instead of a hang.
	c := newClient(t)
	_, err := c.AcceptSessionForQueue(ctxFor(t, 20*time.Second), "basic", "s1", nil)
	if err == nil || !strings.Contains(err.Error(), "does not support sessions") {
		t.Fatalf("accept session: %v, want a refusal saying sessions are not supported", err)
	}
}

func TestReleasedMessagesAreNotCounted(t *testing.T) {
	// After ReceiveMessages returns, the SDK keeps the link's unused credit
	// and hands back ("releases") whatever still arrives on it. Such a
	// message goes to the next receiver without counting a failed delivery.
	c := newClient(t)
	s := newSender(t, c, "release")
	send(t, s, text("first"))
	a := newReceiver(t, c, "release", nil)
	first := receiveN(t, a, 1, 10*time.Second) // asks for 1, so no credit is left over
	if err := a.CompleteMessage(ctxFor(t, 10*time.Second), first[0], nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
	send(t, s, text("second"))
	ctx := ctxFor(t, 10*time.Second)
	got, err := a.ReceiveMessages(ctx, 10, nil) // returns with 9 credits outstanding
	if err != nil || len(got) != 1 {
		t.Fatalf("receive: %d %v", len(got), err)
	}
	if err := a.CompleteMessage(ctx, got[0], nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
	base := stats(t, "release")
	send(t, s, &azservicebus.Message{MessageID: to.Ptr("released")})
	waitFor(t, 10*time.Second, "the SDK to release the message", func() bool { return stats(t, "release").Released > base.Released })
	b := newReceiver(t, newClient(t), "release", nil)
	m := receiveN(t, b, 1, 10*time.Second)[0]
	if m.MessageID != "released" || m.DeliveryCount != 1 {
		t.Fatalf("got %q with delivery count %d, want the released message with count 1", m.MessageID, m.DeliveryCount)
	}
	if err := b.CompleteMessage(ctxFor(t, 10*time.Second), m, nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
}

func TestSendWithScheduledEnqueueTime(t *testing.T) {
	// A plain send carrying ScheduledEnqueueTime (x-opt-scheduled-enqueue-time)
	// is held until then, as ScheduleMessages is.
	t.Parallel() // waits on the clock; its queue is its own
	c := newClient(t)
	at := time.Now().Add(1200 * time.Millisecond)
	send(t, newSender(t, c, "schedule-send"), &azservicebus.Message{MessageID: to.Ptr("held"), ScheduledEnqueueTime: &at})
	r := newReceiver(t, c, "schedule-send", nil)
	if p := peekAll(t, r); len(p) != 1 || p[0].State != azservicebus.MessageStateScheduled {
		t.Fatalf("peek right after sending: %d messages", len(p))
	}
	m := receiveN(t, r, 1, 10*time.Second)[0]
	if now := time.Now(); m.MessageID != "held" || now.Before(at) {
		t.Fatalf("got %q at %v, want held no earlier than %v", m.MessageID, now, at)
	}
	if err := r.CompleteMessage(ctxFor(t, 10*time.Second), m, nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
}

func TestConnectWithSASLAnonymousAndCBS(t *testing.T) {
	// The SDK authenticates with SASL ANONYMOUS and then puts a SAS token on
	// $cbs for each entity; the emulator accepts any key, so a connection
	// string with another key works the same.
	cs := strings.Replace(emu.ServiceBusConnectionString, "SharedAccessKey="+stack.ServiceBusKey, "SharedAccessKey=any-other-key", 1)
	if cs == emu.ServiceBusConnectionString {
		t.Fatalf("connection string %q has no SharedAccessKey to replace", cs)
	}
	c, err := azservicebus.NewClientFromConnectionString(cs, nil)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer c.Close(ctxFor(t, 10*time.Second))
	send(t, newSender(t, c, "basic"), &azservicebus.Message{MessageID: to.Ptr("cbs-1")})
	r := newReceiver(t, c, "basic", nil)
	m := receiveN(t, r, 1, 10*time.Second)[0]
	if err := r.CompleteMessage(ctxFor(t, 10*time.Second), m, nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
}

func TestDefaultConfigDeclaresAppQueues(t *testing.T) {
	// The shipped queues.json declares the pipeline's queues with a
	// five-minute lock, as the app expects.
	s, err := stack.Start(ctxFor(t, 30*time.Second), stack.Options{ServiceBus: true})
	if err != nil {
		t.Fatalf("start with the default config: %v", err)
	}
	defer s.Close()
	c, err := azservicebus.NewClientFromConnectionString(s.ServiceBusConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctxFor(t, 10*time.Second))
	for _, q := range []string{"provision", "stage-batch", "submit", "poll"} {
		send(t, newSender(t, c, q), text(q))
		r := newReceiver(t, c, q, nil)
		m := receiveN(t, r, 1, 10*time.Second)[0]
		if string(m.Body) != q {
			t.Fatalf("%s: body %q", q, m.Body)
		}
		if d := time.Until(*m.LockedUntil); d < 4*time.Minute || d > 5*time.Minute {
			t.Fatalf("%s: locked for %s, want the configured PT5M", q, d)
		}
		if err := r.CompleteMessage(ctxFor(t, 10*time.Second), m, nil); err != nil {
			t.Fatalf("%s: complete: %v", q, err)
		}
	}
}
