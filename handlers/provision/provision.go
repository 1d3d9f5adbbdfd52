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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"

	"github.com/spemigrate/spemigrate/handlers"
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

// Rejecter records a queued request that cannot start as a failed migration
// with the reason: a queue has no reply, so the API is where the sender
// learns why.
type Rejecter interface {
	RejectRequest(ctx context.Context, id, containerID, reason string) error
}

// Handler handles provision-queue messages.
type Handler struct {
	Planner  Planner
	Starter  Starter
	Rejecter Rejecter // nil: rejected requests are only logged
	Log      *slog.Logger
	// IsConflict recognises the Starter's "id used for another request"
	// error, which redelivery cannot fix.
	IsConflict func(error) bool
}

// Function is the "provision" function (trigger binding "msg").
// Its senders are outside the app, so a body that is not even a JSON object
// reaches Handle too and is recorded as a rejected request.
func Function(h *Handler) handlers.Function {
	return handlers.ServiceBusAnyBody(h.Log, "msg", h.Handle)
}

// Handle handles one message.
func (h *Handler) Handle(ctx context.Context, body []byte, meta handlers.MessageMeta) error {
	if !queue.IsStepMessage(body) {
		return h.start(ctx, body, meta)
	}
	return handlers.StepHandler(queue.StepProvision, func(ctx context.Context, m queue.Message) error {
		return h.Planner.Plan(ctx, m.MigrationID, m.Page)
	})(ctx, body, meta)
}

// start starts the migration a request message asks for. Without a client
// id, the id derives from the Service Bus MessageId, so a redelivered or
// duplicated message starts the same migration, once.
func (h *Handler) start(ctx context.Context, body []byte, meta handlers.MessageMeta) error {
	req, err := request.DecodeBytes(body)
	if err != nil {
		// Field errors name fields and never quote secrets.
		return h.reject(ctx, body, meta, err)
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
			// The id names a migration that did start: leave it alone.
			return handlers.Permanent(fmt.Errorf("migration request %s: %w", req.ID, err))
		}
		if request.IsInvalid(err) { // e.g. a target container Graph does not know
			return h.reject(ctx, body, meta, err)
		}
		return fmt.Errorf("start migration %s: %w", req.ID, err)
	}
	if h.Log != nil {
		h.Log.Info("migration request received from the queue", "migration", req.ID, "created", created, "request", req)
	}
	return nil
}

// reject records why a queued request cannot start, under the id it asked
// for (when that is a usable id) or the one derived from its MessageId.
func (h *Handler) reject(ctx context.Context, body []byte, meta handlers.MessageMeta, cause error) error {
	var probe struct {
		ID     string `json:"id"`
		Target struct {
			ContainerID string `json:"containerId"`
		} `json:"target"`
	}
	_ = json.Unmarshal(body, &probe)
	id := probe.ID
	if !idPattern.MatchString(id) {
		if meta.MessageID == "" {
			return handlers.Permanent(fmt.Errorf("rejected migration request: %w", cause))
		}
		id = IDForMessage(meta.MessageID)
	}
	reason := "request rejected: " + cause.Error()
	if h.Rejecter != nil {
		if err := h.Rejecter.RejectRequest(ctx, id, probe.Target.ContainerID, reason); err != nil {
			return fmt.Errorf("record rejected request %s: %w", id, err) // transient: retried
		}
	}
	return handlers.Permanent(fmt.Errorf("rejected migration request %s (message %s): %w", id, meta.MessageID, cause))
}

// idPattern is the request format's id rule.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// IDForMessage is the migration id for a request message without an id.
func IDForMessage(messageID string) string {
	sum := sha256.Sum256([]byte(messageID))
	return "q-" + hex.EncodeToString(sum[:13])
}
