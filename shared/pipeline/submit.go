package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Submit creates the migration job for a staged batch, records its id and
// schedules the first poll.
//
// Job creation is not idempotent (spec §8), so Submit works in two writes:
//
//  1. intent: staged → submitting with SubmitStarted = now. The intent is a
//     lease: while it is fresh, no other delivery of this batch's submit
//     creates a job (it re-checks when the lease ends).
//  2. record: submitting → running with the job id, in one conditional
//     write that also requires the intent to be ours. A job id, once
//     recorded, is never replaced or created again for this attempt.
//
// If the record write cannot be made (our lease was taken over, the batch
// was cancelled, or the store failed) the job we just created is deleted
// while it is still queued, so at most one job per attempt imports the
// batch. The one window Graph leaves open is a crash between the create
// call's response and the record write (or a create that failed
// ambiguously): that job's id is lost and Graph offers no way to find it.
// When the lease expires, the interrupted attempt is therefore counted as
// failed and the batch starts a new attempt with fresh containers, so a
// job the lost attempt created stays the only one over its package and
// every attempt commits at most one job. On the last attempt there is no
// new one to start: the batch is submitted again over the same package,
// and the orphan, if there is one, imports the same deterministic ids
// (spec §6.5), so the target ends the same; it is logged as a possible
// duplicate.
//
// A SAS with less than MinSASValidity left sends the batch back to planned
// (same attempt) to be re-provisioned and restaged.
func (e *Engine) Submit(ctx context.Context, migrationID, batchID string) error {
	m, b, err := e.load(ctx, migrationID, batchID)
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	log := e.batchLog(b)
	if b.Status.Terminal() {
		return nil
	}
	switch b.Status {
	case state.BatchRunning:
		return e.resendFirstPoll(ctx, b)
	case state.BatchStaged, state.BatchSubmitting:
	default:
		return nil
	}
	if m.CancelRequested || m.Status.Terminal() {
		return e.cancelUnsubmitted(ctx, m, b)
	}
	now := e.now().Truncate(time.Millisecond)
	attempt := b.Attempt

	if b.Status == state.BatchStaged && b.SASExpiry.Before(now.Add(e.cfg.MinSASValidity)) {
		log.Info("SAS below the minimum validity for a job; re-provisioning", "sasExpiry", b.SASExpiry)
		return e.restage(ctx, b, "SAS expires too soon to submit")
	}

	if b.Status == state.BatchSubmitting && now.Before(b.SubmitStarted.Add(e.cfg.SubmitLease)) {
		// Another delivery holds the intent; look again when its lease ends.
		return e.retryAfterLease(ctx, b)
	}
	if b.Status == state.BatchSubmitting && attempt < e.cfg.MaxAttempts {
		return e.failAttempt(ctx, m, b, "its submit was interrupted (the intent expired without a recorded job id); a job it may have created imports only that attempt's package")
	}
	if b.Status == state.BatchStaged {
		if waiting, err := e.awaitJobSlot(ctx, m, b, now); err != nil || waiting {
			return err
		}
	}
	takeover := b.Status == state.BatchSubmitting
	b, wrote, err := e.takeIntent(ctx, b, now)
	if err != nil {
		return fmt.Errorf("submit %s/%s: intent: %w", m.ID, batchID, err)
	}
	if !wrote {
		if b.Status == state.BatchRunning {
			return e.resendFirstPoll(ctx, b)
		}
		if b.Status == state.BatchSubmitting && b.Attempt == attempt {
			return e.retryAfterLease(ctx, b)
		}
		return nil
	}
	if takeover {
		log.Warn("submit intent expired without a recorded job on the last attempt; submitting again over the same package (a job created by the lost submit would import the same ids)")
	}

	jobID, err := e.Graph.CreateJob(ctx, m.ContainerID, b.Containers)
	if err != nil {
		return e.submitFailed(ctx, m, b, err)
	}

	b2, err := e.recordJob(ctx, b, jobID)
	if err != nil || b2 == nil {
		// Undo: a job nobody tracks must not run.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		derr := e.Graph.DeleteJob(dctx, m.ContainerID, jobID)
		cancel()
		log.Warn("job created but not recorded; deleted it", "job", jobID, "deleteError", errString(derr))
		if err != nil {
			return fmt.Errorf("submit %s/%s: record job: %w", m.ID, batchID, err)
		}
		return nil
	}
	log.Info("migration job created", "job", jobID)
	return e.send(ctx, queue.Message{Step: queue.StepPoll, MigrationID: m.ID, BatchID: b2.ID, Attempt: b2.Attempt, Seq: b2.PollSeq, NotBefore: b2.NextPollAt})
}

// awaitJobSlot looks again later, and reports waiting, when the target
// container has its maximum of jobs in flight.
func (e *Engine) awaitJobSlot(ctx context.Context, m *state.Migration, b *state.Batch, now time.Time) (waiting bool, err error) {
	full, err := e.containerFull(ctx, m.ContainerID)
	if err != nil {
		return false, fmt.Errorf("submit %s/%s: %w", m.ID, b.ID, err)
	}
	if !full {
		return false, nil
	}
	at := now.Add(e.cfg.JobSlotWait)
	e.batchLog(b).Info("container has its maximum of jobs in flight; waiting for a slot", "max", e.cfg.MaxJobsPerContainer, "at", at)
	return true, e.send(ctx, queue.Message{Step: queue.StepSubmit, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt, NotBefore: at, Nonce: nonce("w", at)})
}

// takeIntent records the submit intent (the lease on creating this
// attempt's job): from staged, or from an intent whose lease has ended.
func (e *Engine) takeIntent(ctx context.Context, b *state.Batch, now time.Time) (*state.Batch, bool, error) {
	attempt := b.Attempt
	return e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Attempt != attempt || x.JobID != "" {
			return false, nil
		}
		switch x.Status {
		case state.BatchStaged:
		case state.BatchSubmitting:
			if now.Before(x.SubmitStarted.Add(e.cfg.SubmitLease)) {
				return false, nil
			}
		default:
			return false, nil
		}
		x.Status = state.BatchSubmitting
		x.SubmitStarted = now
		return true, nil
	})
}

// retryAfterLease looks at a submitting batch again when its intent's lease
// ends.
func (e *Engine) retryAfterLease(ctx context.Context, b *state.Batch) error {
	at := b.SubmitStarted.Add(e.cfg.SubmitLease)
	return e.send(ctx, queue.Message{Step: queue.StepSubmit, MigrationID: b.MigrationID, BatchID: b.ID, Attempt: b.Attempt, NotBefore: at, Nonce: nonce("l", at)})
}

// recordJob writes the job id if the intent in b is still ours. It returns
// the stored batch when the job is recorded, nil when it cannot be (the
// intent was taken over or the batch cancelled), or an error when the
// store could not say. A write error is checked by reading back: the write
// may have landed.
func (e *Engine) recordJob(ctx context.Context, b *state.Batch, jobID string) (*state.Batch, error) {
	intent, attempt := b.SubmitStarted, b.Attempt
	mutate := func(x *state.Batch) (bool, error) {
		if x.Status != state.BatchSubmitting || x.Attempt != attempt || x.JobID != "" || !x.SubmitStarted.Equal(intent) {
			return false, nil
		}
		x.Status = state.BatchRunning
		x.JobID = jobID
		x.SubmittedAt = e.now()
		x.JobStarted = false
		x.EventCursor = ""
		x.PollSeq = 0
		x.NextPollAt = e.now().Add(e.cfg.PollInterval)
		return true, nil
	}
	var lastErr error
	for range 2 {
		b2, wrote, err := e.updateBatch(ctx, b, mutate)
		if err == nil {
			if wrote {
				return b2, nil
			}
			if b2.JobID == jobID {
				return b2, nil
			}
			return nil, nil
		}
		lastErr = err
		cur, gerr := e.Store.GetBatch(ctx, b.MigrationID, b.ID)
		if gerr != nil {
			return nil, fmt.Errorf("%w (and reading back: %w)", err, gerr)
		}
		if cur.JobID == jobID {
			return cur, nil
		}
		b = cur
	}
	return nil, lastErr
}

// submitFailed decides what a failed create call means. A refusal (4xx)
// created nothing, so the intent is released; an ambiguous failure (5xx,
// transport) keeps the intent and re-checks after the lease.
func (e *Engine) submitFailed(ctx context.Context, m *state.Migration, b *state.Batch, err error) error {
	log := e.batchLog(b)
	if at, ok := e.throttled(err); ok {
		log.Info("job creation throttled; rescheduled", "at", at)
		if rerr := e.releaseIntent(ctx, b); rerr != nil {
			return rerr
		}
		return e.send(ctx, queue.Message{Step: queue.StepSubmit, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt, NotBefore: at, Nonce: nonce("t", at)})
	}
	if errors.Is(err, graph.ErrReprovisionNeeded) {
		return e.failAttempt(ctx, m, b, "containers rejected (invalidAzureResource)")
	}
	if errors.Is(err, graph.ErrAccessDenied) {
		return e.denied(ctx, m, b, err)
	}
	var ge *graph.Error
	if errors.As(err, &ge) && ge.StatusCode >= 400 && ge.StatusCode < 500 && ge.StatusCode != http.StatusRequestTimeout {
		return e.failAttempt(ctx, m, b, fmt.Sprintf("job creation refused: HTTP %d %s", ge.StatusCode, ge.Code))
	}
	at := b.SubmitStarted.Add(e.cfg.SubmitLease)
	log.Warn("job creation failed ambiguously; will re-check after the lease", "error", err, "at", at)
	if serr := e.send(ctx, queue.Message{Step: queue.StepSubmit, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt, NotBefore: at, Nonce: nonce("l", at)}); serr != nil {
		return fmt.Errorf("submit %s/%s: %w (and %w)", m.ID, b.ID, err, serr)
	}
	return nil
}

func (e *Engine) releaseIntent(ctx context.Context, b *state.Batch) error {
	intent, attempt := b.SubmitStarted, b.Attempt
	_, _, err := e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Status != state.BatchSubmitting || x.Attempt != attempt || x.JobID != "" || !x.SubmitStarted.Equal(intent) {
			return false, nil
		}
		x.Status = state.BatchStaged
		x.SubmitStarted = time.Time{}
		return true, nil
	})
	return err
}

// resendFirstPoll re-sends the first poll of a running batch whose submit
// was redelivered (the poll message may have been lost in a crash). Later
// polls belong to the poll chain and the drain.
func (e *Engine) resendFirstPoll(ctx context.Context, b *state.Batch) error {
	if b.PollSeq != 0 {
		return nil
	}
	return e.send(ctx, queue.Message{Step: queue.StepPoll, MigrationID: b.MigrationID, BatchID: b.ID, Attempt: b.Attempt, Seq: b.PollSeq, NotBefore: b.NextPollAt})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// denied fails a batch for good when Graph refuses the app (401/403): no
// new attempt or restage can succeed until someone grants the permission,
// and the reason says which one.
func (e *Engine) denied(ctx context.Context, m *state.Migration, b *state.Batch, err error) error {
	reason := "access denied by Microsoft Graph: " + err.Error()
	if !strings.Contains(reason, "FileStorageContainer.Selected") {
		reason += "; the app registration needs the FileStorageContainer.Selected application permission (admin consent) and its container type registered for it"
	}
	return e.FailBatch(ctx, m.ID, b.ID, reason)
}

// containerFull reports whether the container has MaxJobsPerContainer jobs
// being created or running.
func (e *Engine) containerFull(ctx context.Context, containerID string) (bool, error) {
	if e.cfg.MaxJobsPerContainer < 0 {
		return false, nil
	}
	n, err := e.Store.JobsInFlight(ctx, containerID, e.cfg.MaxJobsPerContainer)
	if err != nil {
		return false, fmt.Errorf("count jobs in flight: %w", err)
	}
	return n >= e.cfg.MaxJobsPerContainer, nil
}
