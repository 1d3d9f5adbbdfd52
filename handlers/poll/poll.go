// Package poll is the "poll" function: a Service Bus trigger on the poll
// queue that runs the poll step for one batch (read its job's new progress
// events, update counters and per-item results, and schedule the next poll
// until the job completes). Stale polls (an old sequence) are dropped by the
// engine.
package poll

import (
	"context"
	"log/slog"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/queue"
)

// Poller runs the poll step; *pipeline.Engine implements it.
type Poller interface {
	Poll(ctx context.Context, migrationID, batchID string, attempt, seq int) error
}

// Function is the "poll" function (trigger binding "msg").
func Function(log *slog.Logger, p Poller) handlers.Function {
	return handlers.ServiceBus(log, "msg", handlers.StepHandler(queue.StepPoll, func(ctx context.Context, m queue.Message) error {
		return p.Poll(ctx, m.MigrationID, m.BatchID, m.Attempt, m.Seq)
	}))
}
