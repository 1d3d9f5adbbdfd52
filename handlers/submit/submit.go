// Package submit is the "submit" function: a Service Bus trigger on the
// submit queue that runs the submit step for one batch (create its Graph
// migration job, at most once per attempt). The engine sends the first poll.
package submit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
)

// Submitter runs the submit step; *pipeline.Engine implements it.
type Submitter interface {
	Submit(ctx context.Context, migrationID, batchID string) error
}

// Function is the "submit" function (trigger binding "msg").
func Function(log *slog.Logger, s Submitter) handlers.Function {
	return handlers.ServiceBus(log, "msg", func(ctx context.Context, body []byte, _ handlers.MessageMeta) error {
		msg, err := queue.Decode(body)
		if err != nil {
			return handlers.Permanent(fmt.Errorf("bad submit message: %w", err))
		}
		if msg.Step != queue.StepSubmit {
			return handlers.Permanent(fmt.Errorf("a %s message on the submit queue (migration %s)", msg.Step, msg.MigrationID))
		}
		if err := s.Submit(ctx, msg.MigrationID, msg.BatchID); err != nil {
			if errors.Is(err, pipeline.ErrNotFound) {
				return handlers.Permanent(fmt.Errorf("submit %s/%s: unknown migration or batch: %w", msg.MigrationID, msg.BatchID, err))
			}
			return fmt.Errorf("submit %s/%s: %w", msg.MigrationID, msg.BatchID, err)
		}
		return nil
	})
}
