package pipeline

import (
	"context"
	"fmt"

	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/state"
)

// restage sends a staged batch back to planned, same attempt, with its
// containers dropped: the next stage provisions fresh ones. It is not a
// failure (the SAS simply ran short).
func (e *Engine) restage(ctx context.Context, b *state.Batch, reason string) error {
	attempt, status := b.Attempt, b.Status
	b, wrote, err := e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Attempt != attempt || x.Status != status {
			return false, nil
		}
		return restage.apply(x, reason), nil
	})
	if err != nil {
		return fmt.Errorf("restage %s/%s: %w", b.MigrationID, b.ID, err)
	}
	if !wrote && (b.Status != state.BatchPlanned || b.Attempt != attempt) {
		return nil
	}
	return e.send(ctx, queue.Message{Step: queue.StepStageBatch, MigrationID: b.MigrationID, BatchID: b.ID, Attempt: b.Attempt})
}

// failAttempt ends the batch's current attempt with reason: a new attempt
// (fresh containers, restaged package, new job) while attempts remain,
// otherwise the batch fails with the reason and its items are reported
// failed.
func (e *Engine) failAttempt(ctx context.Context, m *state.Migration, b *state.Batch, reason string) error {
	attempt, jobID := b.Attempt, b.JobID
	if attempt >= e.cfg.MaxAttempts {
		return e.failFinal(ctx, m, b, fmt.Sprintf("failed after %d attempts: %s", attempt, reason))
	}
	b, wrote, err := e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Attempt != attempt || x.JobID != jobID {
			return false, nil
		}
		return nextAttempt.apply(x, reason), nil
	})
	if err != nil {
		return fmt.Errorf("retry batch %s/%s: %w", m.ID, b.ID, err)
	}
	if !wrote {
		return nil
	}
	e.batchLog(b).Warn("batch attempt failed; re-provisioning and restaging", "reason", reason, "nextAttempt", b.Attempt)
	return e.send(ctx, queue.Message{Step: queue.StepStageBatch, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt})
}

// failFinal fails the batch's current attempt for good with why, and its
// items with it.
func (e *Engine) failFinal(ctx context.Context, m *state.Migration, b *state.Batch, why string) error {
	attempt, jobID := b.Attempt, b.JobID
	if err := e.markItems(ctx, m, b, state.OutcomeFailed, why); err != nil {
		return err
	}
	b, wrote, err := e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Attempt != attempt || x.JobID != jobID {
			return false, nil
		}
		return failBatch.apply(x, why), nil
	})
	if err != nil {
		return fmt.Errorf("fail batch %s/%s: %w", m.ID, b.ID, err)
	}
	if wrote {
		e.batchLog(b).Error("batch failed", "reason", why)
	}
	return e.settle(ctx, m)
}

// cancelUnsubmitted cancels a batch that has no job yet. A submit holding
// an intent loses its record write and deletes the job it created.
func (e *Engine) cancelUnsubmitted(ctx context.Context, m *state.Migration, b *state.Batch) error {
	switch b.Status {
	case state.BatchPlanned, state.BatchStaged, state.BatchSubmitting:
	default:
		return nil
	}
	if err := e.markItems(ctx, m, b, state.OutcomeCancelled, "migration cancelled before the batch was submitted"); err != nil {
		return err
	}
	return e.markCancelled(ctx, m, b, cancelBeforeJob, "")
}

// markCancelled applies a cancelling transition (to the batch's job jobID
// only, when set) and settles the migration.
func (e *Engine) markCancelled(ctx context.Context, m *state.Migration, b *state.Batch, t transition[state.Batch], jobID string) error {
	b, wrote, err := e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if jobID != "" && x.JobID != jobID {
			return false, nil
		}
		return t.apply(x, ""), nil
	})
	if err != nil {
		return fmt.Errorf("cancel batch %s/%s: %w", m.ID, b.ID, err)
	}
	if wrote {
		e.batchLog(b).Info("batch cancelled")
	}
	return e.settle(ctx, m)
}

// markItems sets every item of the batch to outcome, keeping naming notes.
func (e *Engine) markItems(ctx context.Context, m *state.Migration, b *state.Batch, outcome state.Outcome, reason string) error {
	items, err := e.Store.BatchItems(ctx, m.ID, b.ID)
	if err != nil {
		return fmt.Errorf("batch %s/%s items: %w", m.ID, b.ID, err)
	}
	rs := make([]state.ItemResult, 0, len(items))
	for _, it := range items {
		rs = append(rs, e.itemResult(m, b, it, outcome, joinReason(it.NamingReason, reason)))
	}
	if err := e.Store.PutResults(ctx, rs); err != nil {
		return fmt.Errorf("batch %s/%s item results: %w", m.ID, b.ID, err)
	}
	return nil
}

// itemResult is an item's report row as its batch stands.
func (e *Engine) itemResult(m *state.Migration, b *state.Batch, it state.Item, o state.Outcome, reason string) state.ItemResult {
	r := state.ItemResult{
		MigrationID: m.ID, SourcePath: it.Path,
		TargetPath: it.Target, BatchID: b.ID, Size: it.Size(),
		Outcome: o, Renamed: it.Renamed, Reason: reason,
		SourceETag: it.Current().ETag, JobID: b.JobID, Attempt: b.Attempt,
	}
	if f, ok := e.Stager.(FileIDer); ok && it.Target != "" {
		r.ManifestID = f.FileID(m, it)
	}
	return r
}

func joinReason(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
