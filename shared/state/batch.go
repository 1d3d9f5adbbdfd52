package state

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

func (b *Batch) sealContext(prop string) string {
	return "Batches/" + b.MigrationID + "/" + b.ID + "/" + prop
}

// batchProps is the batch codec's write half; the container SAS URLs and
// key are sealed here, each bound to its row and property.
func (s *Store) batchProps(b *Batch) (props, error) {
	p := props{}
	p.setI64("Page", int64(b.Page))
	p.setStr("ContainerID", b.ContainerID)
	p.setStr("Status", string(b.Status))
	p.setI64("Attempt", int64(b.Attempt))
	p.setStr("Reason", truncate(b.Reason))
	p.setI64("Items", int64(b.Items))
	p.setI64("Bytes", b.Bytes)
	for _, f := range []struct{ name, v string }{
		{"DataURI", b.Containers.DataContainerURI},
		{"MetadataURI", b.Containers.MetadataContainerURI},
		{"Key", b.Containers.EncryptionKey},
	} {
		if f.v == "" {
			continue
		}
		sealed, err := s.sealer.SealFor(f.v, b.sealContext(f.name))
		if err != nil {
			return nil, err
		}
		p.setStr("Sealed"+f.name, sealed)
	}
	p.setTime("SASExpiry", b.SASExpiry)
	p.setTime("ProvisionedAt", b.ProvisionedAt)
	p.setTime("SubmitStarted", b.SubmitStarted)
	p.setStr("JobID", b.JobID)
	p.setTime("SubmittedAt", b.SubmittedAt)
	p.setBool("JobStarted", b.JobStarted)
	p.setStr("EventCursor", b.EventCursor)
	p.setI64("PollSeq", int64(b.PollSeq))
	p.setTime("NextPollAt", b.NextPollAt)
	p.setTime("LastEventAt", b.LastEventAt)
	p.setBool("Completed", b.Completed)
	p.setBool("Fatal", b.Fatal)
	p.setBool("FailingEvents", b.FailingEvents)
	p.setStr("FatalReason", truncate(b.FatalReason))
	p.setStr("PostponedReason", truncate(b.Postponed.Reason))
	p.setTime("NextPickup", b.Postponed.NextPickup)
	p.setI64("JobsInQueue", b.Postponed.JobsInQueue)
	g := b.Progress
	p.setI64("FilesProcessed", g.FilesProcessed)
	p.setI64("BytesProcessed", g.BytesProcessed)
	p.setI64("ObjectsProcessed", g.ObjectsProcessed)
	p.setI64("ExpectedObjects", g.ExpectedObjects)
	p.setI64("Errors", g.Errors)
	p.setI64("Warnings", g.Warnings)
	p.setI64("FilesMigrated", b.FilesMigrated)
	p.setI64("FilesFailed", b.FilesFailed)
	p.setI64("BytesMigrated", b.BytesMigrated)
	p.setTime("Created", b.Created)
	p.setTime("Updated", b.Updated)
	return p, nil
}

func (s *Store) batchFrom(e rawEntity) (*Batch, error) {
	p := e.p
	b := &Batch{
		MigrationID: e.pk, ID: e.rk, Page: int(p.i64("Page")), ContainerID: p.str("ContainerID"),
		Status: BatchStatus(p.str("Status")), Attempt: int(p.i64("Attempt")), Reason: p.str("Reason"),
		Items: int(p.i64("Items")), Bytes: p.i64("Bytes"),
		SASExpiry: p.time("SASExpiry"), ProvisionedAt: p.time("ProvisionedAt"),
		SubmitStarted: p.time("SubmitStarted"), JobID: p.str("JobID"), SubmittedAt: p.time("SubmittedAt"),
		JobStarted:  p.boolean("JobStarted"),
		EventCursor: p.str("EventCursor"), PollSeq: int(p.i64("PollSeq")),
		NextPollAt: p.time("NextPollAt"), LastEventAt: p.time("LastEventAt"),
		Completed: p.boolean("Completed"), Fatal: p.boolean("Fatal"), FailingEvents: p.boolean("FailingEvents"),
		FatalReason: p.str("FatalReason"),
		Postponed: Postponement{Reason: p.str("PostponedReason"), NextPickup: p.time("NextPickup"),
			JobsInQueue: p.i64("JobsInQueue")},
		Progress: BatchProgress{
			FilesProcessed: p.i64("FilesProcessed"), BytesProcessed: p.i64("BytesProcessed"),
			ObjectsProcessed: p.i64("ObjectsProcessed"), ExpectedObjects: p.i64("ExpectedObjects"),
			Errors: p.i64("Errors"), Warnings: p.i64("Warnings"),
		},
		FilesMigrated: p.i64("FilesMigrated"), FilesFailed: p.i64("FilesFailed"), BytesMigrated: p.i64("BytesMigrated"),
		Created: p.time("Created"), Updated: p.time("Updated"), ETag: string(e.etag),
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"DataURI", &b.Containers.DataContainerURI},
		{"MetadataURI", &b.Containers.MetadataContainerURI},
		{"Key", &b.Containers.EncryptionKey},
	} {
		sealed := p.str("Sealed" + f.name)
		if sealed == "" {
			continue
		}
		v, err := s.sealer.OpenFor(sealed, b.sealContext(f.name))
		if err != nil {
			return nil, fmt.Errorf("batch %s/%s: open %s: %w", b.MigrationID, b.ID, f.name, err)
		}
		*f.dst = v
	}
	return b, nil
}

func checkBatchKeys(migrationID, batchID string) error {
	return errors.Join(checkKey("migration id", migrationID), checkKey("batch id", batchID))
}

// indexedBatch encodes b and, while it is not terminal, writes its in-flight
// row first (an index row may outlive its entity, never the reverse).
func (s *Store) indexedBatch(ctx context.Context, b *Batch) ([]byte, error) {
	p, err := s.batchProps(b)
	if err != nil {
		return nil, err
	}
	if !b.Status.Terminal() {
		if err := s.putInFlight(ctx, Ref{MigrationID: b.MigrationID, BatchID: b.ID, ContainerID: b.ContainerID, Status: string(b.Status), NextPollAt: b.NextPollAt, Updated: b.Updated}); err != nil {
			return nil, err
		}
	}
	return marshalEntity(b.MigrationID, b.ID, p)
}

// CreateBatch stores b with its items if the batch is absent, and sets its
// ETag; [ErrExists] if it exists. Items go first (rewriting them is
// harmless: a batch id always names the same planned items): a crash in
// between leaves items without a batch, which the re-run overwrites; the in-flight row goes before the batch, so a
// crash leaves at worst a row for a batch that does not exist (the drain
// drops it), never an unindexed batch.
func (s *Store) CreateBatch(ctx context.Context, b *Batch, items []Item) error {
	if err := checkBatchKeys(b.MigrationID, b.ID); err != nil {
		return err
	}
	if b.Status == "" {
		b.Status = BatchPlanned
	}
	now := s.now().UTC()
	if b.Created.IsZero() {
		b.Created = now
	}
	b.Updated = now
	if err := s.PutBatchItems(ctx, b.MigrationID, b.ID, items); err != nil {
		return err
	}
	data, err := s.indexedBatch(ctx, b)
	if err != nil {
		return err
	}
	resp, err := s.batches.AddEntity(ctx, data, nil)
	if isConflict(err) {
		return fmt.Errorf("batch %s/%s: %w", b.MigrationID, b.ID, ErrExists)
	}
	if err != nil {
		return storageErr("create batch "+b.MigrationID+"/"+b.ID, err)
	}
	b.ETag = string(resp.ETag)
	return nil
}

// GetBatch reads one batch; ErrNotFound if absent.
func (s *Store) GetBatch(ctx context.Context, migrationID, batchID string) (*Batch, error) {
	if err := checkBatchKeys(migrationID, batchID); err != nil {
		return nil, err
	}
	e, found, err := getRaw(ctx, s.batches, migrationID, batchID, "get batch "+migrationID+"/"+batchID)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("batch %s/%s: %w", migrationID, batchID, ErrNotFound)
	}
	return s.batchFrom(e)
}

// ReplaceBatch writes b if the stored batch still has b.ETag and sets the
// new ETag; [ErrStale] when another writer got there first. It keeps the
// in-flight index: the row is written before a batch enters or stays in a
// non-terminal status and removed after it reaches a terminal one.
func (s *Store) ReplaceBatch(ctx context.Context, b *Batch) error {
	if b.ETag == "" {
		return fmt.Errorf("state: replace batch %s/%s: no ETag (read it first)", b.MigrationID, b.ID)
	}
	if err := checkBatchKeys(b.MigrationID, b.ID); err != nil {
		return err
	}
	b.Updated = s.now().UTC()
	data, err := s.indexedBatch(ctx, b)
	if err != nil {
		return err
	}
	etag := azcore.ETag(b.ETag)
	resp, err := s.batches.UpdateEntity(ctx, data, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	if isPrecondition(err) || isNotFound(err) {
		return fmt.Errorf("batch %s/%s: %w", b.MigrationID, b.ID, ErrStale)
	}
	if err != nil {
		return storageErr("update batch "+b.MigrationID+"/"+b.ID, err)
	}
	b.ETag = string(resp.ETag)
	if b.Status.Terminal() {
		return s.deleteInFlight(ctx, b.MigrationID, b.ID)
	}
	return nil
}

// ListBatches returns a migration's batches in id order.
func (s *Store) ListBatches(ctx context.Context, migrationID string) ([]*Batch, error) {
	if err := checkKey("migration id", migrationID); err != nil {
		return nil, err
	}
	var out []*Batch
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

const inflightPK = "inflight"

func (s *Store) putInFlight(ctx context.Context, r Ref) error {
	p := props{}
	p.setStr("MigrationID", r.MigrationID)
	p.setStr("BatchID", r.BatchID)
	p.setStr("ContainerID", r.ContainerID)
	p.setStr("State", r.Status)
	p.setTime("NextPollAt", r.NextPollAt)
	p.setTime("UpdatedAt", r.Updated)
	data, err := marshalEntity(inflightPK, r.MigrationID+"|"+r.BatchID, p)
	if err != nil {
		return err
	}
	if _, err := s.inflight.UpsertEntity(ctx, data, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return storageErr("index in-flight "+r.MigrationID+"/"+r.BatchID, err)
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
func (s *Store) InFlight(ctx context.Context, limit int) ([]Ref, error) {
	var out []Ref
	err := s.list(ctx, s.inflight, "PartitionKey eq "+quote(inflightPK), limit, func(e rawEntity) {
		out = append(out, Ref{
			MigrationID: e.p.str("MigrationID"), BatchID: e.p.str("BatchID"), ContainerID: e.p.str("ContainerID"),
			Status: e.p.str("State"), NextPollAt: e.p.time("NextPollAt"), Updated: e.p.time("UpdatedAt"),
		})
	})
	return out, err
}

// JobsInFlight counts, up to limit, the batches of containerID whose job is
// being created or running. The filter runs in the service, so the cost is
// the matching rows, not the whole index.
func (s *Store) JobsInFlight(ctx context.Context, containerID string, limit int) (int, error) {
	filter := "PartitionKey eq " + quote(inflightPK) + " and ContainerID eq " + quote(containerID) +
		" and (State eq " + quote(string(BatchRunning)) + " or State eq " + quote(string(BatchSubmitting)) + ")"
	n := 0
	err := s.list(ctx, s.inflight, filter, limit, func(rawEntity) { n++ })
	return n, err
}

// ForgetInFlight removes an index row if its batch (or, with batchID
// empty, migration) is terminal or does not exist; it leaves a live one's
// row alone.
func (s *Store) ForgetInFlight(ctx context.Context, migrationID, batchID string) error {
	var terminal bool
	var err error
	if batchID == "" {
		var m *Migration
		m, err = s.GetMigration(ctx, migrationID)
		terminal = err == nil && m.Status.Terminal()
	} else {
		var b *Batch
		b, err = s.GetBatch(ctx, migrationID, batchID)
		terminal = err == nil && b.Status.Terminal()
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err == nil && !terminal {
		return nil
	}
	return s.deleteInFlight(ctx, migrationID, batchID)
}
