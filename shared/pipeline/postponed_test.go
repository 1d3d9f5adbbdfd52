package pipeline

import (
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/state"
)

// TestPostponementKeptUntilStart: the batch shows SharePoint's latest
// postponement (reason, pickup, queue length) until the job starts, and
// applying the same events again changes nothing.
func TestPostponementKeptUntilStart(t *testing.T) {
	pickup1 := time.Date(2026, 1, 1, 10, 5, 0, 0, time.UTC)
	pickup2 := pickup1.Add(10 * time.Minute)
	postponed := func(reason string, at time.Time, queued int64) graph.Event {
		return graph.Event{Kind: graph.KindPostponed, Postponed: &graph.Postponed{Reason: reason, NextPickupDateTime: at, JobsInQueue: graph.Int64(queued)}}
	}
	events := []graph.Event{postponed("tenant is busy", pickup1, 40), postponed("still busy", pickup2, 12)}
	var b state.Batch
	for range 2 {
		for i := range events {
			applyEvent(&b, &events[i])
		}
	}
	want := state.Postponement{Reason: "still busy", NextPickup: pickup2, JobsInQueue: 12}
	if b.Postponed != want {
		t.Fatalf("after two postponements: %+v, want %+v", b.Postponed, want)
	}
	for _, ev := range []graph.Event{
		{Kind: graph.KindStart, Start: &graph.Start{}},
		{Kind: graph.KindProgress, Progress: &graph.Progress{FilesProcessed: 1}},
		{Kind: graph.KindCancelled, Cancelled: &graph.Cancelled{}},
	} {
		x := b
		applyEvent(&x, &ev)
		if x.Postponed != (state.Postponement{}) || !x.JobStarted {
			t.Errorf("after %s: postponed %+v, started %v; want cleared and started", ev.Kind, x.Postponed, x.JobStarted)
		}
		// A postponed event read again after the start (a re-read page)
		// does not bring the postponement back.
		applyEvent(&x, &events[0])
		if x.Postponed != (state.Postponement{}) {
			t.Errorf("postponed event after %s: %+v", ev.Kind, x.Postponed)
		}
	}
	x := b
	resetAttempt(&x)
	if x.Postponed != (state.Postponement{}) {
		t.Errorf("new attempt keeps the last attempt's postponement: %+v", x.Postponed)
	}
}
