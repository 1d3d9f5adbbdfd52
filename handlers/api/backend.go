package api

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Engine is what the API asks of the engine; *pipeline.Engine implements it.
type Engine interface {
	Start(ctx context.Context, m *state.Migration) (created bool, err error)
	Cancel(ctx context.Context, migrationID string) error
}

// Store is what the API reads; *state.Store implements it.
type Store interface {
	GetMigration(ctx context.Context, id string) (*state.Migration, error)
	ListBatches(ctx context.Context, migrationID string) ([]*state.Batch, error)
	ListMigrations(ctx context.Context, pageToken string, n int) ([]*state.Migration, string, error)
	ListResults(ctx context.Context, migrationID, pageToken string, n int) ([]state.ItemResult, string, error)
}

// EngineBackend is the [Backend] over the engine and the state store: every
// change goes through the engine, and every read shows the stored entities
// through one view.
type EngineBackend struct {
	Engine Engine
	Store  Store
}

var _ Backend = (*EngineBackend)(nil)

// Start implements [Backend].
func (s *EngineBackend) Start(ctx context.Context, id string, req request.Request) (Migration, bool, error) {
	req.ID = id
	created, err := s.Engine.Start(ctx, &state.Migration{ID: id, ContainerID: req.Target.ContainerID, Request: req})
	if errors.Is(err, pipeline.ErrIDConflict) {
		return Migration{}, false, fmt.Errorf("migration %s: %w", id, ErrIDConflict)
	}
	if err != nil {
		return Migration{}, false, err
	}
	m, err := s.Store.GetMigration(ctx, id)
	if err != nil {
		return Migration{}, false, fmt.Errorf("read migration %s after start: %w", id, err)
	}
	return view(m, nil), created, nil
}

// Get implements [Backend].
func (s *EngineBackend) Get(ctx context.Context, id string) (Migration, error) {
	m, err := s.Store.GetMigration(ctx, id)
	if err != nil {
		return Migration{}, notFound(err)
	}
	bs, err := s.Store.ListBatches(ctx, id)
	if err != nil {
		return Migration{}, fmt.Errorf("list batches of %s: %w", id, err)
	}
	return view(m, bs), nil
}

// List implements [Backend]. Migrations come in id order from the store
// (Table Storage cannot sort by time); each page is shown newest first.
func (s *EngineBackend) List(ctx context.Context, pageToken string, limit int) ([]Migration, string, error) {
	ms, next, err := s.Store.ListMigrations(ctx, pageToken, limit)
	if err != nil {
		return nil, "", fmt.Errorf("list migrations: %w", err)
	}
	out := make([]Migration, 0, len(ms))
	for _, m := range ms {
		out = append(out, view(m, nil))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, next, nil
}

// Items implements [Backend].
func (s *EngineBackend) Items(ctx context.Context, id, pageToken string, limit int) ([]Item, string, error) {
	m, err := s.Store.GetMigration(ctx, id)
	if err != nil {
		return nil, "", notFound(err)
	}
	rs, next, err := s.Store.ListResults(ctx, id, pageToken, limit)
	if err != nil {
		return nil, "", fmt.Errorf("list results of %s: %w", id, err)
	}
	out := make([]Item, 0, len(rs))
	for _, r := range rs {
		out = append(out, itemView(r, m.Verification))
	}
	return out, next, nil
}

// itemView is the one way a result row is shown (items, report.csv,
// report.jsonl): its verification as of the migration's last verify run.
func itemView(r state.ItemResult, last state.VerificationSummary) Item {
	it := Item{SourcePath: r.SourcePath, VersionID: r.VersionID, TargetPath: r.TargetPath,
		BatchID: r.BatchID, Size: r.Size, Outcome: string(r.Outcome), Reason: r.Reason,
		SourceETag: r.SourceETag, ManifestID: r.ManifestID, JobID: r.JobID, Attempt: r.Attempt, ResultCode: r.ResultCode,
		AuthorOutcome: string(r.AuthorOutcome), AuthorLogin: r.AuthorLogin, AuthorFallback: r.AuthorFallback,
		Extension: extension(r.SourcePath, r.TargetPath)}
	if it.AuthorOutcome == "" && r.Outcome != state.OutcomeImported && r.Outcome != state.OutcomeRenamed {
		// Rows the import never decided; an imported row from before
		// author outcomes were recorded stays empty (unknown).
		it.AuthorOutcome = string(state.AuthorNotApplicable)
	}
	v := state.VerificationOf(r, last)
	it.Verification, it.VerificationReason, it.VerifiedAt = v.Status, v.Reason, v.At
	it.TargetItemID, it.TargetListItemID = v.TargetItemID, v.TargetListItemID
	return it
}

// extension is a file's last extension, lower-cased, as the readiness
// scan counts them (".bashrc" has none).
func extension(sourcePath, targetPath string) string {
	p := targetPath
	if p == "" {
		p = sourcePath
	}
	base := path.Base(p)
	if e := path.Ext(base); e != base {
		return strings.ToLower(e)
	}
	return ""
}

// Cancel implements [Backend].
func (s *EngineBackend) Cancel(ctx context.Context, id string) (Migration, error) {
	if err := s.Engine.Cancel(ctx, id); err != nil {
		return Migration{}, notFound(err)
	}
	return s.Get(ctx, id)
}

func notFound(err error) error {
	if errors.Is(err, state.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// view is the one way a stored migration is shown, in a list or alone.
func view(m *state.Migration, bs []*state.Batch) Migration {
	c := m.Counters
	v := Migration{
		ID: m.ID, Status: m.Phase(), SummaryCode: string(m.SummaryCode()), CancelRequested: m.CancelRequested, Reason: m.Reason,
		Created: m.Created, Updated: m.Updated,
		Counters: Counters{
			Entries: c.Entries, Items: c.Items, Skipped: c.Skipped, Unchanged: c.Unchanged, Renamed: c.Renamed,
			BytesPlanned: c.BytesPlanned, PlanDone: m.PlanDone,
			Batches: c.Batches, BatchesDone: c.BatchesDone, BatchesFailed: c.BatchesFailed,
			BatchesCancelled: c.BatchesCancelled, BatchesWithErrors: c.BatchesWithErrors, FilesMigrated: c.FilesMigrated, FilesFailed: c.FilesFailed,
			BytesMigrated: c.BytesMigrated, Errors: c.Errors, Warnings: c.Warnings,
		},
	}
	if vs := m.Verification; !vs.At.IsZero() {
		v.Verified = &VerifiedSummary{At: vs.At, Passed: vs.Passed, Failed: vs.Failed, Missing: vs.Missing, NotCompared: vs.NotCompared}
	}
	if m.Request.V != 0 {
		red := m.Request.Redacted()
		v.Request = &red
	}
	for _, b := range bs {
		vb := Batch{
			ID: b.ID, Status: string(b.Status), Attempt: b.Attempt, Items: b.Items, Bytes: b.Bytes, JobID: b.JobID,
			FilesMigrated: b.FilesMigrated, FilesFailed: b.FilesFailed, BytesMigrated: b.BytesMigrated,
			Reason: b.Reason, Updated: b.Updated,
			FilesProcessed: b.Progress.FilesProcessed, BytesProcessed: b.Progress.BytesProcessed,
		}
		if p := b.Postponed; p != (state.Postponement{}) {
			vb.Postponed = &Postponed{Reason: p.Reason, NextPickup: p.NextPickup, JobsInQueue: p.JobsInQueue}
		}
		v.Batches = append(v.Batches, vb)
	}
	return v
}
