// Package poll is the "poll" function: a Service Bus trigger on the poll
// queue that runs the poll step for one batch (read its job's new progress
// events, update counters and per-item results, and schedule the next poll
// until the job completes). Stale polls (an old sequence) are dropped by the
// engine.
package poll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
)

// Poller runs the poll step; *pipeline.Engine implements it.
type Poller interface {
	Poll(ctx context.Context, migrationID, batchID string, attempt, seq int) error
}

// Function is the "poll" function (trigger binding "msg").
func Function(log *slog.Logger, p Poller) handlers.Function {
	return handlers.ServiceBus(log, "msg", func(ctx context.Context, body []byte, _ handlers.MessageMeta) error {
		msg, err := queue.Decode(body)
		if err != nil {
			return handlers.Permanent(fmt.Errorf("bad poll message: %w", err))
		}
		if msg.Step != queue.StepPoll {
			return handlers.Permanent(fmt.Errorf("a %s message on the poll queue (migration %s)", msg.Step, msg.MigrationID))
		}
		if err := p.Poll(ctx, msg.MigrationID, msg.BatchID, msg.Attempt, msg.Seq); err != nil {
			if errors.Is(err, pipeline.ErrNotFound) {
				return handlers.Permanent(fmt.Errorf("poll %s/%s: unknown migration or batch: %w", msg.MigrationID, msg.BatchID, err))
			}
			return fmt.Errorf("poll %s/%s: %w", msg.MigrationID, msg.BatchID, err)
		}
		return nil
	})
}
