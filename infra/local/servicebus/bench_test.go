package servicebus

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// BenchmarkSendReceiveComplete measures the emulator's throughput for the
// path every step of the pipeline takes: send (fsync'd before it is
// acknowledged), peek-lock receive, complete. 1 KB messages, 4 concurrent
// receivers on their own connections, one sender sending batches.
func BenchmarkSendReceiveComplete(b *testing.B) {
	const receivers = 4
	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	sender := newSender(b, newClient(b), "bench")
	rs := make([]*azservicebus.Receiver, receivers)
	for i := range rs {
		rs[i] = newReceiver(b, newClient(b), "bench", nil)
	}
	// Warm up: connections, CBS and links are set up outside the timing.
	sendBatches(b, sender, "warm", receivers, body)
	for _, r := range rs {
		for _, m := range receiveN(b, r, 1, 30*time.Second) {
			if err := r.CompleteMessage(context.Background(), m, nil); err != nil {
				b.Fatal(err)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n := int64(b.N)
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, receivers+1)
	b.ResetTimer()
	start := time.Now()
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := drainCompleting(ctx, cancel, i, r, n, &done, nil); err != nil {
				errs <- err
			}
		}()
	}
	sendBatches(b, sender, "bench", b.N, body)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if got := done.Load(); got != n {
		b.Fatalf("completed %d of %d messages", got, n)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
}
