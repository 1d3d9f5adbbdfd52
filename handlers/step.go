package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
)

// StepHandler is the MessageHandler of one pipeline step's queue: it decodes
// the step message and runs the step. A body that is not a message of this
// step, or one naming a migration or batch the store does not know, is
// permanent (redelivery cannot fix it); any other failure is transient.
func StepHandler(step queue.Step, run func(ctx context.Context, m queue.Message) error) MessageHandler {
	return func(ctx context.Context, body []byte, _ MessageMeta) error {
		msg, err := queue.Decode(body)
		if err != nil {
			return Permanent(fmt.Errorf("bad %s message: %w", step, err))
		}
		if msg.Step != step {
			return Permanent(fmt.Errorf("a %s message on the %s queue (migration %s)", msg.Step, step, msg.MigrationID))
		}
		if err := run(ctx, msg); err != nil {
			err = fmt.Errorf("%s %s %s: %w", step, msg.MigrationID, stepSubject(msg), err)
			if errors.Is(err, pipeline.ErrNotFound) {
				return Permanent(fmt.Errorf("unknown migration or batch: %w", err))
			}
			return err
		}
		return nil
	}
}

func stepSubject(m queue.Message) string {
	if m.BatchID != "" {
		return "batch " + m.BatchID
	}
	return fmt.Sprintf("page %d", m.Page)
}
