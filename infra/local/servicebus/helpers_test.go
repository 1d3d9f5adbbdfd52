package servicebus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
)

// emu is the emulator every test in the package shares (queues from
// testdata/queues.json; each test uses its own queue).
var emu *stack.Stack

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s, err := stack.Start(ctx, stack.Options{ServiceBus: true, ServiceBusConfig: "testdata/queues.json"})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the Service Bus emulator:", err)
		return 1
	}
	defer s.Close()
	emu = s
	return m.Run()
}

// newClient returns an azservicebus client on the emulator, closed when the
// test ends.
func newClient(t testing.TB) *azservicebus.Client {
	t.Helper()
	c, err := azservicebus.NewClientFromConnectionString(emu.ServiceBusConnectionString, nil)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newSender(t testing.TB, c *azservicebus.Client, queue string) *azservicebus.Sender {
	t.Helper()
	s, err := c.NewSender(queue, nil)
	if err != nil {
		t.Fatalf("sender %s: %v", queue, err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func newReceiver(t testing.TB, c *azservicebus.Client, queue string, opts *azservicebus.ReceiverOptions) *azservicebus.Receiver {
	t.Helper()
	r, err := c.NewReceiverForQueue(queue, opts)
	if err != nil {
		t.Fatalf("receiver %s: %v", queue, err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func deadLetterReceiver(t testing.TB, c *azservicebus.Client, queue string) *azservicebus.Receiver {
	return newReceiver(t, c, queue, &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
}

func send(t testing.TB, s *azservicebus.Sender, msgs ...*azservicebus.Message) {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	for _, m := range msgs {
		if err := s.SendMessage(ctx, m, nil); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
}

func text(body string) *azservicebus.Message {
	return &azservicebus.Message{Body: []byte(body)}
}

// receiveN collects n messages, failing the test if they do not all arrive
// before the deadline.
func receiveN(t testing.TB, r *azservicebus.Receiver, n int, within time.Duration) []*azservicebus.ReceivedMessage {
	t.Helper()
	ctx := ctxFor(t, within)
	var got []*azservicebus.ReceivedMessage
	for len(got) < n {
		ms, err := r.ReceiveMessages(ctx, n-len(got), nil)
		if err != nil {
			t.Fatalf("received %d of %d messages: %v", len(got), n, err)
		}
		got = append(got, ms...)
	}
	return got
}

// receiveNone asserts that no message arrives within the window.
func receiveNone(t testing.TB, r *azservicebus.Receiver, window time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	ms, err := r.ReceiveMessages(ctx, 10, nil)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("receive: %v", err)
	}
	if len(ms) > 0 {
		t.Fatalf("expected no message, got %d (first: %q)", len(ms), ms[0].Body)
	}
}

// peekAll returns every message a peek shows, from the first sequence number.
func peekAll(t testing.TB, r *azservicebus.Receiver) []*azservicebus.ReceivedMessage {
	t.Helper()
	ctx := ctxFor(t, 10*time.Second)
	from := int64(0)
	ms, err := r.PeekMessages(ctx, 1000, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &from})
	if err != nil {
		t.Fatalf("peek: %v", err)
	}
	return ms
}

// queueStats is one queue's entry in the emulator's GET /stats.
type queueStats struct {
	Sent, Received, Completed, Abandoned, Deferred, DeadLettered int
	Released, LockLost, LockExpired, Renewed, Expired            int
	Scheduled, Cancelled                                         int
	Active, Locked                                               int
}

// statsDoc is the emulator's GET /stats answer.
type statsDoc struct {
	Total struct {
		Sent, Received, Completed, DeadLettered int
	} `json:"total"`
	Queues map[string]queueStats `json:"queues"`
}

func getStats(t testing.TB) statsDoc {
	t.Helper()
	resp, err := http.Get(emu.ServiceBusAdminURL + "/stats")
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	defer resp.Body.Close()
	var doc statsDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("stats: %v", err)
	}
	return doc
}

func totalStats(t testing.TB) struct{ Sent, Received, Completed, DeadLettered int } {
	t.Helper()
	return getStats(t).Total
}

func stats(t testing.TB, queue string) queueStats {
	t.Helper()
	doc := getStats(t)
	q, ok := doc.Queues[queue]
	if !ok {
		t.Fatalf("stats: no queue %q", queue)
	}
	return q
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	stacktest.Eventually(t, within, cond, func() string { return "waiting for " + what })
}

// drainCompleting receives from r in peek-lock and completes each message
// until the completions of every receiver sharing done reach n, or ctx
// ends. Reaching n, or failing, cancels ctx so the other receivers stop
// too; the failure is returned, naming receiver i. onComplete (may be nil)
// sees each completed message.
func drainCompleting(ctx context.Context, cancel context.CancelFunc, i int, r *azservicebus.Receiver, n int64, done *atomic.Int64, onComplete func(*azservicebus.ReceivedMessage)) error {
	for ctx.Err() == nil {
		ms, err := r.ReceiveMessages(ctx, 100, nil)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			cancel()
			return fmt.Errorf("receiver %d: %w", i, err)
		}
		for _, m := range ms {
			if err := r.CompleteMessage(ctx, m, nil); err != nil {
				cancel()
				return fmt.Errorf("receiver %d: complete %s: %w", i, m.MessageID, err)
			}
			if onComplete != nil {
				onComplete(m)
			}
			if done.Add(1) == n {
				cancel() // everything is in; stop the receivers
			}
		}
	}
	return nil
}
