package state

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/spemigrate/spemigrate/shared/graph"
)

// BatchState is where a batch stands.
type BatchState string

// Batch states. Completed, Failed and Cancelled are terminal; the others are
// "in flight" and indexed for the drain timer.
const (
	BatchPlanned   BatchState = "planned"   // items chosen; containers may be provisioned
	BatchStaged    BatchState = "staged"    // content and manifests uploaded
	BatchSubmitted BatchState = "submitted" // migration job created (JobID set)
	BatchCompleted BatchState = "completed"
	BatchFailed    BatchState = "failed"
	BatchCancelled BatchState = "cancelled"
)

// Terminal reports whether no further work happens in this state.
func (s BatchState) Terminal() bool {
	return s == BatchCompleted || s == BatchFailed || s == BatchCancelled
}

// BatchID formats a batch index as the batch id ("000042"), so ids sort in
// index order.
func BatchID(index int64) string { return fmt.Sprintf("%06d", index) }

// Batch is one import package: up to 250 items or 250 MB, staged into one
// pair of provisioned containers and imported by one migration job per
// attempt.
type Batch struct {
	MigrationID string
	ID          string // see BatchID
	Index       int64
	// Page is the source page the batch was planned from.
	Page  int64
	State BatchState
	// Attempt counts provisionings: each re-provision after an invalid SAS
	// or a fatal job error starts a new attempt.
	Attempt int64
	// ContainerID is the SPE container the job runs in.
	ContainerID string
	// Containers are the provisioned SAS URLs and key of the current
	// attempt; the store seals them at rest. Zero until provisioned.
	Containers graph.ContainerInfo
	// SealedContainers is for callers that seal the container info
	// themselves (with [Sealer.Seal]): stored as is.
	SealedContainers string
	// SASExpiry is the earlier SAS expiry (not secret), for the 12-hour rule.
	SASExpiry     time.Time
	ProvisionedAt time.Time
	// SubmitStarted records the intent to create this attempt's job (set
	// before calling Graph, since creation is not idempotent).
	SubmitStarted time.Time
	JobID         string
	SubmittedAt   time.Time
	// JobStarted: a start event was seen; the job can no longer be deleted.
	JobStarted bool
	// Cursor is the progress-event paging cursor to resume from.
	Cursor string
	// PollSeq is the sequence the next poll message must carry.
	PollSeq int64
	// NextPollAt is when the next poll is due; the drain timer repairs
	// polls that are overdue.
	NextPollAt time.Time
	// LastEventAt is the time of the newest event seen (stuck-job checks).
	LastEventAt time.Time
	// Outcome of the current job, from its events.
	Completed     bool
	Fatal         bool
	FailingEvents bool
	FatalReason   string
	Counters
	Reason    string
	CreatedAt time.Time
	UpdatedAt time.Time
	ETag      azcore.ETag
}

func (b *Batch) sealContext(prop string) string {
	return "Batches/" + b.MigrationID + "/" + b.ID + "/" + prop
}

func (s *Store) batchProps(b *Batch) (props, error) {
	p := props{}
	p.setI64("Index", b.Index)
	p.setI64("Page", b.Page)
	p.setStr("State", string(b.State))
	p.setI64("Attempt", b.Attempt)
	p.setStr("ContainerID", b.ContainerID)
	for _, f := range []struct{ name, v string }{
		{"DataURI", b.Containers.DataContainerURI},
		{"MetadataURI", b.Containers.MetadataContainerURI},
		{"Key", b.Containers.EncryptionKey},
	} {
		sealed, err := s.sealer.SealFor(f.v, b.sealContext(f.name))
		if err != nil {
			return nil, err
		}
		p.setStr("Sealed"+f.name, sealed)
	}
	p.setStr("SealedContainers", b.SealedContainers)
	p.setTime("SASExpiry", b.SASExpiry)
	p.setTime("ProvisionedAt", b.ProvisionedAt)
	p.setTime("SubmitStarted", b.SubmitStarted)
	p.setStr("JobID", b.JobID)
	p.setTime("SubmittedAt", b.SubmittedAt)
	p.setBool("JobStarted", b.JobStarted)
	p.setStr("Cursor", b.Cursor)
	p.setI64("PollSeq", b.PollSeq)
	p.setTime("NextPollAt", b.NextPollAt)
	p.setTime("LastEventAt", b.LastEventAt)
	p.setBool("Completed", b.Completed)
	p.setBool("Fatal", b.Fatal)
	p.setBool("FailingEvents", b.FailingEvents)
	p.setStr("FatalReason", b.FatalReason)
	b.Counters.put(p)
	p.setStr("Reason", b.Reason)
	p.setTime("CreatedAt", b.CreatedAt)
	p.setTime("UpdatedAt", b.UpdatedAt)
	return p, nil
}

func (s *Store) batchFrom(e rawEntity) (Batch, error) {
	p := e.p
	b := Batch{
		MigrationID: e.pk, ID: e.rk, Index: p.i64("Index"), Page: p.i64("Page"), State: BatchState(p.str("State")),
		Attempt: p.i64("Attempt"), ContainerID: p.str("ContainerID"),
		SealedContainers: p.str("SealedContainers"), SASExpiry: p.time("SASExpiry"),
		ProvisionedAt: p.time("ProvisionedAt"), SubmitStarted: p.time("SubmitStarted"),
		JobID: p.str("JobID"), SubmittedAt: p.time("SubmittedAt"), JobStarted: p.boolean("JobStarted"),
		Cursor: p.str("Cursor"), PollSeq: p.i64("PollSeq"), NextPollAt: p.time("NextPollAt"), LastEventAt: p.time("LastEventAt"),
		Completed: p.boolean("Completed"), Fatal: p.boolean("Fatal"), FailingEvents: p.boolean("FailingEvents"),
		FatalReason: p.str("FatalReason"),
		Counters:    countersFrom(p), Reason: p.str("Reason"),
		CreatedAt: p.time("CreatedAt"), UpdatedAt: p.time("UpdatedAt"), ETag: e.etag,
	}
	var err error
	if b.Containers.DataContainerURI, err = s.sealer.OpenFor(p.str("SealedDataURI"), b.sealContext("DataURI")); err != nil {
		return Batch{}, err
	}
	if b.Containers.MetadataContainerURI, err = s.sealer.OpenFor(p.str("SealedMetadataURI"), b.sealContext("MetadataURI")); err != nil {
		return Batch{}, err
	}
	if b.Containers.EncryptionKey, err = s.sealer.OpenFor(p.str("SealedKey"), b.sealContext("Key")); err != nil {
		return Batch{}, err
	}
	return b, nil
}

func (b *Batch) validate() error {
	if err := checkKey("migration id", b.MigrationID); err != nil {
		return err
	}
	if err := checkKey("batch id", b.ID); err != nil {
		return err
	}
	if len(b.Reason) > maxStringProp {
		b.Reason = b.Reason[:maxStringProp]
	}
	if len(b.FatalReason) > maxStringProp {
		b.FatalReason = b.FatalReason[:maxStringProp]
	}
	return nil
}

// CreateBatch stores b if absent (ID defaults to BatchID(b.Index)); if it
// exists, returns the stored batch and created=false.
func (s *Store) CreateBatch(ctx context.Context, b Batch) (stored Batch, created bool, err error) {
	if b.ID == "" {
		b.ID = BatchID(b.Index)
	}
	if b.State == "" {
		b.State = BatchPlanned
	}
	now := s.now().UTC()
	if b.CreatedAt.IsZero() {
		b.CreatedAt = now
	}
	b.UpdatedAt = now
	if err := b.validate(); err != nil {
		return Batch{}, false, err
	}
	// Index first: a crash between the two writes leaves an index row for a
	// batch that does not exist (harmless, the drain drops it), never an
	// unindexed in-flight batch.
	if !b.State.Terminal() {
		if err := s.putInFlight(ctx, b.MigrationID, b.ID, string(b.State), b.NextPollAt, b.UpdatedAt); err != nil {
			return Batch{}, false, err
		}
	}
	p, err := s.batchProps(&b)
	if err != nil {
		return Batch{}, false, err
	}
	data, err := marshalEntity(b.MigrationID, b.ID, p)
	if err != nil {
		return Batch{}, false, err
	}
	resp, err := s.batches.AddEntity(ctx, data, nil)
	if isConflict(err) {
		got, gerr := s.GetBatch(ctx, b.MigrationID, b.ID)
		return got, false, gerr
	}
	if err != nil {
		return Batch{}, false, storageErr("create batch "+b.MigrationID+"/"+b.ID, err)
	}
	b.ETag = resp.ETag
	return b, true, nil
}

// GetBatch reads one batch; ErrNotFound if absent.
func (s *Store) GetBatch(ctx context.Context, migrationID, batchID string) (Batch, error) {
	if err := errors.Join(checkKey("migration id", migrationID), checkKey("batch id", batchID)); err != nil {
		return Batch{}, err
	}
	e, found, err := getRaw(ctx, s.batches, migrationID, batchID, "get batch "+migrationID+"/"+batchID)
	if err != nil {
		return Batch{}, err
	}
	if !found {
		return Batch{}, fmt.Errorf("batch %s/%s: %w", migrationID, batchID, ErrNotFound)
	}
	return s.batchFrom(e)
}

// ReplaceBatch writes b if the stored batch still has b.ETag and returns it
// with its new ETag; [ErrStale] when another writer got there first. It
// keeps the in-flight index: the index row is written before a batch enters
// or stays in a non-terminal state and removed after it reaches a terminal
// one. Prefer [Store.UpdateBatch], which does the re-read loop.
func (s *Store) ReplaceBatch(ctx context.Context, b Batch) (Batch, error) {
	if b.ETag == "" {
		return Batch{}, fmt.Errorf("state: replace batch %s/%s: no ETag (read it first)", b.MigrationID, b.ID)
	}
	b.UpdatedAt = s.now().UTC()
	if err := b.validate(); err != nil {
		return Batch{}, err
	}
	if !b.State.Terminal() {
		if err := s.putInFlight(ctx, b.MigrationID, b.ID, string(b.State), b.NextPollAt, b.UpdatedAt); err != nil {
			return Batch{}, err
		}
	}
	p, err := s.batchProps(&b)
	if err != nil {
		return Batch{}, err
	}
	data, err := marshalEntity(b.MigrationID, b.ID, p)
	if err != nil {
		return Batch{}, err
	}
	etag := b.ETag
	resp, err := s.batches.UpdateEntity(ctx, data, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	if isPrecondition(err) || isNotFound(err) {
		return Batch{}, fmt.Errorf("batch %s/%s: %w", b.MigrationID, b.ID, ErrStale)
	}
	if err != nil {
		return Batch{}, storageErr("update batch "+b.MigrationID+"/"+b.ID, err)
	}
	b.ETag = resp.ETag
	if b.State.Terminal() {
		if err := s.deleteInFlight(ctx, b.MigrationID, b.ID); err != nil {
			return b, err
		}
	}
	return b, nil
}

// UpdateBatch is UpdateMigration for batches.
func (s *Store) UpdateBatch(ctx context.Context, migrationID, batchID string, fn func(*Batch) error) (Batch, error) {
	for attempt := 0; attempt < s.maxAttempts; attempt++ {
		b, err := s.GetBatch(ctx, migrationID, batchID)
		if err != nil {
			return Batch{}, err
		}
		read := b
		if err := fn(&b); err != nil {
			if errors.Is(err, ErrNoChange) {
				return read, nil
			}
			return read, err
		}
		b.MigrationID, b.ID, b.CreatedAt, b.ETag = read.MigrationID, read.ID, read.CreatedAt, read.ETag
		got, err := s.ReplaceBatch(ctx, b)
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return read, err
		}
		return got, nil
	}
	return Batch{}, fmt.Errorf("update batch %s/%s: %w", migrationID, batchID, ErrConflict)
}

// ListBatches returns a migration's batches in id order.
func (s *Store) ListBatches(ctx context.Context, migrationID string) ([]Batch, error) {
	if err := checkKey("migration id", migrationID); err != nil {
		return nil, err
	}
	var out []Batch
	var derr error
	err := s.list(ctx, s.batches, "PartitionKey eq "+quote(migrationID), 0, func(e rawEntity) {
		b, err := s.batchFrom(e)
		if err != nil {
			derr = errors.Join(derr, err)
			return
		}
		out = append(out, b)
	})
	if err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// InFlightRef is one row of the in-flight index: a copy of a non-terminal
// batch's (or, with BatchID empty, migration's) state at its last write.
// The entity is the truth; read it before acting.
type InFlightRef struct {
	MigrationID string
	BatchID     string // empty for a migration
	State       string // BatchState or MigrationState
	NextPollAt  time.Time
	UpdatedAt   time.Time
}

const inflightPK = "inflight"

func (s *Store) putInFlight(ctx context.Context, migrationID, batchID, state string, nextPoll, updated time.Time) error {
	p := props{}
	p.setStr("MigrationID", migrationID)
	p.setStr("BatchID", batchID)
	p.setStr("State", state)
	p.setTime("NextPollAt", nextPoll)
	p.setTime("UpdatedAt", updated)
	data, err := marshalEntity(inflightPK, migrationID+"|"+batchID, p)
	if err != nil {
		return err
	}
	if _, err := s.inflight.UpsertEntity(ctx, data, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return storageErr("index in-flight "+migrationID+"/"+batchID, err)
	}
	return nil
}

func (s *Store) deleteInFlight(ctx context.Context, migrationID, batchID string) error {
	_, err := s.inflight.DeleteEntity(ctx, inflightPK, migrationID+"|"+batchID, nil)
	if err != nil && !isNotFound(err) {
		return storageErr("unindex "+migrationID+"/"+batchID, err)
	}
	return nil
}

// InFlight lists up to limit rows (0 = all) of the in-flight index, whose
// cost follows the work in flight only. Rows can be stale (a crash between
// a terminal write and the index delete): read the entity, and call
// [Store.ForgetInFlight] when it turns out terminal or missing.
func (s *Store) InFlight(ctx context.Context, limit int) ([]InFlightRef, error) {
	var out []InFlightRef
	err := s.list(ctx, s.inflight, "PartitionKey eq "+quote(inflightPK), limit, func(e rawEntity) {
		out = append(out, InFlightRef{
			MigrationID: e.p.str("MigrationID"), BatchID: e.p.str("BatchID"),
			State: e.p.str("State"), NextPollAt: e.p.time("NextPollAt"), UpdatedAt: e.p.time("UpdatedAt"),
		})
	})
	return out, err
}

// ForgetInFlight removes an index row if its batch (or, with batchID
// empty, migration) is terminal or does not exist; it leaves a live one's
// row alone.
func (s *Store) ForgetInFlight(ctx context.Context, migrationID, batchID string) error {
	var terminal bool
	var err error
	if batchID == "" {
		var m Migration
		m, err = s.GetMigration(ctx, migrationID)
		terminal = err == nil && m.State.Terminal()
	} else {
		var b Batch
		b, err = s.GetBatch(ctx, migrationID, batchID)
		terminal = err == nil && b.State.Terminal()
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err == nil && !terminal {
		return nil
	}
	return s.deleteInFlight(ctx, migrationID, batchID)
}
