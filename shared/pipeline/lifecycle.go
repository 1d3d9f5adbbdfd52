package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

// ErrIDConflict: a start named a migration id that exists for another
// request (by request digest, which ignores secrets).
var ErrIDConflict = errors.New("pipeline: migration id is taken by another request")

// Start records a new migration (m.ID, m.ContainerID and m.Request set by
// the caller) and sends the provision message for its first page. It is
// idempotent: a migration that exists with the same request starts nothing
// new (created is false; the first provision message is re-sent if planning
// has not begun), one with another request is [ErrIDConflict].
func (e *Engine) Start(ctx context.Context, m *state.Migration) (created bool, err error) {
	if m.ID == "" || m.ContainerID == "" {
		return false, errors.New("pipeline: start: migration id and target container id are required")
	}
	stored, err := e.Store.GetMigration(ctx, m.ID)
	if err == nil {
		return false, e.restart(ctx, stored, m)
	}
	if !errors.Is(err, state.ErrNotFound) {
		return false, fmt.Errorf("start migration %s: %w", m.ID, err)
	}
	if e.Targets != nil {
		// Refuse a container Graph does not know (or will not let the app
		// use) before anything is stored, as an invalid request.
		if err := e.Targets.CheckTarget(ctx, m.ContainerID); err != nil {
			return false, err
		}
	}
	nm := &state.Migration{ID: m.ID, ContainerID: m.ContainerID, Request: m.Request, Status: state.MigrationRunning}
	err = e.Store.CreateMigration(ctx, nm)
	if errors.Is(err, state.ErrExists) {
		// A concurrent start of the same id won.
		if stored, err = e.Store.GetMigration(ctx, m.ID); err != nil {
			return false, fmt.Errorf("start migration %s: %w", m.ID, err)
		}
		return false, e.restart(ctx, stored, m)
	}
	if err != nil {
		return false, fmt.Errorf("start migration %s: %w", m.ID, err)
	}
	e.log.Info("migration started", "migration", m.ID)
	return true, e.send(ctx, queue.Provision(m.ID, 0))
}

// restart answers a start of an id that exists: another request is
// ErrIDConflict; the same one re-sends the first provision message while
// planning has not begun (the first send may have been lost).
func (e *Engine) restart(ctx context.Context, stored, m *state.Migration) error {
	if stored.Request.Digest() != m.Request.Digest() {
		return fmt.Errorf("migration %s: %w", m.ID, ErrIDConflict)
	}
	if stored.Status.Terminal() || stored.PlanPage > 0 || stored.CancelRequested {
		return nil
	}
	return e.send(ctx, queue.Provision(m.ID, 0))
}

// Reject records a request that cannot start (it arrived where nobody can
// be answered, such as the provision queue) as a failed migration with the
// reason, so whoever sent it can read why. An id that exists is left alone:
// it names a migration that did start.
func (e *Engine) Reject(ctx context.Context, id, containerID, reason string) error {
	if !request.ValidID(id) {
		return MarkPermanent(fmt.Errorf("reject request: %q cannot name a migration", id))
	}
	m := &state.Migration{ID: id, ContainerID: containerID, Status: state.MigrationFailed, Reason: reason}
	err := e.Store.CreateMigration(ctx, m)
	if err != nil && !errors.Is(err, state.ErrExists) {
		return fmt.Errorf("record rejected request %s: %w", id, err)
	}
	return nil
}

// FailBatch ends a batch whose work cannot go on (its message was
// dead-lettered, for instance): unless it has ended already, its items
// are reported failed with reason, the batch is failed, and its migration
// settled.
func (e *Engine) FailBatch(ctx context.Context, migrationID, batchID, reason string) error {
	m, b, err := e.load(ctx, migrationID, batchID)
	if err != nil {
		return fmt.Errorf("fail batch: %w", err)
	}
	if b.Status.Terminal() {
		return e.settle(ctx, m)
	}
	if err := e.markItems(ctx, m, b, state.OutcomeFailed, reason); err != nil {
		return err
	}
	b, wrote, err := e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		return failBatch.apply(x, reason), nil
	})
	if err != nil {
		return fmt.Errorf("fail batch %s/%s: %w", m.ID, b.ID, err)
	}
	if wrote {
		e.batchLog(b).Error("batch failed", "reason", reason)
	}
	return e.settle(ctx, m)
}

// FailMigration ends a migration that cannot be planned further: planning
// stops with reason, batches already planned still run, and the migration
// ends (failed when nothing was planned, completed with errors otherwise)
// once they are terminal.
func (e *Engine) FailMigration(ctx context.Context, migrationID, reason string) error {
	m, _, err := e.load(ctx, migrationID, "")
	if err != nil {
		return fmt.Errorf("fail migration: %w", err)
	}
	return e.failMigration(ctx, m, reason)
}

func (e *Engine) failMigration(ctx context.Context, m *state.Migration, reason string) error {
	m, wrote, err := e.updateMigration(ctx, m, func(x *state.Migration) (bool, error) {
		return stopPlanning.apply(x, reason), nil
	})
	if err != nil {
		return fmt.Errorf("fail migration %s: %w", m.ID, err)
	}
	if wrote {
		e.log.Error("migration cannot be planned further", "migration", m.ID, "reason", reason)
	}
	return e.settle(ctx, m)
}
