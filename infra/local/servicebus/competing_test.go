package servicebus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// sendBatches sends n messages with ids prefix-0 … prefix-(n-1) in batches.
func sendBatches(t testing.TB, s *azservicebus.Sender, prefix string, n int, body []byte) {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	for i := 0; i < n; {
		b, err := s.NewMessageBatch(ctx, nil)
		if err != nil {
			t.Fatalf("new batch: %v", err)
		}
		for ; i < n; i++ {
			err := b.AddMessage(&azservicebus.Message{MessageID: to.Ptr(fmt.Sprintf("%s-%d", prefix, i)), Body: body}, nil)
			if err == azservicebus.ErrMessageTooLarge {
				break
			}
			if err != nil {
				t.Fatalf("add: %v", err)
			}
		}
		if err := s.SendMessageBatch(ctx, b, nil); err != nil {
			t.Fatalf("send batch: %v", err)
		}
	}
}

func TestCompetingConsumers(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	const receivers = 4
	base := stats(t, "compete")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var (
		mu        sync.Mutex
		completed = make(map[string]int, n)
		perRecv   [receivers]int
		done      atomic.Int64
		failures  = make(chan error, receivers)
		wg        sync.WaitGroup
	)
	for i := range receivers {
		r := newReceiver(t, newClient(t), "compete", nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := drainCompleting(ctx, cancel, i, r, int64(n), &done, func(m *azservicebus.ReceivedMessage) {
				mu.Lock()
				completed[m.MessageID]++
				perRecv[i]++
				mu.Unlock()
			})
			if err != nil {
				failures <- err
			}
		}()
	}
	sendBatches(t, newSender(t, newClient(t), "compete"), "cc", n, []byte("work item"))
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
	if len(completed) != n {
		t.Fatalf("%d distinct messages completed, want %d (lost: %d)", len(completed), n, n-len(completed))
	}
	for id, k := range completed {
		if k != 1 {
			t.Fatalf("message %s completed %d times", id, k)
		}
	}
	for i, k := range perRecv {
		if k == 0 {
			t.Fatalf("receiver %d got no messages; the work was not shared (%v)", i, perRecv)
		}
	}
	t.Logf("messages per receiver: %v", perRecv)
	if st := stats(t, "compete"); st.Active != 0 || st.Locked != 0 || st.Completed-base.Completed != n {
		t.Fatalf("stats after the run: %+v", st)
	}
}
