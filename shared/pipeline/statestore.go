package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/state"
)

// TableStore is the [Store] over shared/state (Azure Table Storage).
//
// Updates overlay the pipeline's fields on the stored entity (read, check
// the ETag, replace conditionally), so fields other packages keep on the
// same entities (ClientRequestID, NextIntID, …) survive the engine's writes.
//
// The migration request is stored sealed (it may carry a SAS or a
// connection string): state.Migration.Request holds
// Sealer.SealFor(json, RequestSealContext(id)); use [OpenRequest] to read it.
//
// The entity a write starts from is the one last read or written at the
// ETag the caller holds, remembered in memory: the write is conditional on
// that ETag, so it fails exactly when a fresh read would have shown a
// change, and the read before each write is saved.
type TableStore struct {
	st     *state.Store
	sealer *state.Sealer

	mu         sync.Mutex
	migrations map[string]state.Migration // by id, at its last known ETag
	batches    map[[2]string]state.Batch  // by migration id and batch id
}

// maxRemembered bounds the entities a TableStore remembers.
const maxRemembered = 4096

func (s *TableStore) rememberMigration(m state.Migration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.migrations == nil || len(s.migrations) >= maxRemembered {
		s.migrations = map[string]state.Migration{}
	}
	s.migrations[m.ID] = m
}

func (s *TableStore) rememberBatch(b state.Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batches == nil || len(s.batches) >= maxRemembered {
		s.batches = map[[2]string]state.Batch{}
	}
	s.batches[[2]string{b.MigrationID, b.ID}] = b
}

// migrationAt returns the migration as stored at etag: remembered, or read.
func (s *TableStore) migrationAt(ctx context.Context, id, etag string) (state.Migration, error) {
	s.mu.Lock()
	m, ok := s.migrations[id]
	s.mu.Unlock()
	if ok && etag != "" && string(m.ETag) == etag {
		return m, nil
	}
	return s.st.GetMigration(ctx, id)
}

// batchAt returns the batch as stored at etag: remembered, or read.
func (s *TableStore) batchAt(ctx context.Context, migrationID, batchID, etag string) (state.Batch, error) {
	s.mu.Lock()
	b, ok := s.batches[[2]string{migrationID, batchID}]
	s.mu.Unlock()
	if ok && etag != "" && string(b.ETag) == etag {
		return b, nil
	}
	return s.st.GetBatch(ctx, migrationID, batchID)
}

// NewTableStore returns the Store over st; sealer seals the stored request.
func NewTableStore(st *state.Store, sealer *state.Sealer) *TableStore {
	return &TableStore{st: st, sealer: sealer}
}

// RequestSealContext binds a sealed request to its migration.
func RequestSealContext(migrationID string) string { return "Migrations/" + migrationID + "/Request" }

// OpenRequest returns the request JSON of a stored migration.
func OpenRequest(sealer *state.Sealer, m state.Migration) ([]byte, error) {
	if m.Request == "" {
		return nil, nil
	}
	if strings.HasPrefix(m.Request, "{") {
		// Written in plain text by another writer (tests, older versions).
		return []byte(m.Request), nil
	}
	s, err := sealer.OpenFor(m.Request, RequestSealContext(m.ID))
	if err != nil {
		return nil, fmt.Errorf("migration %s: open request: %w", m.ID, err)
	}
	return []byte(s), nil
}

func mapStateErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, state.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, state.ErrStale), errors.Is(err, state.ErrConflict):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

// ---- migrations ----

func migrationState(m *Migration) state.MigrationState {
	switch m.Status {
	case MigrationCompleted, MigrationCompletedWithErrors:
		return state.MigrationCompleted
	case MigrationFailed:
		return state.MigrationFailed
	case MigrationCancelled:
		return state.MigrationCancelled
	}
	switch {
	case m.CancelRequested:
		return state.MigrationCancelling
	case m.PlanDone:
		return state.MigrationRunning
	case m.PlanPage == 0:
		return state.MigrationAccepted
	}
	return state.MigrationPlanning
}

func migrationStatus(m state.Migration) MigrationStatus {
	switch m.State {
	case state.MigrationCompleted:
		if m.Failed > 0 || m.BatchesFailed > 0 || m.Reason != "" {
			return MigrationCompletedWithErrors
		}
		return MigrationCompleted
	case state.MigrationFailed:
		return MigrationFailed
	case state.MigrationCancelled:
		return MigrationCancelled
	}
	return MigrationRunning
}

func (s *TableStore) overlayMigration(dst *state.Migration, m *Migration) error {
	dst.ID = m.ID
	dst.ContainerID = m.ContainerID
	if len(m.Request) > 0 && dst.Request == "" {
		sealed, err := s.sealer.SealFor(string(m.Request), RequestSealContext(m.ID))
		if err != nil {
			return fmt.Errorf("seal request: %w", err)
		}
		dst.Request = sealed
	}
	dst.State = migrationState(m)
	dst.CancelRequested = m.CancelRequested
	dst.Reason = m.Reason
	dst.PlanPage = int64(m.PlanPage)
	dst.SourceCursor = m.PlanCursor
	dst.PlanComplete = m.PlanDone
	c := m.Counters
	dst.Entries, dst.Items, dst.Skipped, dst.Renamed, dst.Bytes = c.Entries, c.Items, c.Skipped, c.Renamed, c.BytesPlanned
	dst.Unchanged = c.Unchanged
	dst.Batches = c.Batches
	dst.BatchesCompleted = c.BatchesDone - c.BatchesFailed - c.BatchesCancelled
	dst.BatchesFailed, dst.BatchesCancelled = c.BatchesFailed, c.BatchesCancelled
	dst.Imported, dst.Failed, dst.BytesImported = c.FilesMigrated, c.FilesFailed, c.BytesMigrated
	dst.Errors, dst.Warnings = c.Errors, c.Warnings
	if !m.Created.IsZero() {
		dst.CreatedAt = m.Created
	}
	return nil
}

func (s *TableStore) fromStateMigration(sm state.Migration) (*Migration, error) {
	req, err := OpenRequest(s.sealer, sm)
	if err != nil {
		return nil, err
	}
	return &Migration{
		ID: sm.ID, ContainerID: sm.ContainerID, Request: req,
		Status: migrationStatus(sm), CancelRequested: sm.CancelRequested, Reason: sm.Reason,
		PlanPage: int(sm.PlanPage), PlanCursor: sm.SourceCursor, PlanDone: sm.PlanComplete,
		Counters: MigrationCounters{
			Entries: sm.Entries, Items: sm.Items, Skipped: sm.Skipped, Unchanged: sm.Unchanged, Renamed: sm.Renamed, BytesPlanned: sm.Bytes,
			Batches: sm.Batches, BatchesDone: sm.BatchesCompleted + sm.BatchesFailed + sm.BatchesCancelled,
			BatchesFailed: sm.BatchesFailed, BatchesCancelled: sm.BatchesCancelled,
			FilesMigrated: sm.Imported, FilesFailed: sm.Failed, BytesMigrated: sm.BytesImported,
			Errors: sm.Errors, Warnings: sm.Warnings,
		},
		Created: sm.CreatedAt, Updated: sm.UpdatedAt, ETag: string(sm.ETag),
	}, nil
}

// CreateMigration implements [Store].
func (s *TableStore) CreateMigration(ctx context.Context, m *Migration) error {
	var sm state.Migration
	if err := s.overlayMigration(&sm, m); err != nil {
		return err
	}
	stored, created, err := s.st.CreateMigration(ctx, sm)
	if err != nil {
		return mapStateErr(err)
	}
	s.rememberMigration(stored)
	if !created {
		return ErrExists
	}
	m.ETag = string(stored.ETag)
	return nil
}

// GetMigration implements [Store].
func (s *TableStore) GetMigration(ctx context.Context, id string) (*Migration, error) {
	sm, err := s.st.GetMigration(ctx, id)
	if err != nil {
		return nil, mapStateErr(err)
	}
	s.rememberMigration(sm)
	return s.fromStateMigration(sm)
}

// UpdateMigration implements [Store].
func (s *TableStore) UpdateMigration(ctx context.Context, m *Migration) error {
	sm, err := s.migrationAt(ctx, m.ID, m.ETag)
	if err != nil {
		return mapStateErr(err)
	}
	if string(sm.ETag) != m.ETag {
		return ErrConflict
	}
	if err := s.overlayMigration(&sm, m); err != nil {
		return err
	}
	got, err := s.st.ReplaceMigration(ctx, sm)
	if err != nil {
		return mapStateErr(err)
	}
	s.rememberMigration(got)
	m.ETag = string(got.ETag)
	return nil
}

// ---- batches ----

const (
	stateSubmitting state.BatchState = "submitting" // intent recorded, no job id yet
)

func batchState(b *Batch) state.BatchState {
	switch b.Status {
	case BatchPlanned:
		return state.BatchPlanned
	case BatchStaged:
		return state.BatchStaged
	case BatchSubmitting:
		return stateSubmitting
	case BatchRunning:
		return state.BatchSubmitted
	case BatchSucceeded, BatchCompletedWithErrors:
		return state.BatchCompleted
	case BatchFailed:
		return state.BatchFailed
	case BatchCancelled:
		return state.BatchCancelled
	}
	return state.BatchState(b.Status)
}

func batchStatus(sb state.Batch) BatchStatus {
	switch sb.State {
	case state.BatchSubmitted:
		return BatchRunning
	case stateSubmitting:
		return BatchSubmitting
	case state.BatchCompleted:
		if sb.Failed > 0 {
			return BatchCompletedWithErrors
		}
		return BatchSucceeded
	}
	return BatchStatus(sb.State)
}

// batchIndex orders batches: page*1000 + index in page (see BatchID).
func batchIndex(b *Batch) int64 {
	var page, i int64
	if _, err := fmt.Sscanf(b.ID, "p%06d-b%03d", &page, &i); err != nil {
		return 0
	}
	return page*1000 + i
}

func overlayBatch(dst *state.Batch, b *Batch) {
	dst.MigrationID, dst.ID = b.MigrationID, b.ID
	dst.Index = batchIndex(b)
	dst.Page = int64(b.Page)
	dst.State = batchState(b)
	dst.Attempt = int64(b.Attempt)
	dst.ContainerID = b.ContainerID
	dst.SealedContainers = b.SealedContainers
	dst.SASExpiry = b.SASExpiry
	dst.ProvisionedAt = b.ProvisionedAt
	dst.SubmitStarted = b.SubmitStarted
	dst.JobID = b.JobID
	dst.SubmittedAt = b.SubmittedAt
	dst.JobStarted = b.JobStarted
	dst.Cursor = b.EventCursor
	dst.PollSeq = int64(b.PollSeq)
	dst.NextPollAt = b.NextPollAt
	dst.LastEventAt = b.LastEventAt
	dst.Completed, dst.Fatal, dst.FailingEvents, dst.FatalReason = b.Completed, b.Fatal, b.FailingEvents, b.FatalReason
	dst.Items, dst.Bytes = int64(b.Items), b.Bytes
	p := b.Progress
	dst.FilesProcessed, dst.BytesProcessed, dst.ObjectsProcessed, dst.ExpectedObjects = p.FilesProcessed, p.BytesProcessed, p.ObjectsProcessed, p.ExpectedObjects
	dst.Errors, dst.Warnings = p.Errors, p.Warnings
	dst.Imported, dst.Failed, dst.BytesImported = b.FilesMigrated, b.FilesFailed, b.BytesMigrated
	dst.Reason = b.Reason
}

func fromStateBatch(sb state.Batch) *Batch {
	return &Batch{
		MigrationID: sb.MigrationID, ID: sb.ID, Page: int(sb.Page), Status: batchStatus(sb),
		Attempt: int(sb.Attempt), Reason: sb.Reason, ContainerID: sb.ContainerID,
		Items: int(sb.Items), Bytes: sb.Bytes,
		SealedContainers: sb.SealedContainers, SASExpiry: sb.SASExpiry, ProvisionedAt: sb.ProvisionedAt,
		SubmitStarted: sb.SubmitStarted, JobID: sb.JobID, SubmittedAt: sb.SubmittedAt, JobStarted: sb.JobStarted,
		EventCursor: sb.Cursor, PollSeq: int(sb.PollSeq), NextPollAt: sb.NextPollAt, LastEventAt: sb.LastEventAt,
		Completed: sb.Completed, Fatal: sb.Fatal, FailingEvents: sb.FailingEvents, FatalReason: sb.FatalReason,
		Progress: BatchProgress{
			FilesProcessed: sb.FilesProcessed, BytesProcessed: sb.BytesProcessed,
			ObjectsProcessed: sb.ObjectsProcessed, ExpectedObjects: sb.ExpectedObjects,
			Errors: sb.Errors, Warnings: sb.Warnings,
		},
		FilesMigrated: sb.Imported, FilesFailed: sb.Failed, BytesMigrated: sb.BytesImported,
		Updated: sb.UpdatedAt, ETag: string(sb.ETag),
	}
}

// itemDetail is what a BatchItem's Detail holds.
type itemDetail struct {
	Versions     []source.Entry `json:"versions"`
	Renamed      bool           `json:"renamed,omitempty"`
	NamingReason string         `json:"namingReason,omitempty"`
	StageError   string         `json:"stageError,omitempty"`
}

func toBatchItems(items []Item) ([]state.BatchItem, error) {
	out := make([]state.BatchItem, len(items))
	for i, it := range items {
		d, err := json.Marshal(itemDetail{Versions: it.Versions, Renamed: it.Renamed, NamingReason: it.NamingReason, StageError: it.StageError})
		if err != nil {
			return nil, err
		}
		out[i] = state.BatchItem{Seq: int64(i), SourcePath: it.Path, TargetPath: it.Target, Size: it.Size(), Detail: string(d)}
	}
	return out, nil
}

// CreateBatch implements [Store]. Items go first, as state asks: a crash
// in between leaves items without a batch, which the re-run overwrites.
func (s *TableStore) CreateBatch(ctx context.Context, b *Batch, items []Item) error {
	if err := s.PutBatchItems(ctx, b.MigrationID, b.ID, items); err != nil {
		return err
	}
	var sb state.Batch
	overlayBatch(&sb, b)
	stored, created, err := s.st.CreateBatch(ctx, sb)
	if err != nil {
		return mapStateErr(err)
	}
	s.rememberBatch(stored)
	if !created {
		return ErrExists
	}
	b.ETag = string(stored.ETag)
	return nil
}

// PutBatchItems implements [Store].
func (s *TableStore) PutBatchItems(ctx context.Context, migrationID, batchID string, items []Item) error {
	bis, err := toBatchItems(items)
	if err != nil {
		return fmt.Errorf("batch %s items: %w", batchID, err)
	}
	return mapStateErr(s.st.PutBatchItems(ctx, migrationID, batchID, bis))
}

// GetBatch implements [Store].
func (s *TableStore) GetBatch(ctx context.Context, migrationID, batchID string) (*Batch, error) {
	sb, err := s.st.GetBatch(ctx, migrationID, batchID)
	if err != nil {
		return nil, mapStateErr(err)
	}
	s.rememberBatch(sb)
	return fromStateBatch(sb), nil
}

// UpdateBatch implements [Store].
func (s *TableStore) UpdateBatch(ctx context.Context, b *Batch) error {
	sb, err := s.batchAt(ctx, b.MigrationID, b.ID, b.ETag)
	if err != nil {
		return mapStateErr(err)
	}
	if string(sb.ETag) != b.ETag {
		return ErrConflict
	}
	overlayBatch(&sb, b)
	got, err := s.st.ReplaceBatch(ctx, sb)
	if err != nil {
		return mapStateErr(err)
	}
	s.rememberBatch(got)
	b.ETag = string(got.ETag)
	return nil
}

// ListBatches implements [Store].
func (s *TableStore) ListBatches(ctx context.Context, migrationID string) ([]*Batch, error) {
	sbs, err := s.st.ListBatches(ctx, migrationID)
	if err != nil {
		return nil, mapStateErr(err)
	}
	out := make([]*Batch, len(sbs))
	for i, sb := range sbs {
		s.rememberBatch(sb)
		out[i] = fromStateBatch(sb)
	}
	return out, nil
}

// BatchItems implements [Store].
func (s *TableStore) BatchItems(ctx context.Context, migrationID, batchID string) ([]Item, error) {
	bis, err := s.st.BatchItems(ctx, migrationID, batchID)
	if err != nil {
		return nil, mapStateErr(err)
	}
	out := make([]Item, len(bis))
	for i, bi := range bis {
		var d itemDetail
		if err := json.Unmarshal([]byte(bi.Detail), &d); err != nil {
			return nil, fmt.Errorf("batch %s item %d: detail: %w", batchID, bi.Seq, err)
		}
		out[i] = Item{Path: bi.SourcePath, Target: bi.TargetPath, Versions: d.Versions, Renamed: d.Renamed, NamingReason: d.NamingReason, StageError: d.StageError}
	}
	return out, nil
}

// PutEvents implements [Store].
func (s *TableStore) PutEvents(ctx context.Context, migrationID, batchID string, events []graph.Event) error {
	_, err := s.st.PutEvents(ctx, migrationID, batchID, events)
	return mapStateErr(err)
}

// ListEvents implements [Store].
func (s *TableStore) ListEvents(ctx context.Context, migrationID, batchID, jobID string) ([]graph.Event, error) {
	ses, err := s.st.ListEvents(ctx, migrationID, batchID, jobID)
	if err != nil {
		return nil, mapStateErr(err)
	}
	out := make([]graph.Event, 0, len(ses))
	for _, se := range ses {
		ge, err := se.Graph()
		if err != nil {
			return nil, fmt.Errorf("batch %s event %s: %w", batchID, se.ID, err)
		}
		out = append(out, ge)
	}
	return out, nil
}

func stateOutcome(r ItemResult) state.Outcome {
	switch r.Outcome {
	case OutcomeMigrated:
		if r.Renamed {
			return state.OutcomeRenamed
		}
		return state.OutcomeImported
	case OutcomeFailed:
		return state.OutcomeFailed
	case OutcomeSkipped:
		return state.OutcomeSkipped
	case OutcomeCancelled:
		return state.OutcomeCancelled
	}
	return state.OutcomePending
}

// PutItemResults implements [Store].
func (s *TableStore) PutItemResults(ctx context.Context, rs []ItemResult) error {
	if len(rs) == 0 {
		return nil
	}
	out := make([]state.Result, len(rs))
	for i, r := range rs {
		out[i] = state.Result{
			MigrationID: r.MigrationID, SourcePath: r.SourcePath, TargetPath: r.TargetPath, BatchID: r.BatchID,
			Size: r.Size, Outcome: stateOutcome(r), Renamed: r.Renamed, Reason: r.Reason,
		}
	}
	return mapStateErr(s.st.PutResults(ctx, out))
}

// InFlight implements [Store].
func (s *TableStore) InFlight(ctx context.Context, limit int) ([]Ref, error) {
	refs, err := s.st.InFlight(ctx, limit)
	if err != nil {
		return nil, mapStateErr(err)
	}
	out := make([]Ref, len(refs))
	for i, r := range refs {
		out[i] = Ref{MigrationID: r.MigrationID, BatchID: r.BatchID}
	}
	return out, nil
}

// ForgetInFlight drops a stale index row (see [InFlightForgetter]).
func (s *TableStore) ForgetInFlight(ctx context.Context, migrationID, batchID string) error {
	return mapStateErr(s.st.ForgetInFlight(ctx, migrationID, batchID))
}

// ---- list-item int ids ----

// IntIDs hands out SharePoint list-item int ids for one target container
// (one library): ids are reserved from the container's counter
// (state.Store.ReserveIntIDs, a conditional write), and each library path
// claims its id in the container's claims (insert-if-absent), so the same
// path gets the same id on every staging, in every process and in every
// migration into the container (a re-run replaces), and no id is handed to
// two paths. Ids reserved but not used (the path held an id already, or a
// concurrent claimant won) are never reused (gaps are harmless).
//
// [IntIDs.Prefetch] claims a whole batch's paths up front, in a handful of
// Table transactions; IntID then answers from memory, and claims one path
// at a time only for a path Prefetch was not given.
type IntIDs struct {
	st          *state.Store
	containerID string
	first       int64
	block       int64

	mu        sync.Mutex
	known     map[string]int // libraryPathKey -> claimed id
	next, end int64
}

// NewIntIDs returns the allocator for a target container; first is the
// lowest id to hand out (above the library's existing items), block how
// many ids one counter write reserves for paths claimed one at a time.
func NewIntIDs(st *state.Store, containerID string, first, block int64) *IntIDs {
	if block <= 0 {
		block = 64
	}
	return &IntIDs{st: st, containerID: containerID, first: first, block: block, known: map[string]int{}}
}

// Prefetch claims ids for libraryPaths (files and folders) at once: one
// counter write reserves an id per path not known yet, and one
// state.Store.ClaimManyInContainer offers them; a path that already holds
// an id keeps it.
func (a *IntIDs) Prefetch(ctx context.Context, libraryPaths []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var keys []string
	seen := map[string]bool{}
	for _, p := range libraryPaths {
		k := libraryPathKey(p)
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		if _, ok := a.known[k]; !ok {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	from, err := a.st.ReserveIntIDs(ctx, a.containerID, a.first, int64(len(keys)))
	if err != nil {
		return fmt.Errorf("reserve %d list item ids in container %s: %w", len(keys), a.containerID, err)
	}
	claimKeys := make([]string, len(keys))
	cands := make([]string, len(keys))
	for i, k := range keys {
		claimKeys[i] = "intid|" + k
		cands[i] = strconv.FormatInt(from+int64(i), 10)
	}
	owners, err := a.st.ClaimManyInContainer(ctx, a.containerID, claimKeys, cands)
	if err != nil {
		return fmt.Errorf("claim %d list item ids in container %s: %w", len(keys), a.containerID, err)
	}
	for i, k := range keys {
		id, err := strconv.ParseInt(owners[i], 10, 32)
		if err != nil {
			return fmt.Errorf("claimed list item id for %q is malformed", k)
		}
		a.known[k] = int(id)
	}
	return nil
}

// IntID implements spepackage.IntIDs.
func (a *IntIDs) IntID(ctx context.Context, libraryPath string) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := libraryPathKey(libraryPath)
	if id, ok := a.known[k]; ok {
		return id, nil
	}
	if a.next >= a.end {
		if err := a.reserve(ctx); err != nil {
			return 0, err
		}
	}
	cand := strconv.FormatInt(a.next, 10)
	owner, err := a.st.ClaimInContainer(ctx, a.containerID, "intid|"+k, cand)
	if err != nil {
		return 0, fmt.Errorf("claim list item id for %q: %w", libraryPath, err)
	}
	if owner == cand {
		a.next++
	}
	id, err := strconv.ParseInt(owner, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("claimed list item id for %q is malformed", libraryPath)
	}
	a.known[k] = int(id)
	return int(id), nil
}

func (a *IntIDs) reserve(ctx context.Context) error {
	from, err := a.st.ReserveIntIDs(ctx, a.containerID, a.first, a.block)
	if err != nil {
		return fmt.Errorf("reserve list item ids in container %s: %w", a.containerID, err)
	}
	a.next, a.end = from, from+a.block
	return nil
}

func libraryPathKey(p string) string {
	// SharePoint compares paths case-insensitively.
	return normPath(p)
}
