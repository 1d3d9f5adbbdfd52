package pipeline

import (
	"context"
	"fmt"
	"time"
)

// resetAttempt clears everything that belongs to one provision→job round.
func resetAttempt(x *Batch) {
	x.SealedContainers = ""
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
	x.Progress = BatchProgress{}
}

// restage sends a staged batch back to planned, same attempt, with its
// containers dropped: the next stage provisions fresh ones. It is not a
// failure (the SAS simply ran short).
func (e *Engine) restage(ctx context.Context, b *Batch, reason string) error {
	attempt, status := b.Attempt, b.Status
	b, wrote, err := e.updateBatch(ctx, b, func(x *Batch) (bool, error) {
		if x.Attempt != attempt || x.Status != status || x.JobID != "" {
			return false, nil
		}
		resetAttempt(x)
		x.Status = BatchPlanned
		x.Reason = reason
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("restage %s/%s: %w", b.MigrationID, b.ID, err)
	}
	if !wrote && (b.Status != BatchPlanned || b.Attempt != attempt) {
		return nil
	}
	return e.send(ctx, Next{Step: StepStage, MigrationID: b.MigrationID, BatchID: b.ID, Attempt: b.Attempt})
}

// failAttempt ends the batch's current attempt with reason: a new attempt
// (fresh containers, restaged package, new job) while attempts remain,
// otherwise the batch fails with the reason and its items are reported
// failed.
func (e *Engine) failAttempt(ctx context.Context, m *Migration, b *Batch, reason string) error {
	log := e.batchLog(b)
	attempt, jobID := b.Attempt, b.JobID
	if attempt >= e.cfg.MaxAttempts {
		why := fmt.Sprintf("failed after %d attempts: %s", attempt, reason)
		if err := e.markItems(ctx, m, b, OutcomeFailed, why); err != nil {
			return err
		}
		b, wrote, err := e.updateBatch(ctx, b, func(x *Batch) (bool, error) {
			if x.Attempt != attempt || x.JobID != jobID || x.Status.Terminal() {
				return false, nil
			}
			x.Status = BatchFailed
			x.Reason = why
			x.FilesMigrated, x.BytesMigrated = 0, 0
			x.FilesFailed = int64(x.Items)
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("fail batch %s/%s: %w", m.ID, b.ID, err)
		}
		if wrote {
			log.Error("batch failed", "reason", why)
		}
		return e.settle(ctx, m)
	}
	b, wrote, err := e.updateBatch(ctx, b, func(x *Batch) (bool, error) {
		if x.Attempt != attempt || x.JobID != jobID || x.Status.Terminal() {
			return false, nil
		}
		resetAttempt(x)
		x.Attempt = attempt + 1
		x.Status = BatchPlanned
		x.Reason = fmt.Sprintf("attempt %d failed: %s", attempt, reason)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("retry batch %s/%s: %w", m.ID, b.ID, err)
	}
	if !wrote {
		return nil
	}
	log.Warn("batch attempt failed; re-provisioning and restaging", "reason", reason, "nextAttempt", b.Attempt)
	return e.send(ctx, Next{Step: StepStage, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt})
}

// cancelUnsubmitted cancels a batch that has no job yet. A submit holding
// an intent loses its record write and deletes the job it created.
func (e *Engine) cancelUnsubmitted(ctx context.Context, m *Migration, b *Batch) error {
	switch b.Status {
	case BatchPlanned, BatchStaged, BatchSubmitting:
	default:
		return nil
	}
	if err := e.markItems(ctx, m, b, OutcomeCancelled, "migration cancelled before the batch was submitted"); err != nil {
		return err
	}
	return e.markCancelled(ctx, m, b, func(x *Batch) bool {
		return x.JobID == "" && (x.Status == BatchPlanned || x.Status == BatchStaged || x.Status == BatchSubmitting)
	})
}

func (e *Engine) markCancelled(ctx context.Context, m *Migration, b *Batch, ok func(*Batch) bool) error {
	b, wrote, err := e.updateBatch(ctx, b, func(x *Batch) (bool, error) {
		if !ok(x) {
			return false, nil
		}
		x.Status = BatchCancelled
		x.Reason = "cancelled"
		x.FilesMigrated, x.FilesFailed, x.BytesMigrated = 0, 0, 0
		return true, nil
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
func (e *Engine) markItems(ctx context.Context, m *Migration, b *Batch, outcome Outcome, reason string) error {
	items, err := e.Store.BatchItems(ctx, m.ID, b.ID)
	if err != nil {
		return fmt.Errorf("batch %s/%s items: %w", m.ID, b.ID, err)
	}
	rs := make([]ItemResult, 0, len(items))
	for _, it := range items {
		rs = append(rs, itemResult(m, b, it, outcome, joinReason(it.NamingReason, reason)))
	}
	if err := e.Store.PutItemResults(ctx, rs); err != nil {
		return fmt.Errorf("batch %s/%s item results: %w", m.ID, b.ID, err)
	}
	return nil
}

func itemResult(m *Migration, b *Batch, it Item, o Outcome, reason string) ItemResult {
	return ItemResult{
		MigrationID: m.ID, SourcePath: it.Path,
		TargetPath: it.Target, BatchID: b.ID, Size: it.Size(),
		Outcome: o, Renamed: it.Renamed, Reason: reason,
	}
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
