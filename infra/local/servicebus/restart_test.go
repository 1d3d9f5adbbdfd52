package servicebus

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

func TestRestartKeepsMessages(t *testing.T) {
	c := newClient(t)
	s := newSender(t, c, "restart")
	for i := range 10 {
		send(t, s, &azservicebus.Message{MessageID: to.Ptr(fmt.Sprintf("single-%d", i)), ApplicationProperties: map[string]any{"n": int64(i)}})
	}
	sendBatches(t, s, "batch", 30, []byte("queued work"))
	r := newReceiver(t, c, "restart", nil)
	// Settle a few before the restart: completed ones must stay gone, a
	// deferred one must stay deferred, an abandoned one keeps its count.
	got := receiveN(t, r, 3, 10*time.Second)
	ctx := ctxFor(t, 30*time.Second)
	if err := r.CompleteMessage(ctx, got[0], nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
	if err := r.DeferMessage(ctx, got[1], nil); err != nil {
		t.Fatalf("defer: %v", err)
	}
	if err := r.AbandonMessage(ctx, got[2], nil); err != nil {
		t.Fatalf("abandon: %v", err)
	}
	deferredSeq := *got[1].SequenceNumber
	var lastSeq int64
	for _, m := range peekAll(t, r) {
		lastSeq = max(lastSeq, *m.SequenceNumber)
	}
	_ = c.Close(ctx)

	if err := emu.RestartServiceBus(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}

	c2 := newClient(t)
	r2 := newReceiver(t, c2, "restart", &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete})
	after := receiveN(t, r2, 38, 20*time.Second)
	var ids []string
	for _, m := range after {
		ids = append(ids, m.MessageID)
		if m.MessageID == got[2].MessageID && m.DeliveryCount != 2 {
			t.Errorf("abandoned message came back with delivery count %d, want 2", m.DeliveryCount)
		}
		if m.MessageID == "single-4" && m.ApplicationProperties["n"] != int64(4) {
			t.Errorf("properties lost in the restart: %v", m.ApplicationProperties)
		}
	}
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("single-%d", i))
	}
	for i := range 30 {
		want = append(want, fmt.Sprintf("batch-%d", i))
	}
	want = slices.DeleteFunc(want, func(id string) bool { return id == got[0].MessageID || id == got[1].MessageID })
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("after the restart got %d messages %v, want %d %v", len(ids), ids, len(want), want)
	}
	rd := newReceiver(t, c2, "restart", nil)
	ds, err := rd.ReceiveDeferredMessages(ctx, []int64{deferredSeq}, nil)
	if err != nil || len(ds) != 1 || ds[0].MessageID != got[1].MessageID {
		t.Fatalf("deferred message after the restart: %d %v", len(ds), err)
	}
	if err := rd.CompleteMessage(ctx, ds[0], nil); err != nil {
		t.Fatalf("complete deferred: %v", err)
	}
	// Sequence numbers are never reused.
	send(t, newSender(t, c2, "restart"), &azservicebus.Message{MessageID: to.Ptr("new")})
	m := receiveN(t, r2, 1, 10*time.Second)[0]
	if *m.SequenceNumber <= lastSeq {
		t.Fatalf("sequence number %d after the restart, want more than %d", *m.SequenceNumber, lastSeq)
	}
}
