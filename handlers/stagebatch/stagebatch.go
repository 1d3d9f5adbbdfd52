// Package stagebatch is the "stagebatch" function: a Service Bus trigger on
// the stage-batch queue that runs the stage step for one batch (provision
// its migration containers when needed, encrypt and upload its content and
// manifests). The engine sends the submit message when it is done.
package stagebatch

import (
	"context"
	"log/slog"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/queue"
)

// Stager runs the stage step; *pipeline.Engine implements it.
type Stager interface {
	Stage(ctx context.Context, migrationID, batchID string) error
}

// Function is the "stagebatch" function (trigger binding "msg").
func Function(log *slog.Logger, s Stager) handlers.Function {
	return handlers.ServiceBus(log, "msg", handlers.StepHandler(queue.StepStageBatch, func(ctx context.Context, m queue.Message) error {
		return s.Stage(ctx, m.MigrationID, m.BatchID)
	}))
}
