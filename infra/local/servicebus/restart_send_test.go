package servicebus

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// TestRestartWhileSendingAndLocked: every send the emulator acknowledged
// around a restart, including messages locked to a receiver when it stopped,
// is there after the restart.
func TestRestartWhileSendingAndLocked(t *testing.T) {
	c := newClient(t)
	s := newSender(t, c, "compete")
	r := newReceiver(t, c, "compete", nil)
	var mu sync.Mutex
	acked := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop, stopLocks := make(chan struct{}), make(chan struct{})
	var wg, locks sync.WaitGroup
	defer func() { // a failed wait must not leave the goroutines running
		for _, ch := range []chan struct{}{stop, stopLocks} {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
		wg.Wait()
		locks.Wait()
	}()
	wg.Add(1)
	locks.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("rs-%d", i)
			// The client needs a few seconds to reconnect after the restart.
			sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
			err := s.SendMessage(sctx, &azservicebus.Message{MessageID: to.Ptr(id), Body: []byte(id)}, nil)
			scancel()
			if err == nil {
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		}
	}()
	var held sync.Map
	go func() { // holds locks until the restart, never settles
		defer locks.Done()
		for {
			select {
			case <-stopLocks:
				return
			default:
			}
			rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			msgs, _ := r.ReceiveMessages(rctx, 5, nil)
			rcancel()
			for _, m := range msgs {
				held.Store(m.MessageID, true)
			}
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	locked := func() bool { n := 0; held.Range(func(any, any) bool { n++; return true }); return n > 0 }
	waitFor(t, 30*time.Second, "sends acknowledged and locks held before the restart", func() bool { return count() >= 5 && locked() })
	close(stopLocks)
	locks.Wait()
	if err := emu.RestartServiceBus(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	before := count()
	waitFor(t, 30*time.Second, "sends acknowledged after the restart", func() bool { return count() >= before+5 })
	close(stop)
	wg.Wait()

	c2 := newClient(t)
	r2 := newReceiver(t, c2, "compete", &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete})
	got := map[string]bool{}
	for {
		rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
		msgs, err := r2.ReceiveMessages(rctx, 100, nil)
		rcancel()
		if err != nil || len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			got[m.MessageID] = true
		}
	}
	var lost []string
	for id := range acked {
		if !got[id] {
			lost = append(lost, id)
		}
	}
	n := 0
	held.Range(func(any, any) bool { n++; return true })
	t.Logf("%d sends acknowledged (%d of them locked when the emulator stopped), %d received after the restart", len(acked), n, len(got))
	if len(lost) > 0 {
		t.Errorf("%d acknowledged messages lost in the restart: %v", len(lost), lost)
	}
}
