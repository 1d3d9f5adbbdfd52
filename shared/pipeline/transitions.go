package pipeline

import (
	"fmt"
	"time"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/state"
)

// A transition is a named change of an entity: guard says whether the
// entity as read may take it, change makes it. Steps apply transitions
// inside the conditional-update loop, so the guard is always checked on
// fresh state; the table test pins every guard.
type transition[T any] struct {
	name   string
	guard  func(x *T) bool
	change func(x *T, reason string)
}

// apply makes the change if the guard allows it and reports whether it did.
func (t transition[T]) apply(x *T, reason string) bool {
	if !t.guard(x) {
		return false
	}
	t.change(x, reason)
	return true
}

// Batch transitions that end or restart an attempt.
var (
	// failBatch ends a batch for good; its items are reported failed.
	failBatch = transition[state.Batch]{
		name:  "fail batch",
		guard: func(b *state.Batch) bool { return !b.Status.Terminal() },
		change: func(b *state.Batch, reason string) {
			b.Status, b.Reason = state.BatchFailed, reason
			b.FilesMigrated, b.BytesMigrated = 0, 0
			b.FilesFailed = int64(b.Items)
		},
	}
	// nextAttempt sends a batch back to planned with fresh containers, a
	// new package and a new job to come.
	nextAttempt = transition[state.Batch]{
		name:  "next attempt",
		guard: func(b *state.Batch) bool { return !b.Status.Terminal() },
		change: func(b *state.Batch, reason string) {
			attempt := b.Attempt
			resetAttempt(b)
			b.Attempt = attempt + 1
			b.Status = state.BatchPlanned
			b.Reason = fmt.Sprintf("attempt %d failed: %s", attempt, reason)
		},
	}
	// restage sends a staged batch back to planned in the same attempt,
	// its containers dropped (their SAS ran short); no job may exist.
	restage = transition[state.Batch]{
		name: "restage",
		guard: func(b *state.Batch) bool {
			return b.JobID == "" && (b.Status == state.BatchPlanned || b.Status == state.BatchStaged)
		},
		change: func(b *state.Batch, reason string) {
			resetAttempt(b)
			b.Status = state.BatchPlanned
			b.Reason = reason
		},
	}
	// cancelBeforeJob cancels a batch that has no job.
	cancelBeforeJob = transition[state.Batch]{
		name: "cancel unsubmitted",
		guard: func(b *state.Batch) bool {
			return b.JobID == "" && (b.Status == state.BatchPlanned || b.Status == state.BatchStaged || b.Status == state.BatchSubmitting)
		},
		change: cancelBatch,
	}
	// cancelRunning cancels a batch whose job was cancelled or deleted at
	// the user's request.
	cancelRunning = transition[state.Batch]{
		name:   "cancel running",
		guard:  func(b *state.Batch) bool { return b.Status == state.BatchRunning },
		change: cancelBatch,
	}
)

func cancelBatch(b *state.Batch, _ string) {
	b.Status = state.BatchCancelled
	b.Reason = "cancelled"
	b.FilesMigrated, b.FilesFailed, b.BytesMigrated = 0, 0, 0
}

// Migration transitions.
var (
	// requestCancel stops planning and winds the migration down.
	requestCancel = transition[state.Migration]{
		name:   "request cancel",
		guard:  func(m *state.Migration) bool { return !m.Status.Terminal() && !m.CancelRequested },
		change: func(m *state.Migration, _ string) { m.CancelRequested, m.Reason = true, "cancelled by request" },
	}
	// stopPlanning ends planning with a reason: what was planned still runs.
	stopPlanning = transition[state.Migration]{
		name:   "stop planning",
		guard:  func(m *state.Migration) bool { return !m.Status.Terminal() && !m.PlanDone },
		change: func(m *state.Migration, reason string) { m.PlanDone, m.Reason = true, reason },
	}
)

// resetAttempt clears everything that belongs to one provision→job round.
func resetAttempt(x *state.Batch) {
	x.Containers = graph.ContainerInfo{}
	x.SASExpiry = time.Time{}
	x.ProvisionedAt = time.Time{}
	x.SubmitStarted = time.Time{}
	x.JobID = ""
	x.SubmittedAt = time.Time{}
	x.JobStarted = false
	x.EventCursor = ""
	x.PollSeq = 0
	x.NextPollAt = time.Time{}
	x.LastEventAt = time.Time{}
	x.Completed = false
	x.Fatal = false
	x.FailingEvents = false
	x.FatalReason = ""
	x.Postponed = state.Postponement{}
	x.Progress = state.BatchProgress{}
}
