package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
)

// Graph's fault rate: 10% of calls answer 429 and 10% 503 (the second rule
// sees only the calls the first let through, hence 1/9), each with
// Retry-After 1.
var graphFaults = []graphemu.FaultRule{
	{Route: "*", Status: 429, RetryAfter: 1, Probability: 0.10},
	{Route: "*", Status: 503, RetryAfter: 1, Probability: 0.10 / 0.90},
}

// unleash turns the Graph faults on and then runs the seeded schedule: the
// handler kills, one Service Bus restart and one Azurite restart, in a
// random order with random gaps, until done closes. It returns an error if
// the migration ended before the schedule did (the faults would then not
// have hit a running migration) or a fault could not be applied.
func (r *run) unleash(ctx context.Context, rng *rand.Rand, done <-chan struct{}) error {
	for _, f := range graphFaults {
		if err := r.app.Graph.AddFault(f); err != nil {
			return err
		}
	}
	events := []string{"servicebus", "azurite"}
	for range r.p.kills {
		events = append(events, "kill")
	}
	rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	for i, ev := range events {
		gap := time.Duration(500+rng.IntN(2500)) * time.Millisecond
		select {
		case <-done:
			return fmt.Errorf("the migration ended after %d of %d chaos events (%v); the rest never hit it", i, len(events), events)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(gap):
		}
		if err := r.fire(ctx, ev); err != nil {
			return fmt.Errorf("event %d (%s): %w", i, ev, err)
		}
		r.t.Logf("chaos: t+%s %s", gap, ev)
	}
	return nil
}

func (r *run) fire(ctx context.Context, ev string) error {
	switch ev {
	case "servicebus":
		r.sbRestarts++
		return r.app.RestartServiceBus(ctx)
	case "azurite":
		r.azRestarts++
		return r.app.RestartAzurite(ctx)
	default:
		return r.kill(ctx)
	}
}

// kill SIGKILLs the running handler and waits until the dev host has
// restarted it.
func (r *run) kill(ctx context.Context) error {
	h := r.app.FunctionsHost
	before := h.Stats().HandlerRestarts
	pid := 0
	for pid == 0 {
		if pid = h.HandlerPID(); pid == 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("no handler running: %w", ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill handler %d: %w", pid, err)
	}
	r.kills++
	deadline := time.Now().Add(time.Minute)
	for h.Stats().HandlerRestarts == before {
		if time.Now().After(deadline) {
			return fmt.Errorf("the dev host did not restart the handler within a minute: %v", h.Stats())
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	return nil
}
