// Package submit is the "submit" function: a Service Bus trigger on the
// submit queue that runs the submit step for one batch (create its Graph
// migration job, at most once per attempt). The engine sends the first poll.
package submit

import (
	"context"
	"log/slog"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/queue"
)

// Submitter runs the submit step; *pipeline.Engine implements it.
type Submitter interface {
	Submit(ctx context.Context, migrationID, batchID string) error
}

// Function is the "submit" function (trigger binding "msg").
func Function(log *slog.Logger, s Submitter) handlers.Function {
	return handlers.ServiceBus(log, "msg", handlers.StepHandler(queue.StepSubmit, func(ctx context.Context, m queue.Message) error {
		return s.Submit(ctx, m.MigrationID, m.BatchID)
	}))
}
