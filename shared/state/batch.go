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
// pair of provisioned containers and imported by one migration job.
type Batch struct {
	MigrationID string
	ID          string // see BatchID
	Index       int64
	State       BatchState
	// Attempt counts provisionings: each re-provision after an invalid SAS
	// or a fatal job error starts a new attempt.
	Attempt int64
	// ContainerID is the SPE container the job runs in.
	ContainerID string
	// Containers are the provisioned SAS URLs and key of the current
	// attempt; sealed at rest. Zero until provisioned.
	Containers    graph.ContainerInfo
	ProvisionedAt time.Time
	JobID         string
	SubmittedAt   time.Time
	// Cursor is the progress-event paging cursor to resume from.
	Cursor string
	// NextPollAt is when the next poll is due; the drain timer repairs
	// polls that are overdue.
	NextPollAt time.Time
	// LastEventAt is the time of the newest event seen (stuck-job checks).
	LastEventAt time.Time
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
	p.setStr("State", string(b.State))
	p.setI64("Attempt", b.Attempt)
	p.setStr("ContainerID", b.ContainerID)
	for _, f := range []struct{ name, v string }{
		{"DataURI", b.Containers.DataContainerURI},
		{"MetadataURI", b.Containers.MetadataContainerURI},
		{"Key", b.Containers.EncryptionKey},
	} {
		sealed, err := s.sealer.Seal(f.v, b.sealContext(f.name))
		if err != nil {
			return nil, err
		}
		p.setStr("Sealed"+f.name, sealed)
	}
	p.setTime("ProvisionedAt", b.ProvisionedAt)
	p.setStr("JobID", b.JobID)
	p.setTime("SubmittedAt", b.SubmittedAt)
	p.setStr("Cursor", b.Cursor)
	p.setTime("NextPollAt", b.NextPollAt)
	p.setTime("LastEventAt", b.LastEventAt)
	b.Counters.put(p)
	p.setStr("Reason", b.Reason)
	p.setTime("CreatedAt", b.CreatedAt)
	p.setTime("UpdatedAt", b.UpdatedAt)
	return p, nil
}

func (s *Store) batchFrom(e rawEntity) (Batch, error) {
	p := e.p
	b := Batch{
		MigrationID: e.pk, ID: e.rk, Index: p.i64("Index"), State: BatchState(p.str("State")),
		Attempt: p.i64("Attempt"), ContainerID: p.str("ContainerID"),
		ProvisionedAt: p.time("ProvisionedAt"), JobID: p.str("JobID"), SubmittedAt: p.time("SubmittedAt"),
		Cursor: p.str("Cursor"), NextPollAt: p.time("NextPollAt"), LastEventAt: p.time("LastEventAt"),
		Counters: countersFrom(p), Reason: p.str("Reason"),
		CreatedAt: p.time("CreatedAt"), UpdatedAt: p.time("UpdatedAt"), ETag: e.etag,
	}
	var err error
	if b.Containers.DataContainerURI, err = s.sealer.Open(p.str("SealedDataURI"), b.sealContext("DataURI")); err != nil {
		return Batch{}, err
	}
	if b.Containers.MetadataContainerURI, err = s.sealer.Open(p.str("SealedMetadataURI"), b.sealContext("MetadataURI")); err != nil {
		return Batch{}, err
	}
	if b.Containers.EncryptionKey, err = s.sealer.Open(p.str("SealedKey"), b.sealContext("Key")); err != nil {
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
		if err := s.putInFlight(ctx, &b); err != nil {
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
	resp, err := s.batches.GetEntity(ctx, migrationID, batchID, nil)
	if isNotFound(err) {
		return Batch{}, fmt.Errorf("batch %s/%s: %w", migrationID, batchID, ErrNotFound)
	}
	if err != nil {
		return Batch{}, storageErr("get batch "+migrationID+"/"+batchID, err)
	}
	e, err := unmarshalEntity(resp.Value, resp.ETag)
	if err != nil {
		return Batch{}, err
	}
	return s.batchFrom(e)
}

// UpdateBatch is UpdateMigration for batches. It also keeps the in-flight
// index: the index row is written before a batch enters or stays in a
// non-terminal state and removed after it reaches a terminal one.
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
		b.MigrationID, b.ID, b.CreatedAt, b.UpdatedAt = read.MigrationID, read.ID, read.CreatedAt, s.now().UTC()
		if err := b.validate(); err != nil {
			return read, err
		}
		if !b.State.Terminal() {
			if err := s.putInFlight(ctx, &b); err != nil {
				return read, err
			}
		}
		p, err := s.batchProps(&b)
		if err != nil {
			return read, err
		}
		data, err := marshalEntity(b.MigrationID, b.ID, p)
		if err != nil {
			return read, err
		}
		etag := read.ETag
		resp, err := s.batches.UpdateEntity(ctx, data, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
		if isPrecondition(err) {
			continue
		}
		if err != nil {
			return read, storageErr("update batch "+migrationID+"/"+batchID, err)
		}
		b.ETag = resp.ETag
		if b.State.Terminal() {
			if err := s.deleteInFlight(ctx, b.MigrationID, b.ID); err != nil {
				return b, err
			}
		}
		return b, nil
	}
	return Batch{}, fmt.Errorf("update batch %s/%s: %w", migrationID, batchID, ErrConflict)
}

// ListBatches returns a migration's batches in index order.
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

// InFlightBatch is one row of the in-flight index: a copy of the batch's
// state at its last write. The batch entity is the truth; read it before
// acting.
type InFlightBatch struct {
	MigrationID string
	BatchID     string
	State       BatchState
	NextPollAt  time.Time
	UpdatedAt   time.Time
}

const inflightPK = "inflight"

func (s *Store) putInFlight(ctx context.Context, b *Batch) error {
	p := props{}
	p.setStr("MigrationID", b.MigrationID)
	p.setStr("BatchID", b.ID)
	p.setStr("State", string(b.State))
	p.setTime("NextPollAt", b.NextPollAt)
	p.setTime("UpdatedAt", b.UpdatedAt)
	data, err := marshalEntity(inflightPK, b.MigrationID+"|"+b.ID, p)
	if err != nil {
		return err
	}
	if _, err := s.inflight.UpsertEntity(ctx, data, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return storageErr("index in-flight batch "+b.MigrationID+"/"+b.ID, err)
	}
	return nil
}

func (s *Store) deleteInFlight(ctx context.Context, migrationID, batchID string) error {
	_, err := s.inflight.DeleteEntity(ctx, inflightPK, migrationID+"|"+batchID, nil)
	if err != nil && !isNotFound(err) {
		return storageErr("unindex batch "+migrationID+"/"+batchID, err)
	}
	return nil
}

// InFlight lists the in-flight index. Its cost follows the number of
// in-flight batches only. Rows can be stale (a crash between a batch's
// terminal write and the index delete): read the batch, and call
// [Store.ForgetInFlight] when it turns out terminal or missing.
func (s *Store) InFlight(ctx context.Context) ([]InFlightBatch, error) {
	var out []InFlightBatch
	err := s.list(ctx, s.inflight, "PartitionKey eq "+quote(inflightPK), 0, func(e rawEntity) {
		out = append(out, InFlightBatch{
			MigrationID: e.p.str("MigrationID"), BatchID: e.p.str("BatchID"),
			State: BatchState(e.p.str("State")), NextPollAt: e.p.time("NextPollAt"), UpdatedAt: e.p.time("UpdatedAt"),
		})
	})
	return out, err
}

// ForgetInFlight removes a batch's index row if the batch is terminal or
// does not exist; it leaves the row of a live batch alone.
func (s *Store) ForgetInFlight(ctx context.Context, migrationID, batchID string) error {
	b, err := s.GetBatch(ctx, migrationID, batchID)
	if err == nil && !b.State.Terminal() {
		return nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return s.deleteInFlight(ctx, migrationID, batchID)
}
