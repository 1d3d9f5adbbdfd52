package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

// provision handles the provision queue, which carries two kinds of
// message: the engine's own provision step messages (plan one source page)
// and users' migration requests (the JSON of shared/request, dropped by
// scripts or other systems), which start a migration.
func (a *App) provision(ctx context.Context, body []byte, meta MessageMeta) error {
	if queue.IsStepMessage(body) {
		return a.runStep(ctx, queue.StepProvision, body)
	}
	req, err := request.DecodeBytes(body)
	if err != nil {
		// Field errors name fields and never quote secrets.
		return a.reject(ctx, body, meta, err)
	}
	if req.ID == "" {
		if meta.MessageID == "" {
			return pipeline.MarkPermanent(errors.New("migration request has neither an id nor a Service Bus MessageId to derive one from"))
		}
		// A redelivered or duplicated message (same MessageId) starts the
		// same migration, once.
		req.ID = request.IDForMessage(meta.MessageID)
	}
	created, err := a.StartMigration(ctx, req.ID, req)
	switch {
	case errors.Is(err, pipeline.ErrIDConflict):
		// The id names a migration that did start: leave it alone.
		return pipeline.MarkPermanent(fmt.Errorf("migration request %s: %w", req.ID, err))
	case request.IsInvalid(err): // e.g. a target container Graph does not know
		return a.reject(ctx, body, meta, err)
	case err != nil:
		return err
	}
	a.log().Info("migration request received from the queue", "migration", req.ID, "created", created, "request", req)
	return nil
}

// StartMigration starts a validated request under id: the one intake that
// the queue, the HTTP API and the schedules share (it satisfies
// schedule.Starter).
func (a *App) StartMigration(ctx context.Context, id string, req request.Request) (created bool, err error) {
	req.ID = id
	if err := a.Policy.Check(req); err != nil {
		// A request error: the queue records it as a rejection.
		return false, fmt.Errorf("migration %s refused by this deployment's policy: %w", id, err)
	}
	created, err = a.Engine.Start(ctx, &state.Migration{ID: id, ContainerID: req.Target.ContainerID, Request: req})
	if err != nil {
		return false, fmt.Errorf("start migration %s: %w", id, err)
	}
	return created, nil
}

// reject records why a queued request cannot start, under the id it asked
// for (when that is a usable id) or the one derived from its MessageId.
func (a *App) reject(ctx context.Context, body []byte, meta MessageMeta, cause error) error {
	var probe struct {
		ID     string `json:"id"`
		Target struct {
			ContainerID string `json:"containerId"`
		} `json:"target"`
	}
	_ = json.Unmarshal(body, &probe)
	id := probe.ID
	if !request.ValidID(id) {
		if meta.MessageID == "" {
			return pipeline.MarkPermanent(fmt.Errorf("rejected migration request: %w", cause))
		}
		id = request.IDForMessage(meta.MessageID)
	}
	if err := a.Engine.Reject(ctx, id, probe.Target.ContainerID, "request rejected: "+cause.Error()); err != nil {
		return fmt.Errorf("record rejected request %s: %w", id, err) // transient: retried
	}
	return pipeline.MarkPermanent(fmt.Errorf("rejected migration request %s (message %s): %w", id, meta.MessageID, cause))
}
