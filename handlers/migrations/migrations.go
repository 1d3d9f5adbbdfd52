// Package migrations connects the Functions app's entry points to the
// engine and its state: it is the HTTP API's backend (start, list, read,
// cancel, per-item results), the starter for scheduled and queued requests,
// and the place where dead-lettered work is recorded as failed.
package migrations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Engine is the part of *pipeline.Engine the service calls.
type Engine interface {
	Start(ctx context.Context, m *pipeline.Migration) error
	Cancel(ctx context.Context, migrationID string) error
	Settle(ctx context.Context, migrationID string) error
}

// Store is the engine's view of state; *pipeline.TableStore implements it.
type Store interface {
	CreateMigration(ctx context.Context, m *pipeline.Migration) error
	GetMigration(ctx context.Context, id string) (*pipeline.Migration, error)
	UpdateMigration(ctx context.Context, m *pipeline.Migration) error
	GetBatch(ctx context.Context, migrationID, batchID string) (*pipeline.Batch, error)
	UpdateBatch(ctx context.Context, b *pipeline.Batch) error
	ListBatches(ctx context.Context, migrationID string) ([]*pipeline.Batch, error)
}

// Lister pages through migrations and per-item results; *state.Store
// implements it.
type Lister interface {
	ListMigrations(ctx context.Context, pageToken string, n int) ([]state.Migration, string, error)
	ListResults(ctx context.Context, migrationID, pageToken string, n int) ([]state.Result, string, error)
}

// Targets resolves SPE containers; *pipeline.TargetCache implements it.
type Targets interface {
	Get(ctx context.Context, containerID string) (graph.Target, error)
}

// Service implements api.Backend, the schedules' and the provision queue's
// Starter, and the drain's Failer.
type Service struct {
	Engine Engine
	Store  Store
	Lister Lister
	// OpenRequest returns the request JSON of a listed migration (it is
	// sealed at rest); pipeline.OpenRequest with the state sealer.
	OpenRequest func(state.Migration) ([]byte, error)
	// Targets, when set, checks a new migration's target container before
	// it starts, so an unknown container is refused up front (a 4xx) rather
	// than failing the migration later. Nil skips the check.
	Targets Targets
}

var _ api.Backend = (*Service)(nil)

// maxRaces bounds re-reads after lost ETag races in Fail*.
const maxRaces = 8

// StartMigration starts a migration under id. It is idempotent: an id that
// exists with the same request starts nothing; with a different request it
// is an api.ErrIDConflict.
func (s *Service) StartMigration(ctx context.Context, id string, req request.Request) (bool, error) {
	_, created, err := s.start(ctx, id, req)
	return created, err
}

// Start implements api.Backend.
func (s *Service) Start(ctx context.Context, id string, req request.Request) (api.Migration, bool, error) {
	m, created, err := s.start(ctx, id, req)
	if err != nil {
		return api.Migration{}, false, err
	}
	return view(m, nil), created, nil
}

func (s *Service) start(ctx context.Context, id string, req request.Request) (*pipeline.Migration, bool, error) {
	req.ID = id
	existing, err := s.Store.GetMigration(ctx, id)
	switch {
	case err == nil:
		if err := sameRequest(existing, req); err != nil {
			return nil, false, err
		}
		return existing, false, nil
	case !errors.Is(err, pipeline.ErrNotFound):
		return nil, false, fmt.Errorf("look up migration %s: %w", id, err)
	}
	if err := s.checkTarget(ctx, req.Target.ContainerID); err != nil {
		return nil, false, err
	}
	body, err := jsonOf(req)
	if err != nil {
		return nil, false, err
	}
	m := &pipeline.Migration{ID: id, ContainerID: req.Target.ContainerID, Request: body}
	if err := s.Engine.Start(ctx, m); err != nil {
		return nil, false, fmt.Errorf("start migration %s: %w", id, err)
	}
	// A concurrent start of the same id with another request may have won.
	stored, err := s.Store.GetMigration(ctx, id)
	if err != nil {
		return nil, false, fmt.Errorf("read migration %s after start: %w", id, err)
	}
	if err := sameRequest(stored, req); err != nil {
		return nil, false, err
	}
	return stored, true, nil
}

// checkTarget refuses a container Graph does not know or will not let the
// app use, as an invalid request naming the field.
func (s *Service) checkTarget(ctx context.Context, containerID string) error {
	if s.Targets == nil {
		return nil
	}
	_, err := s.Targets.Get(ctx, containerID)
	var msg string
	switch {
	case err == nil:
		return nil
	case errors.Is(err, graph.ErrNotFound):
		msg = "no SharePoint Embedded container with this id; check the id (b!…) and that the container exists"
	case errors.Is(err, graph.ErrAccessDenied):
		msg = "the app may not use this container; grant its container type to the app registration"
	default:
		return fmt.Errorf("look up target container: %w", err)
	}
	return &request.Error{Fields: []request.FieldError{{Field: "target.containerId", Message: msg}}}
}

func sameRequest(m *pipeline.Migration, req request.Request) error {
	prev, err := request.DecodeBytes(m.Request)
	if err != nil || prev.Digest() != req.Digest() {
		return fmt.Errorf("migration %s: %w", m.ID, api.ErrIDConflict)
	}
	return nil
}

// IsConflict reports whether err says an id was used for another request.
func IsConflict(err error) bool { return errors.Is(err, api.ErrIDConflict) }

// Get implements api.Backend.
func (s *Service) Get(ctx context.Context, id string) (api.Migration, error) {
	m, err := s.Store.GetMigration(ctx, id)
	if err != nil {
		return api.Migration{}, notFound(err)
	}
	bs, err := s.Store.ListBatches(ctx, id)
	if err != nil {
		return api.Migration{}, fmt.Errorf("list batches of %s: %w", id, err)
	}
	return view(m, bs), nil
}

// List implements api.Backend. Migrations come in id order from the store
// (Table Storage cannot sort by time); each page is shown newest first.
func (s *Service) List(ctx context.Context, pageToken string, limit int) ([]api.Migration, string, error) {
	ms, next, err := s.Lister.ListMigrations(ctx, pageToken, limit)
	if err != nil {
		return nil, "", fmt.Errorf("list migrations: %w", err)
	}
	out := make([]api.Migration, 0, len(ms))
	for _, m := range ms {
		out = append(out, s.listView(m))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, next, nil
}

// Items implements api.Backend.
func (s *Service) Items(ctx context.Context, id, pageToken string, limit int) ([]api.Item, string, error) {
	if _, err := s.Store.GetMigration(ctx, id); err != nil {
		return nil, "", notFound(err)
	}
	rs, next, err := s.Lister.ListResults(ctx, id, pageToken, limit)
	if err != nil {
		return nil, "", fmt.Errorf("list results of %s: %w", id, err)
	}
	out := make([]api.Item, 0, len(rs))
	for _, r := range rs {
		out = append(out, api.Item{SourcePath: r.SourcePath, VersionID: r.VersionID, TargetPath: r.TargetPath,
			BatchID: r.BatchID, Size: r.Size, Outcome: outcome(r), Reason: r.Reason})
	}
	return out, next, nil
}

func outcome(r state.Result) string {
	switch r.Outcome {
	case state.OutcomeImported:
		if r.Renamed {
			return api.OutcomeRenamed
		}
		return api.OutcomeImported
	case state.OutcomeRenamed:
		return api.OutcomeRenamed
	case state.OutcomeSkipped:
		return api.OutcomeSkipped
	case state.OutcomeFailed:
		return api.OutcomeFailed
	case state.OutcomeCancelled:
		return api.OutcomeCancelled
	}
	return api.OutcomePending
}

// Cancel implements api.Backend.
func (s *Service) Cancel(ctx context.Context, id string) (api.Migration, error) {
	if err := s.Engine.Cancel(ctx, id); err != nil {
		return api.Migration{}, notFound(err)
	}
	return s.Get(ctx, id)
}

// FailBatch marks a batch failed with reason (unless it has ended) and
// settles its migration, so the failure shows in the API.
func (s *Service) FailBatch(ctx context.Context, migrationID, batchID, reason string) error {
	for range maxRaces {
		b, err := s.Store.GetBatch(ctx, migrationID, batchID)
		if err != nil {
			return err
		}
		if b.Status.Terminal() {
			break
		}
		b.Status, b.Reason = pipeline.BatchFailed, reason
		err = s.Store.UpdateBatch(ctx, b)
		if errors.Is(err, pipeline.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("fail batch %s/%s: %w", migrationID, batchID, err)
		}
		break
	}
	return s.Engine.Settle(ctx, migrationID)
}

// FailMigration marks a migration failed with reason, unless it has ended.
func (s *Service) FailMigration(ctx context.Context, migrationID, reason string) error {
	for range maxRaces {
		m, err := s.Store.GetMigration(ctx, migrationID)
		if err != nil {
			return err
		}
		if m.Status.Terminal() {
			return nil
		}
		m.Status, m.Reason = pipeline.MigrationFailed, reason
		err = s.Store.UpdateMigration(ctx, m)
		if errors.Is(err, pipeline.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("fail migration %s: %w", migrationID, err)
		}
		return nil
	}
	return fmt.Errorf("fail migration %s: %w", migrationID, pipeline.ErrConflict)
}

// RejectRequest records a request that arrived on the queue but cannot be
// started, as a failed migration with the reason, so whoever sent it can
// read why through the API (a queue has no reply). An id that exists is left
// alone: it names a migration that did start.
func (s *Service) RejectRequest(ctx context.Context, id, containerID, reason string) error {
	now := time.Now().UTC()
	m := &pipeline.Migration{ID: id, ContainerID: containerID, Status: pipeline.MigrationFailed, Reason: reason, Created: now, Updated: now}
	err := s.Store.CreateMigration(ctx, m)
	if errors.Is(err, pipeline.ErrExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("record rejected request %s: %w", id, err)
	}
	return nil
}

func notFound(err error) error {
	if errors.Is(err, pipeline.ErrNotFound) || errors.Is(err, state.ErrNotFound) {
		return fmt.Errorf("%w: %w", api.ErrNotFound, err)
	}
	return err
}

func view(m *pipeline.Migration, bs []*pipeline.Batch) api.Migration {
	v := api.Migration{
		ID: m.ID, Status: status(m.Status, m.CancelRequested), CancelRequested: m.CancelRequested, Reason: m.Reason,
		Created: m.Created, Updated: m.Updated,
		Counters: api.Counters{
			Entries: m.Counters.Entries, Items: m.Counters.Items, Skipped: m.Counters.Skipped, Unchanged: m.Counters.Unchanged, Renamed: m.Counters.Renamed,
			BytesPlanned: m.Counters.BytesPlanned, PlanDone: m.PlanDone,
			Batches: m.Counters.Batches, BatchesDone: m.Counters.BatchesDone, BatchesFailed: m.Counters.BatchesFailed,
			BatchesCancelled: m.Counters.BatchesCancelled, FilesMigrated: m.Counters.FilesMigrated, FilesFailed: m.Counters.FilesFailed,
			BytesMigrated: m.Counters.BytesMigrated, Errors: m.Counters.Errors, Warnings: m.Counters.Warnings,
		},
	}
	if r, err := request.DecodeBytes(m.Request); err == nil {
		red := r.Redacted()
		v.Request = &red
	}
	for _, b := range bs {
		v.Batches = append(v.Batches, api.Batch{
			ID: b.ID, Status: string(b.Status), Attempt: b.Attempt, Items: b.Items, Bytes: b.Bytes, JobID: b.JobID,
			FilesMigrated: b.FilesMigrated, FilesFailed: b.FilesFailed, BytesMigrated: b.BytesMigrated,
			Reason: b.Reason, Updated: b.Updated,
		})
	}
	return v
}

func status(s pipeline.MigrationStatus, cancelRequested bool) string {
	switch s {
	case pipeline.MigrationCompleted:
		return api.StatusCompleted
	case pipeline.MigrationCompletedWithErrors:
		return api.StatusCompletedWithErrors
	case pipeline.MigrationFailed:
		return api.StatusFailed
	case pipeline.MigrationCancelled:
		return api.StatusCancelled
	}
	if cancelRequested {
		return api.StatusCancelling
	}
	return api.StatusRunning
}

// listView maps a stored migration without reading its batches.
func (s *Service) listView(m state.Migration) api.Migration {
	v := api.Migration{
		ID: m.ID, CancelRequested: m.CancelRequested, Reason: m.Reason, Created: m.CreatedAt, Updated: m.UpdatedAt,
		Counters: api.Counters{
			Entries: m.Entries, Items: m.Items, Skipped: m.Skipped, Unchanged: m.Unchanged, Renamed: m.Renamed, BytesPlanned: m.Bytes, PlanDone: m.PlanComplete,
			Batches: m.Batches, BatchesDone: m.BatchesCompleted + m.BatchesFailed + m.BatchesCancelled, BatchesFailed: m.BatchesFailed,
			BatchesCancelled: m.BatchesCancelled, FilesMigrated: m.Imported, FilesFailed: m.Failed, BytesMigrated: m.BytesImported,
			Errors: m.Errors, Warnings: m.Warnings,
		},
	}
	switch m.State {
	case state.MigrationCompleted:
		v.Status = api.StatusCompleted
		if m.Failed > 0 || m.BatchesFailed > 0 {
			v.Status = api.StatusCompletedWithErrors
		}
	case state.MigrationFailed:
		v.Status = api.StatusFailed
	case state.MigrationCancelled:
		v.Status = api.StatusCancelled
	case state.MigrationCancelling:
		v.Status = api.StatusCancelling
	default:
		v.Status = api.StatusRunning
	}
	if s.OpenRequest != nil {
		if body, err := s.OpenRequest(m); err == nil {
			if r, err := request.DecodeBytes(body); err == nil {
				red := r.Redacted()
				v.Request = &red
			}
		}
	}
	return v
}

func jsonOf(req request.Request) ([]byte, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}
