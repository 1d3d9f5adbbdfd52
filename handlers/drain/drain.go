// Package drain is the "drain" function: the timer that is the pipeline's
// safety net. Each run re-drives what the message flow lost (overdue polls,
// stuck steps; see pipeline.Engine.Drain) and reads the queues' dead-letter
// subqueues, so a message Service Bus gave up on is not forgotten: its
// migration or batch is marked failed with the reason, visible in the API.
package drain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/handlers/provision"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
)

// Drainer re-drives in-flight work; *pipeline.Engine implements it.
type Drainer interface {
	Drain(ctx context.Context) (pipeline.DrainReport, error)
}

// DeadLetter is one message read from a dead-letter subqueue.
type DeadLetter struct {
	Queue         string
	Body          []byte
	MessageID     string
	DeliveryCount int
	Reason        string // DeadLetterReason, e.g. MaxDeliveryCountExceeded
	Description   string // DeadLetterErrorDescription
	// Handle is the implementation's receipt for Complete.
	Handle any
}

// DeadLetters reads and settles dead-lettered messages.
type DeadLetters interface {
	// Receive returns up to max dead-lettered messages of queue without
	// waiting when there are none.
	Receive(ctx context.Context, queue string, max int) ([]DeadLetter, error)
	// Complete removes a handled message from the dead-letter subqueue.
	Complete(ctx context.Context, dl DeadLetter) error
}

// Failer records a permanent failure where the user sees it.
type Failer interface {
	// FailBatch marks a batch failed with reason (unless it is terminal
	// already) and settles its migration.
	FailBatch(ctx context.Context, migrationID, batchID, reason string) error
	// FailMigration marks a migration failed with reason (unless it is
	// terminal already).
	FailMigration(ctx context.Context, migrationID, reason string) error
}

// Handler is the drain timer's work.
type Handler struct {
	Drainer     Drainer
	DeadLetters DeadLetters // nil: dead letters are not read
	Failer      Failer
	Log         *slog.Logger
	// Queues whose dead letters are read (default: every step queue).
	Queues []string
	// MaxPerQueue bounds the dead letters handled per queue and run
	// (default 100), so one run stays short.
	MaxPerQueue int
}

// Function is the "drain" function (trigger binding "tick").
func Function(h *Handler) handlers.Function {
	return handlers.Timer("tick", func(ctx context.Context, _ handlers.TimerInfo, now time.Time) error {
		return h.Run(ctx)
	})
}

// Run does one drain. Both halves run even if the other fails.
func (h *Handler) Run(ctx context.Context) error {
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	rep, err := h.Drainer.Drain(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	if rep.Redriven > 0 || rep.Settled > 0 {
		log.Info("drain re-drove in-flight work", "examined", rep.Examined, "redriven", rep.Redriven, "settled", rep.Settled)
	}
	if h.DeadLetters != nil {
		if err := h.deadLetters(ctx, log); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (h *Handler) deadLetters(ctx context.Context, log *slog.Logger) error {
	queues := h.Queues
	if len(queues) == 0 {
		for _, s := range queue.Steps {
			name, _ := queue.DefaultQueues().For(s)
			queues = append(queues, name)
		}
	}
	max := h.MaxPerQueue
	if max <= 0 {
		max = 100
	}
	var errs []error
	for _, q := range queues {
		dls, err := h.DeadLetters.Receive(ctx, q, max)
		if err != nil {
			errs = append(errs, fmt.Errorf("read dead letters of %s: %w", q, err))
			continue
		}
		for _, dl := range dls {
			if err := h.record(ctx, dl); err != nil {
				// Left in the dead-letter queue: the next run tries again.
				errs = append(errs, fmt.Errorf("dead letter %s on %s: %w", dl.MessageID, q, err))
				continue
			}
			if err := h.DeadLetters.Complete(ctx, dl); err != nil {
				errs = append(errs, fmt.Errorf("complete dead letter %s on %s: %w", dl.MessageID, q, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Reason is the failure reason recorded for a dead-lettered message.
func Reason(dl DeadLetter) string {
	// The delivery count is left out: reading the dead letter is itself a
	// delivery, so the count is one more than the attempts that failed; the
	// broker's description states those.
	r := fmt.Sprintf("message dead-lettered on queue %s", dl.Queue)
	switch {
	case dl.Reason != "" && dl.Description != "":
		r += ": " + dl.Reason + ": " + dl.Description
	case dl.Reason != "":
		r += ": " + dl.Reason
	}
	return r
}

// record marks what the dead letter was working on as failed. A dead letter
// that names nothing known is only logged: there is nothing to mark.
func (h *Handler) record(ctx context.Context, dl DeadLetter) error {
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reason := Reason(dl)
	var err error
	var what string
	switch {
	case queue.IsStepMessage(dl.Body):
		msg, derr := queue.Decode(dl.Body)
		if derr != nil {
			log.Warn("dead letter is not a valid step message; dropped", "queue", dl.Queue, "messageId", dl.MessageID, "err", derr)
			return nil
		}
		if msg.Step == queue.StepProvision {
			what = "migration " + msg.MigrationID
			err = h.Failer.FailMigration(ctx, msg.MigrationID, reason)
		} else {
			what = "batch " + msg.MigrationID + "/" + msg.BatchID
			err = h.Failer.FailBatch(ctx, msg.MigrationID, msg.BatchID, reason)
		}
	default:
		req, derr := request.DecodeBytes(dl.Body)
		if derr != nil {
			log.Warn("dead letter is not a valid migration request; dropped", "queue", dl.Queue, "messageId", dl.MessageID, "err", derr)
			return nil
		}
		id := req.ID
		if id == "" {
			id = provision.IDForMessage(dl.MessageID)
		}
		what = "migration " + id
		err = h.Failer.FailMigration(ctx, id, reason)
	}
	if errors.Is(err, pipeline.ErrNotFound) {
		log.Warn("dead letter names nothing known; dropped", "queue", dl.Queue, "messageId", dl.MessageID, "target", what, "reason", reason)
		return nil
	}
	if err != nil {
		return err
	}
	log.Warn("dead-lettered message recorded as a failure", "target", what, "reason", reason)
	return nil
}
