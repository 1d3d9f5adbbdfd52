package pipeline

import (
	"context"
	"fmt"

	"github.com/spemigrate/spemigrate/shared/state"
)

// Cancel stops a migration: planning stops, batches without a job are
// cancelled, jobs still queued are deleted (then their batches cancelled),
// and jobs already running are allowed to finish (their outcome is kept).
// The migration becomes cancelled once every batch is terminal. Cancel is
// idempotent; cancelling a finished migration does nothing.
func (e *Engine) Cancel(ctx context.Context, migrationID string) error {
	m, _, err := e.load(ctx, migrationID, "")
	if err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	if m.Status.Terminal() {
		return nil
	}
	m, _, err = e.updateMigration(ctx, m, func(x *state.Migration) (bool, error) {
		return requestCancel.apply(x, ""), nil
	})
	if err != nil {
		return fmt.Errorf("cancel %s: %w", migrationID, err)
	}
	if m.Status.Terminal() {
		return nil
	}
	e.log.Info("migration cancel requested", "migration", m.ID)
	bs, err := e.Store.ListBatches(ctx, m.ID)
	if err != nil {
		return fmt.Errorf("cancel %s: list batches: %w", m.ID, err)
	}
	for _, b := range bs {
		switch {
		case b.Status.Terminal():
		case b.Status == state.BatchRunning:
			if b.JobStarted || b.Completed {
				continue
			}
			// If the delete is throttled or races the job's start, the
			// poll chain retries it (it checks CancelRequested).
			if _, err := e.deleteQueuedJob(ctx, m, b); err != nil {
				e.batchLog(b).Warn("could not delete queued job; the poll will retry", "error", err)
			}
		default:
			if err := e.cancelUnsubmitted(ctx, m, b); err != nil {
				return fmt.Errorf("cancel %s: %w", m.ID, err)
			}
		}
	}
	return e.settle(ctx, m)
}
