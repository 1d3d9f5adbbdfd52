// Package provision is the "provision" function: a Service Bus trigger on the
// provision queue. The queue carries two kinds of message: a user's migration
// request (the JSON of shared/request, dropped by scripts or other systems),
// which starts a migration, and the pipeline's own provision step messages,
// which plan one source page into batches.
package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
)

// Planner runs the plan step; *pipeline.Engine implements it.
type Planner interface {
	Plan(ctx context.Context, migrationID string, page int) error
}

// Starter starts a migration under id; an id that exists with the same
// request starts nothing; with a different request it fails with an error
// for which IsConflict is true.
type Starter interface {
	StartMigration(ctx context.Context, id string, req request.Request) (created bool, err error)
}

// Handler handles provision-queue messages.
type Handler struct {
	Planner Planner
	Starter Starter
	Log     *slog.Logger
	// IsConflict recognises the Starter's "id used for another request"
	// error, which redelivery cannot fix.
	IsConflict func(error) bool
}

// Function is the "provision" function (trigger binding "msg").
func Function(h *Handler) handlers.Function { return handlers.ServiceBus(h.Log, "msg", h.Handle) }

// Handle handles one message.
func (h *Handler) Handle(ctx context.Context, body []byte, meta handlers.MessageMeta) error {
	if !queue.IsStepMessage(body) {
		return h.start(ctx, body, meta)
	}
	msg, err := queue.Decode(body)
	if err != nil {
		return handlers.Permanent(fmt.Errorf("bad provision message: %w", err))
	}
	if msg.Step != queue.StepProvision {
		return handlers.Permanent(fmt.Errorf("a %s message on the provision queue (migration %s)", msg.Step, msg.MigrationID))
	}
	if err := h.Planner.Plan(ctx, msg.MigrationID, msg.Page); err != nil {
		if errors.Is(err, pipeline.ErrNotFound) {
			return handlers.Permanent(fmt.Errorf("plan page %d: unknown migration %s: %w", msg.Page, msg.MigrationID, err))
		}
		return fmt.Errorf("plan %s page %d: %w", msg.MigrationID, msg.Page, err)
	}
	return nil
}

// start starts the migration a request message asks for. Without a client
// id, the id derives from the Service Bus MessageId, so a redelivered or
// duplicated message starts the same migration, once.
func (h *Handler) start(ctx context.Context, body []byte, meta handlers.MessageMeta) error {
	req, err := request.DecodeBytes(body)
	if err != nil {
		// The request is logged by the adapter; its fields are named, its
		// secrets never quoted.
		return handlers.Permanent(fmt.Errorf("rejected migration request (message %s): %w", meta.MessageID, err))
	}
	if req.ID == "" {
		if meta.MessageID == "" {
			return handlers.Permanent(errors.New("migration request has neither an id nor a Service Bus MessageId to derive one from"))
		}
		req.ID = IDForMessage(meta.MessageID)
	}
	created, err := h.Starter.StartMigration(ctx, req.ID, req)
	if err != nil {
		if h.IsConflict != nil && h.IsConflict(err) {
			return handlers.Permanent(fmt.Errorf("migration request %s: %w", req.ID, err))
		}
		return fmt.Errorf("start migration %s: %w", req.ID, err)
	}
	if h.Log != nil {
		h.Log.Info("migration request received from the queue", "migration", req.ID, "created", created, "request", req)
	}
	return nil
}

// IDForMessage is the migration id for a request message without an id.
func IDForMessage(messageID string) string {
	sum := sha256.Sum256([]byte(messageID))
	return "q-" + hex.EncodeToString(sum[:13])
}
