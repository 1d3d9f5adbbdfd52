package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// BatchItem is one source item planned into a batch.
type BatchItem struct {
	// Seq orders the items within the batch (and is the row key).
	Seq        int64
	SourcePath string
	TargetPath string
	Size       int64
	// Detail is the caller's own record of the item (e.g. the source
	// entry as JSON), stored as is; at most 32 KiB.
	Detail string
}

func itemsPK(migrationID, batchID string) string { return migrationID + "|" + batchID }

// PutBatchItems writes a batch's items (insert or replace, in transactions
// of 100). Writing the same items again is harmless, so write them before
// [Store.CreateBatch]: a crash in between leaves items without a batch,
// which the re-run overwrites.
func (s *Store) PutBatchItems(ctx context.Context, migrationID, batchID string, items []BatchItem) error {
	if err := errors.Join(checkKey("migration id", migrationID), checkKey("batch id", batchID)); err != nil {
		return err
	}
	pk := itemsPK(migrationID, batchID)
	actions := make([]aztables.TransactionAction, 0, len(items))
	for _, it := range items {
		if len(it.Detail) > maxStringProp {
			return fmt.Errorf("state: batch %s/%s item %d: detail is %d bytes; at most %d fit", migrationID, batchID, it.Seq, len(it.Detail), maxStringProp)
		}
		p := props{}
		p.setI64("Seq", it.Seq)
		p.setStr("SourcePath", it.SourcePath)
		p.setStr("TargetPath", it.TargetPath)
		p.setI64("Size", it.Size)
		p.setStr("Detail", it.Detail)
		data, err := marshalEntity(pk, fmt.Sprintf("%09d", it.Seq), p)
		if err != nil {
			return err
		}
		actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: data})
	}
	return s.submit(ctx, s.items, actions, "write items of batch "+migrationID+"/"+batchID)
}

// BatchItems returns a batch's items in sequence order.
func (s *Store) BatchItems(ctx context.Context, migrationID, batchID string) ([]BatchItem, error) {
	if err := errors.Join(checkKey("migration id", migrationID), checkKey("batch id", batchID)); err != nil {
		return nil, err
	}
	var out []BatchItem
	err := s.list(ctx, s.items, "PartitionKey eq "+quote(itemsPK(migrationID, batchID)), 0, func(e rawEntity) {
		out = append(out, BatchItem{
			Seq: e.p.i64("Seq"), SourcePath: e.p.str("SourcePath"), TargetPath: e.p.str("TargetPath"),
			Size: e.p.i64("Size"), Detail: e.p.str("Detail"),
		})
	})
	return out, err
}

// submit runs actions (all in one partition) in transactions of 100.
func (s *Store) submit(ctx context.Context, c *aztables.Client, actions []aztables.TransactionAction, op string) error {
	for len(actions) > 0 {
		n := min(len(actions), 100)
		if _, err := c.SubmitTransaction(ctx, actions[:n], nil); err != nil {
			return storageErr(op, err)
		}
		actions = actions[n:]
	}
	return nil
}

// Outcome is what happened to one source item.
type Outcome string

// Outcomes. The store keeps whatever outcome it is given; these are the
// ones the report documents.
const (
	OutcomePending   Outcome = "pending" // planned, not imported yet
	OutcomeImported  Outcome = "imported"
	OutcomeRenamed   Outcome = "renamed" // imported under another name; Reason says why
	OutcomeSkipped   Outcome = "skipped"
	OutcomeFailed    Outcome = "failed"
	OutcomeCancelled Outcome = "cancelled"
)

// Result is the per-item row behind the CSV report. Its key is
// (MigrationID, SourcePath, VersionID); writes replace.
type Result struct {
	MigrationID string
	SourcePath  string
	VersionID   string // empty for the current version
	TargetPath  string
	BatchID     string
	Size        int64
	Outcome     Outcome
	Renamed     bool
	// Reason explains a rename, skip or failure in words a user can act
	// on; it must not contain secrets (the store does not check).
	Reason    string
	UpdatedAt time.Time
}

func resultRK(sourcePath, versionID string) string {
	sum := sha256.Sum256([]byte(sourcePath + "\x00" + versionID))
	return hex.EncodeToString(sum[:])
}

// PutResults writes (inserts or replaces) per-item results, in
// transactions of up to 100 rows per migration.
func (s *Store) PutResults(ctx context.Context, results []Result) error {
	byMigration := map[string][]aztables.TransactionAction{}
	var order []string
	now := s.now().UTC()
	for _, r := range results {
		if err := checkKey("migration id", r.MigrationID); err != nil {
			return err
		}
		if r.SourcePath == "" {
			return fmt.Errorf("state: result in migration %s: SourcePath is empty", r.MigrationID)
		}
		if r.UpdatedAt.IsZero() {
			r.UpdatedAt = now
		}
		if len(r.Reason) > maxStringProp {
			r.Reason = r.Reason[:maxStringProp]
		}
		p := props{}
		p.setStr("SourcePath", r.SourcePath)
		p.setStr("VersionID", r.VersionID)
		p.setStr("TargetPath", r.TargetPath)
		p.setStr("BatchID", r.BatchID)
		p.setI64("Size", r.Size)
		p.setStr("Outcome", string(r.Outcome))
		p.setBool("Renamed", r.Renamed)
		p.setStr("Reason", r.Reason)
		p.setTime("UpdatedAt", r.UpdatedAt)
		data, err := marshalEntity(r.MigrationID, resultRK(r.SourcePath, r.VersionID), p)
		if err != nil {
			return err
		}
		if _, ok := byMigration[r.MigrationID]; !ok {
			order = append(order, r.MigrationID)
		}
		byMigration[r.MigrationID] = append(byMigration[r.MigrationID], aztables.TransactionAction{
			ActionType: aztables.TransactionTypeInsertReplace, Entity: data,
		})
	}
	for _, mid := range order {
		if err := s.submit(ctx, s.results, dedupeActions(byMigration[mid]), "write results of migration "+mid); err != nil {
			return err
		}
	}
	return nil
}

// dedupeActions keeps the last action per row key: a transaction may not
// touch one row twice.
func dedupeActions(actions []aztables.TransactionAction) []aztables.TransactionAction {
	seen := map[string]int{}
	out := actions[:0:0]
	for _, a := range actions {
		e, err := unmarshalEntity(a.Entity, "")
		if err != nil {
			out = append(out, a)
			continue
		}
		if i, ok := seen[e.rk]; ok {
			out[i] = a
			continue
		}
		seen[e.rk] = len(out)
		out = append(out, a)
	}
	return out
}

// ListResults returns up to n results of a migration after pageToken (""
// for the first page) and the next page's token ("" when done). The order
// is stable but not meaningful (rows are keyed by a hash).
func (s *Store) ListResults(ctx context.Context, migrationID, pageToken string, n int) ([]Result, string, error) {
	if err := checkKey("migration id", migrationID); err != nil {
		return nil, "", err
	}
	if n <= 0 || n > 1000 {
		n = 1000
	}
	filter := "PartitionKey eq " + quote(migrationID)
	if pageToken != "" {
		filter += " and RowKey gt " + quote(pageToken)
	}
	var out []Result
	last := ""
	err := s.list(ctx, s.results, filter, n, func(e rawEntity) {
		p := e.p
		out = append(out, Result{
			MigrationID: e.pk, SourcePath: p.str("SourcePath"), VersionID: p.str("VersionID"),
			TargetPath: p.str("TargetPath"), BatchID: p.str("BatchID"), Size: p.i64("Size"),
			Outcome: Outcome(p.str("Outcome")), Renamed: p.boolean("Renamed"), Reason: p.str("Reason"),
			UpdatedAt: p.time("UpdatedAt"),
		})
		last = e.rk
	})
	if err != nil {
		return nil, "", err
	}
	if len(out) < n {
		last = ""
	}
	return out, last, nil
}
