package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Poll drains the job's progress events once from the stored cursor,
// persists them (upserts by event id, so a page read twice is stored once),
// and in one conditional write advances the cursor, the batch's counters
// (taken from the latest progress event, so re-applying is harmless), its
// outcome flags and its poll sequence. Then either the job is complete
// (spec §7.4) and the batch is finished, or the next poll is scheduled.
//
// attempt and seq come from the message: a poll for another attempt, or
// whose sequence is not the batch's current one, is stale and dropped.
// This is what keeps duplicated and re-driven poll messages from forking
// the polling chain.
//
// On completion: a job-level fatal error starts a new attempt (fresh
// containers, restage, new job) until MaxAttempts, then fails the batch
// with the reason; otherwise every item gets its outcome, failed items
// with the import error that names them.
func (e *Engine) Poll(ctx context.Context, migrationID, batchID string, attempt, seq int) error {
	m, b, err := e.load(ctx, migrationID, batchID)
	if err != nil {
		return fmt.Errorf("poll: %w", err)
	}
	if b.Status.Terminal() {
		// A crash may have come between the batch's last write and the
		// migration's; settling again is harmless.
		return e.settle(ctx, m)
	}
	if b.Status != state.BatchRunning || b.Attempt != attempt {
		return nil
	}
	if b.Completed {
		return e.finish(ctx, m, b, seq)
	}
	if b.PollSeq != seq {
		return nil
	}
	log := e.batchLog(b).With("job", b.JobID)

	if m.CancelRequested && !b.JobStarted {
		done, err := e.deleteQueuedJob(ctx, m, b)
		if err != nil || done {
			return err
		}
	}

	eb, err := e.Graph.Events(ctx, m.ContainerID, b.JobID, b.EventCursor)
	if err != nil {
		if at, ok := e.throttled(err); ok {
			log.Info("progress events throttled; poll rescheduled", "at", at)
			return e.reschedule(ctx, b, seq, at, false)
		}
		if errors.Is(err, graph.ErrProgressExpired) || errors.Is(err, graph.ErrJobNotFound) {
			if m.CancelRequested && !b.JobStarted {
				// Deleted at our request before it started.
				return e.cancelRunning(ctx, m, b)
			}
			return e.failAttempt(ctx, m, b, "job lost: its progress is no longer available")
		}
		if errors.Is(err, graph.ErrStaleCursor) && b.EventCursor != "" {
			// Read the job's events again from the start: they are stored
			// once by id, so nothing is counted twice.
			log.Warn("progress cursor refused; paging again from the start")
			return e.reschedule(ctx, b, seq, e.now(), true)
		}
		return fmt.Errorf("poll %s/%s: %w", m.ID, b.ID, err)
	}
	b, wrote, deleted, err := e.recordEvents(ctx, b, seq, eb)
	if err != nil {
		return fmt.Errorf("poll %s/%s: %w", m.ID, batchID, err)
	}
	if !wrote {
		return nil
	}
	switch {
	case b.Completed:
		return e.finish(ctx, m, b, b.PollSeq)
	case deleted:
		if m.CancelRequested {
			return e.cancelRunning(ctx, m, b)
		}
		return e.failAttempt(ctx, m, b, "job was deleted before it completed")
	}
	return e.send(ctx, queue.Message{Step: queue.StepPoll, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt, Seq: b.PollSeq, NotBefore: b.NextPollAt})
}

// recordEvents stores a page of events (once each, by id) and folds them
// into the batch in one write with the cursor, the next poll sequence and
// its due time. It reports whether it wrote and whether the job was
// deleted.
func (e *Engine) recordEvents(ctx context.Context, b *state.Batch, seq int, eb graph.EventBatch) (_ *state.Batch, wrote, deleted bool, err error) {
	if len(eb.Events) > 0 {
		if _, err := e.Store.PutEvents(ctx, b.MigrationID, b.ID, eb.Events); err != nil {
			return b, false, false, fmt.Errorf("store events: %w", err)
		}
	}
	now := e.now()
	var pickup time.Time
	for i := range eb.Events {
		if p := eb.Events[i].Postponed; p != nil && p.NextPickupDateTime.After(pickup) {
			pickup = p.NextPickupDateTime
		}
	}
	attempt := b.Attempt
	b, wrote, err = e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Status != state.BatchRunning || x.Attempt != attempt || x.PollSeq != seq {
			return false, nil
		}
		deleted = false
		x.EventCursor = eb.Cursor
		if len(eb.Events) > 0 {
			x.LastEventAt = now
		}
		for i := range eb.Events {
			if applyEvent(x, &eb.Events[i]) {
				deleted = true
			}
		}
		x.PollSeq++
		x.NextPollAt = e.nextPoll(x, now, eb.More, pickup)
		return true, nil
	})
	return b, wrote, deleted, err
}

// applyEvent folds one event into the batch; it reports a deleted event.
// Every change is a set, never an increment, so an event applied twice
// changes nothing.
func applyEvent(x *state.Batch, ev *graph.Event) (deleted bool) {
	switch ev.Kind {
	case graph.KindPostponed:
		// Kept until the job starts; events come in order, so the latest
		// postponement wins.
		if p := ev.Postponed; p != nil && !x.JobStarted {
			x.Postponed = state.Postponement{Reason: p.Reason, NextPickup: p.NextPickupDateTime, JobsInQueue: int64(p.JobsInQueue)}
		}
	case graph.KindStart:
		x.JobStarted = true
		x.Postponed = state.Postponement{}
		if ev.Start != nil && ev.Start.IsRestarted {
			// SharePoint retries the job itself: what failed before the
			// restart is not the outcome.
			x.Fatal, x.FatalReason, x.FailingEvents = false, "", false
		}
	case graph.KindProgress:
		if p := ev.Progress; p != nil {
			x.JobStarted, x.Postponed = true, state.Postponement{}
			x.Progress = state.BatchProgress{
				FilesProcessed:   int64(p.FilesProcessed),
				BytesProcessed:   int64(p.BytesProcessed),
				ObjectsProcessed: int64(p.ObjectsProcessed),
				ExpectedObjects:  int64(p.TotalExpectedObjects),
				Errors:           int64(p.TotalErrors),
				Warnings:         int64(p.TotalWarnings),
			}
			if p.IsCompleted {
				x.Completed = true
			}
		}
	case graph.KindError:
		if je := ev.Error; je != nil && je.Level.Failing() {
			x.FailingEvents = true
			if je.Level == graph.LevelFatalError {
				x.Fatal = true
				if x.FatalReason == "" {
					x.FatalReason = eventReason(je)
				}
			}
		}
	case graph.KindCancelled:
		x.JobStarted, x.Postponed = true, state.Postponement{}
	case graph.KindDeleted:
		return true
	}
	return false
}

// nextPoll is when to look again: at once when the page limit stopped the
// drain, at the announced pickup of a postponed job (capped by the idle
// interval), less often once a job has been silent for IdleAfter.
func (e *Engine) nextPoll(x *state.Batch, now time.Time, more bool, pickup time.Time) time.Time {
	if more {
		return now
	}
	next := now.Add(e.cfg.PollInterval)
	if !x.LastEventAt.IsZero() && now.Sub(x.LastEventAt) > e.cfg.IdleAfter {
		next = now.Add(e.cfg.IdlePollInterval)
	}
	if pickup.After(next) {
		next = pickup
		if cap := now.Add(e.cfg.IdlePollInterval); next.After(cap) {
			next = cap
		}
	}
	return next
}

// reschedule moves the poll chain to a later time under a new sequence, so
// the new message is not taken for a duplicate of the current one;
// fromStart also clears the events cursor (a refused cursor: the job's
// events are read again from the first, stored once by id).
func (e *Engine) reschedule(ctx context.Context, b *state.Batch, seq int, at time.Time, fromStart bool) error {
	attempt := b.Attempt
	b, wrote, err := e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Status != state.BatchRunning || x.Attempt != attempt || x.PollSeq != seq {
			return false, nil
		}
		if fromStart {
			x.EventCursor = ""
		}
		x.PollSeq++
		x.NextPollAt = at
		return true, nil
	})
	if err != nil || !wrote {
		return err
	}
	return e.send(ctx, queue.Message{Step: queue.StepPoll, MigrationID: b.MigrationID, BatchID: b.ID, Attempt: b.Attempt, Seq: b.PollSeq, NotBefore: at})
}

// cancelRunning ends a batch whose job was cancelled or deleted at the
// user's request.
func (e *Engine) cancelRunning(ctx context.Context, m *state.Migration, b *state.Batch) error {
	if err := e.markItems(ctx, m, b, state.OutcomeCancelled, "migration cancelled"); err != nil {
		return err
	}
	return e.markCancelled(ctx, m, b, cancelRunning, b.JobID)
}

// deleteQueuedJob deletes a job that has not started, for a cancelled
// migration. done reports that the batch is now cancelled.
func (e *Engine) deleteQueuedJob(ctx context.Context, m *state.Migration, b *state.Batch) (done bool, err error) {
	err = e.Graph.DeleteJob(ctx, m.ContainerID, b.JobID)
	switch {
	case err == nil:
		// A 204 is not proof that nothing was imported (the job may have
		// started as the delete arrived): the events decide, so polling
		// goes on until they show the job deleted, or it completes.
		e.batchLog(b).Info("queued job deleted; polling until its events confirm", "job", b.JobID)
		return false, nil
	case errors.Is(err, graph.ErrJobNotFound):
		// Started or finished meanwhile: let it finish.
		return false, nil
	case errors.Is(err, graph.ErrThrottled):
		return false, nil
	}
	return false, fmt.Errorf("delete queued job of %s/%s: %w", m.ID, b.ID, err)
}
