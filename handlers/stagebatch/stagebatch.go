// Package stagebatch is the "stagebatch" function: a Service Bus trigger on
// the stage-batch queue that runs the stage step for one batch (provision
// its migration containers when needed, encrypt and upload its content and
// manifests). The engine sends the submit message when it is done.
package stagebatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
)

// Stager runs the stage step; *pipeline.Engine implements it.
type Stager interface {
	Stage(ctx context.Context, migrationID, batchID string) error
}

// Function is the "stagebatch" function (trigger binding "msg").
func Function(log *slog.Logger, s Stager) handlers.Function {
	return handlers.ServiceBus(log, "msg", func(ctx context.Context, body []byte, _ handlers.MessageMeta) error {
		msg, err := queue.Decode(body)
		if err != nil {
			return handlers.Permanent(fmt.Errorf("bad stage-batch message: %w", err))
		}
		if msg.Step != queue.StepStageBatch {
			return handlers.Permanent(fmt.Errorf("a %s message on the stage-batch queue (migration %s)", msg.Step, msg.MigrationID))
		}
		if err := s.Stage(ctx, msg.MigrationID, msg.BatchID); err != nil {
			if errors.Is(err, pipeline.ErrNotFound) {
				return handlers.Permanent(fmt.Errorf("stage %s/%s: unknown migration or batch: %w", msg.MigrationID, msg.BatchID, err))
			}
			return fmt.Errorf("stage %s/%s: %w", msg.MigrationID, msg.BatchID, err)
		}
		return nil
	})
}
