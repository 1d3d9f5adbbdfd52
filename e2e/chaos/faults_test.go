package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
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

// killTargets are what a kill waits for before it strikes: any moment (""),
// or an invocation of that function in flight. Provision is left out: a
// source of up to a page runs it once, at the start.
var killTargets = []string{"", "stage-batch", "submit", "poll"}

// event is one scheduled fault: at an offset from the start, what to do.
type event struct {
	at     time.Duration
	what   string // "servicebus", "azurite" or "kill"
	target string // for a kill: a killTargets entry
}

// schedule draws the run's events from the seed: the kills and the two
// restarts at random offsets within a window that grows with the run
// (40 ms per file, at least 5 s; a run takes about 100 ms per file), in
// time order.
func (r *run) schedule(rng *rand.Rand) []event {
	window := max(5*time.Second, time.Duration(r.p.files)*40*time.Millisecond)
	at := func() time.Duration { return 500*time.Millisecond + time.Duration(rng.Int64N(int64(window))) }
	evs := []event{{at: at(), what: "servicebus"}, {at: at(), what: "azurite"}}
	for range r.p.kills {
		evs = append(evs, event{at: at(), what: "kill", target: killTargets[rng.IntN(len(killTargets))]})
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	return evs
}

// unleash turns the Graph faults on and then runs the seeded schedule until
// done closes. It returns an error if the migration ended before the
// schedule did (the rest would not have hit a running migration) or a fault
// could not be applied.
func (r *run) unleash(ctx context.Context, rng *rand.Rand, done <-chan struct{}) error {
	for _, f := range graphFaults {
		if err := r.app.Graph.AddFault(f); err != nil {
			return err
		}
	}
	start := time.Now()
	evs := r.schedule(rng)
	for i, ev := range evs {
		select {
		case <-done:
			return fmt.Errorf("the migration ended after %d of %d chaos events; the rest never hit it", i, len(evs))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(start.Add(ev.at))):
		}
		if err := r.fire(ctx, ev); err != nil {
			return fmt.Errorf("event %d (%s): %w", i, ev.what, err)
		}
		r.t.Logf("chaos: t+%s %s %s", time.Since(start).Round(time.Millisecond), ev.what, ev.target)
	}
	return nil
}

func (r *run) fire(ctx context.Context, ev event) error {
	switch ev.what {
	case "servicebus":
		r.sbRestarts++
		return r.app.RestartServiceBus(ctx)
	case "azurite":
		r.azRestarts++
		return r.app.RestartAzurite(ctx)
	default:
		return r.kill(ctx, ev.target)
	}
}

// kill SIGKILLs the running handler, when target is set as soon as an
// invocation of that function is in flight (or after 3 s without one), and
// waits until the dev host has restarted it.
func (r *run) kill(ctx context.Context, target string) error {
	h := r.app.FunctionsHost
	before := h.Stats().HandlerRestarts
	if target != "" {
		deadline := time.Now().Add(3 * time.Second)
		for h.Stats().Functions[target].InFlight == 0 && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
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
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
