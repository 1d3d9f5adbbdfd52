package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/state"
)

// DrainReport says what one drain looked at and re-drove.
type DrainReport struct {
	Examined int
	Redriven int
	Settled  int
}

// Drain is the timer's safety net. It reads only the in-flight index (its
// cost grows with in-flight work, not with history) and re-drives what the
// message flow has lost:
//
//   - a running batch whose poll is overdue by PollGrace: its poll
//     sequence is advanced (so a late original poll becomes stale) and a
//     poll is sent now;
//   - a running batch whose job completed but whose outcome was not
//     written (a crash inside finish): a poll is sent to finish it;
//   - a batch stuck for StuckAfter in planned (of a page already
//     recorded) or staged: its stage or submit message is sent again;
//   - a submitting batch whose intent lease has run out: submit again
//     (see [Engine.Submit] for what that means);
//   - a running migration untouched for StuckAfter: planning is
//     re-driven if unfinished, and the migration settled.
//
// Errors on single entries are logged and counted, not fatal to the drain.
func (e *Engine) Drain(ctx context.Context) (DrainReport, error) {
	var rep DrainReport
	refs, err := e.Store.InFlight(ctx, e.cfg.DrainLimit)
	if err != nil {
		return rep, fmt.Errorf("drain: in-flight index: %w", err)
	}
	var errs []error
	for _, r := range refs {
		rep.Examined++
		redriven, settled, err := e.drainOne(ctx, r)
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			e.log.Warn("drain entry failed", "migration", r.MigrationID, "batch", r.BatchID, "error", err)
			errs = append(errs, err)
		}
		if redriven {
			rep.Redriven++
		}
		if settled {
			rep.Settled++
		}
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("drain: %d of %d entries failed: %w", len(errs), len(refs), errors.Join(errs...))
	}
	return rep, nil
}

func (e *Engine) forget(ctx context.Context, r state.Ref) error {
	return e.Store.ForgetInFlight(ctx, r.MigrationID, r.BatchID)
}

func (e *Engine) drainOne(ctx context.Context, r state.Ref) (redriven, settled bool, err error) {
	now := e.now()
	m, b, err := e.load(ctx, r.MigrationID, r.BatchID)
	if errors.Is(err, state.ErrNotFound) {
		return false, false, e.forget(ctx, r)
	}
	if err != nil {
		return false, false, err
	}
	if m.Status.Terminal() && (b == nil || b.Status.Terminal()) {
		return false, false, e.forget(ctx, r)
	}
	n := nonce("d", now)
	if b == nil {
		if m.Status.Terminal() || now.Sub(m.Updated) < e.cfg.StuckAfter {
			return false, false, nil
		}
		if !m.PlanDone && !m.CancelRequested {
			return true, false, e.send(ctx, queue.Message{Step: queue.StepProvision, MigrationID: m.ID, Page: m.PlanPage, Nonce: n})
		}
		// Only a crash between a batch's last write and the migration's
		// leaves this; settling costs one read of the batches.
		return false, true, e.settle(ctx, m)
	}
	switch b.Status {
	case state.BatchRunning:
		if b.Completed {
			return true, false, e.send(ctx, queue.Message{Step: queue.StepPoll, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt, Seq: b.PollSeq, Nonce: n})
		}
		if now.Before(b.NextPollAt.Add(e.cfg.PollGrace)) {
			return false, false, nil
		}
		e.batchLog(b).Info("poll overdue; re-driven", "due", b.NextPollAt)
		return true, false, e.reschedule(ctx, b, b.PollSeq, now, false)
	case state.BatchPlanned:
		if b.Page >= m.PlanPage || now.Sub(b.Updated) < e.cfg.StuckAfter {
			return false, false, nil
		}
		return true, false, e.send(ctx, queue.Message{Step: queue.StepStageBatch, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt, Nonce: n})
	case state.BatchStaged:
		if now.Sub(b.Updated) < e.cfg.StuckAfter {
			return false, false, nil
		}
		return true, false, e.send(ctx, queue.Message{Step: queue.StepSubmit, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt, Nonce: n})
	case state.BatchSubmitting:
		if now.Before(b.SubmitStarted.Add(e.cfg.SubmitLease)) {
			return false, false, nil
		}
		return true, false, e.send(ctx, queue.Message{Step: queue.StepSubmit, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt, Nonce: n})
	}
	if b.Status.Terminal() {
		if err := e.settle(ctx, m); err != nil {
			return false, false, err
		}
		return false, true, e.forget(ctx, r)
	}
	return false, false, nil
}
