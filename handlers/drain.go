package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

// drain is the timer that is the pipeline's safety net: it re-drives what
// the message flow lost (overdue polls, stuck steps; pipeline.Engine.Drain)
// and reads the queues' dead-letter subqueues, so a message Service Bus gave
// up on is not forgotten: what it was working on is failed with the reason,
// visible in the API and the report. Both halves run even if one fails.
func (a *App) drain(ctx context.Context) error {
	var errs []error
	rep, err := a.Engine.Drain(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	if rep.Redriven > 0 || rep.Settled > 0 {
		a.log().Info("drain re-drove in-flight work", "examined", rep.Examined, "redriven", rep.Redriven, "settled", rep.Settled)
	}
	if a.DeadLetters != nil {
		errs = append(errs, a.deadLetters(ctx))
	}
	return errors.Join(errs...)
}

func (a *App) deadLetters(ctx context.Context) error {
	queues := a.DeadLetterQueues
	if len(queues) == 0 {
		for _, s := range queue.Steps {
			name, _ := queue.DefaultQueues().For(s)
			queues = append(queues, name)
		}
	}
	max := a.MaxDeadLetters
	if max <= 0 {
		max = 100
	}
	var errs []error
	for _, q := range queues {
		dls, err := a.DeadLetters.Receive(ctx, q, max)
		if err != nil {
			errs = append(errs, fmt.Errorf("read dead letters of %s: %w", q, err))
			continue
		}
		for _, dl := range dls {
			if err := a.recordDeadLetter(ctx, dl); err != nil {
				// Left in the dead-letter queue: the next run tries again.
				errs = append(errs, fmt.Errorf("dead letter %s on %s: %w", dl.MessageID, q, err))
				continue
			}
			if err := a.DeadLetters.Complete(ctx, dl); err != nil {
				errs = append(errs, fmt.Errorf("complete dead letter %s on %s: %w", dl.MessageID, q, err))
			}
		}
	}
	return errors.Join(errs...)
}

// recordDeadLetter fails what the dead letter was working on: its batch,
// its migration's planning, or (a request that never started) a rejected
// migration under the id the request would have had.
func (a *App) recordDeadLetter(ctx context.Context, dl queue.DeadLetter) error {
	log := a.log().With("queue", dl.Queue, "messageId", dl.MessageID)
	reason := dl.FailureReason()
	var err error
	var what string
	if queue.IsStepMessage(dl.Body) {
		msg, derr := queue.Decode(dl.Body)
		if derr != nil {
			log.Warn("dead letter is not a valid step message; dropped", "err", derr)
			return nil
		}
		if msg.Step == queue.StepProvision {
			what = "migration " + msg.MigrationID
			err = a.Engine.FailMigration(ctx, msg.MigrationID, reason)
		} else {
			what = "batch " + msg.MigrationID + "/" + msg.BatchID
			err = a.Engine.FailBatch(ctx, msg.MigrationID, msg.BatchID, reason)
		}
	} else {
		req, derr := request.DecodeBytes(dl.Body)
		if derr != nil {
			log.Warn("dead letter is not a valid migration request; dropped", "err", derr)
			return nil
		}
		id := req.ID
		if id == "" {
			id = request.IDForMessage(dl.MessageID)
		}
		what = "migration " + id
		err = a.Engine.FailMigration(ctx, id, reason)
		if errors.Is(err, state.ErrNotFound) {
			err = a.Engine.Reject(ctx, id, req.Target.ContainerID, reason)
		}
	}
	if errors.Is(err, state.ErrNotFound) {
		log.Warn("dead letter names nothing known; dropped", "target", what, "reason", reason)
		return nil
	}
	if err != nil {
		return err
	}
	log.Warn("dead-lettered message recorded as a failure", "target", what, "reason", reason)
	return nil
}
