package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
)

// sbConn is the Service Bus emulator's connection string; empty in -short
// runs, where the integration tests skip.
var sbConn string

func TestMain(m *testing.M) {
	stacktest.Main(m, stack.Options{ServiceBus: true}, stacktest.NotShort, func(s *stack.Stack) {
		if s != nil {
			sbConn = s.ServiceBusConnectionString
		}
	})
}

func newTestSender(t *testing.T) (*Sender, *azservicebus.Client) {
	t.Helper()
	if sbConn == "" {
		t.Skip("-short: no Service Bus emulator")
	}
	s, err := NewSender(Config{ConnectionString: sbConn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	c, err := azservicebus.NewClientFromConnectionString(sbConn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return s, c
}

func receiveOne(t *testing.T, c *azservicebus.Client, queue string, within time.Duration) *azservicebus.ReceivedMessage {
	t.Helper()
	r, err := c.NewReceiverForQueue(queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	msgs, err := r.ReceiveMessages(ctx, 1, nil)
	if err != nil {
		t.Fatalf("receive from %s: %v", queue, err)
	}
	if len(msgs) != 1 {
		t.Fatalf("received %d messages from %s", len(msgs), queue)
	}
	if err := r.CompleteMessage(context.Background(), msgs[0], nil); err != nil {
		t.Fatal(err)
	}
	return msgs[0]
}

func TestSendReachesEachStepsQueue(t *testing.T) {
	s, c := newTestSender(t)
	ctx := context.Background()
	msgs := []Message{Provision("mig-a", 2), StageBatch("mig-a", "000001", 1), Submit("mig-a", "000001", 1), Poll("mig-a", "000001", 1, 3)}
	if err := s.Send(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	for _, want := range msgs {
		queue, _ := DefaultQueues().For(want.Step)
		got := receiveOne(t, c, queue, 30*time.Second)
		m, err := Decode(got.Body)
		if err != nil {
			t.Fatalf("%s: %v", queue, err)
		}
		if m != want {
			t.Errorf("%s: got %+v, want %+v", queue, m, want)
		}
		if got.MessageID != want.MessageID() {
			t.Errorf("%s: MessageId = %q, want %q", queue, got.MessageID, want.MessageID())
		}
		if got.ContentType == nil || *got.ContentType != "application/json" || got.Subject == nil || *got.Subject != string(want.Step) {
			t.Errorf("%s: content type %v subject %v", queue, got.ContentType, got.Subject)
		}
	}
}

func TestScheduledPollIsNotDeliveredEarly(t *testing.T) {
	s, c := newTestSender(t)
	ctx := context.Background()
	notBefore := time.Now().Add(1500 * time.Millisecond)
	m := Poll("mig-b", "000004", 1, 9)
	m.NotBefore = notBefore
	if err := s.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	// Peek shows it waiting with the requested enqueue time.
	r, err := c.NewReceiverForQueue("poll", nil)
	if err != nil {
		t.Fatal(err)
	}
	peeked, err := r.PeekMessages(ctx, 10, nil)
	r.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range peeked {
		if p.MessageID == m.MessageID() {
			found = true
			if p.ScheduledEnqueueTime == nil || p.ScheduledEnqueueTime.Sub(notBefore).Abs() > time.Second {
				t.Errorf("scheduled enqueue time = %v, want about %v", p.ScheduledEnqueueTime, notBefore)
			}
		}
	}
	if !found {
		t.Fatalf("scheduled message not visible to peek")
	}
	got := receiveOne(t, c, "poll", 30*time.Second)
	if at := time.Now(); at.Before(notBefore) {
		t.Errorf("delivered at %v, before %v", at, notBefore)
	}
	if got.MessageID != m.MessageID() {
		t.Errorf("MessageId = %q", got.MessageID)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{}, {ConnectionString: "x", Namespace: "y"}, {Namespace: "ns.servicebus.windows.net"}} {
		if _, err := NewClient(cfg); err == nil {
			t.Errorf("NewClient(%+v) succeeded", cfg)
		}
	}
	_, err := NewClient(Config{ConnectionString: "Endpoint=nonsense;SharedAccessKey=topsecret"})
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("malformed connection string error = %v", err)
	}
}
