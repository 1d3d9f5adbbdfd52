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

// sasMargin is added to MinSASValidity when deciding whether containers
// are still good enough to stage into: staging itself takes time, and the
// SAS must still have MinSASValidity left when the job is created.
const sasMargin = time.Hour

// StageBatch provisions containers for the batch's current attempt (unless it
// has containers whose SAS is still long enough), encrypts and uploads the
// batch's content and then its manifests, marks the batch staged and sends
// the submit message.
//
// Provisioning records the containerInfo (sealed at rest by the store) before staging uses it, so
// a re-run stages into the same containers (same blob names: staging is
// idempotent). Two concurrent provisions of one batch keep the first
// recorded pair; the other pair is simply never used (provisioned
// containers cost nothing and expire on their own).
func (e *Engine) StageBatch(ctx context.Context, migrationID, batchID string) error {
	m, b, err := e.load(ctx, migrationID, batchID)
	if err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	log := e.batchLog(b)
	if b.Status.Terminal() {
		return nil
	}
	if m.CancelRequested || m.Status.Terminal() {
		return e.cancelUnsubmitted(ctx, m, b)
	}
	switch b.Status {
	case state.BatchStaged:
		return e.send(ctx, queue.Message{Step: queue.StepSubmit, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt})
	case state.BatchPlanned:
	default:
		return nil
	}

	attempt := b.Attempt
	info, b, err := e.ensureContainers(ctx, m, b, false)
	if at, ok := e.throttled(err); ok {
		log.Info("provisioning throttled; rescheduled", "at", at)
		return e.send(ctx, queue.Message{Step: queue.StepStageBatch, MigrationID: m.ID, BatchID: b.ID, Attempt: attempt, NotBefore: at, Nonce: nonce("t", at)})
	}
	switch {
	case errors.Is(err, graph.ErrAccessDenied):
		return e.denied(ctx, m, b, err)
	case err != nil:
		return fmt.Errorf("stage %s/%s: %w", m.ID, batchID, err)
	case b.Status != state.BatchPlanned || b.Attempt != attempt:
		return nil // moved on while we provisioned
	}
	items, err := e.Store.BatchItems(ctx, m.ID, b.ID)
	if err != nil {
		return fmt.Errorf("stage %s/%s: items: %w", m.ID, b.ID, err)
	}
	res, err := e.Stager.Stage(ctx, m, b, items, info)
	if errors.Is(err, ErrSASTooShort) {
		log.Info("SAS too short to stage into; re-provisioning")
		info, b, err = e.ensureContainers(ctx, m, b, true)
		if at, ok := e.throttled(err); ok {
			return e.send(ctx, queue.Message{Step: queue.StepStageBatch, MigrationID: m.ID, BatchID: b.ID, Attempt: attempt, NotBefore: at, Nonce: nonce("t", at)})
		}
		if err == nil {
			res, err = e.Stager.Stage(ctx, m, b, items, info)
		}
	}
	if err != nil {
		return fmt.Errorf("stage %s/%s: %w", m.ID, b.ID, err)
	}
	if changed := recordStageErrors(items, res); changed {
		if err := e.Store.PutBatchItems(ctx, m.ID, b.ID, items); err != nil {
			return fmt.Errorf("stage %s/%s: record item errors: %w", m.ID, b.ID, err)
		}
		log.Warn("items left out of the package: source unreadable", "count", len(res.Failed))
	}
	used := b.Containers
	b, wrote, err := e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Status != state.BatchPlanned || x.Attempt != attempt || x.Containers != used {
			return false, nil
		}
		x.Status = state.BatchStaged
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("stage %s/%s: %w", m.ID, batchID, err)
	}
	if !wrote {
		if b.Status == state.BatchPlanned && b.Attempt == attempt {
			// Containers were replaced while we staged: stage again into
			// the recorded ones.
			return fmt.Errorf("stage %s/%s: containers changed while staging; retry", m.ID, batchID)
		}
		return nil
	}
	log.Info("batch staged", "items", b.Items, "bytes", b.Bytes)
	return e.send(ctx, queue.Message{Step: queue.StepSubmit, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt})
}

// ensureContainers returns the batch's containers, provisioning (and
// recording, sealed) a new pair when it has none, when their SAS is too
// short, or when force is set.
func (e *Engine) ensureContainers(ctx context.Context, m *state.Migration, b *state.Batch, force bool) (graph.ContainerInfo, *state.Batch, error) {
	good := func(x *state.Batch) bool {
		return x.Provisioned() && x.SASExpiry.After(e.now().Add(e.cfg.MinSASValidity+sasMargin))
	}
	if !force && good(b) {
		return b.Containers, b, nil
	}
	old := b.Containers
	info, err := e.Graph.ProvisionContainers(ctx, m.ContainerID)
	if err != nil {
		return info, b, fmt.Errorf("provision containers: %w", err)
	}
	exp, err := info.Expiry()
	if err != nil {
		return graph.ContainerInfo{}, b, fmt.Errorf("provision containers: %w", err)
	}
	if !exp.After(e.now().Add(e.cfg.MinSASValidity + sasMargin)) {
		return graph.ContainerInfo{}, b, fmt.Errorf("provisioned containers expire at %s, sooner than the %s a job needs", exp.Format(time.RFC3339), e.cfg.MinSASValidity+sasMargin)
	}
	attempt := b.Attempt
	b, wrote, err := e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Status != state.BatchPlanned || x.Attempt != attempt || x.Containers != old {
			return false, nil
		}
		x.Containers = info
		x.SASExpiry = exp
		x.ProvisionedAt = e.now()
		return true, nil
	})
	if err != nil {
		return graph.ContainerInfo{}, b, err
	}
	if wrote {
		e.batchLog(b).Info("containers provisioned", "sasExpiry", exp)
		return info, b, nil
	}
	// Lost the race: use what the winner recorded, if it is usable.
	if b.Status == state.BatchPlanned && b.Attempt == attempt && good(b) {
		return b.Containers, b, nil
	}
	if b.Status == state.BatchPlanned && b.Attempt == attempt {
		return graph.ContainerInfo{}, b, fmt.Errorf("batch %s: containers changed concurrently; retry", b.ID)
	}
	return graph.ContainerInfo{}, b, nil
}

// recordStageErrors copies a staging's per-item failures onto the items and
// clears those of items that staged this time.
func recordStageErrors(items []state.Item, res StageResult) bool {
	changed := false
	for i := range items {
		why := res.Failed[i]
		if items[i].StageError != why {
			items[i].StageError = why
			changed = true
		}
	}
	return changed
}

func nonce(kind string, t time.Time) string {
	return fmt.Sprintf("%s%d", kind, t.UnixMilli())
}
