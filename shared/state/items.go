package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// Outcome is what happened to one source item.
type Outcome string

// Outcomes. Pending items are planned but not yet known to be imported.
const (
	OutcomePending  Outcome = "pending"
	OutcomeImported Outcome = "imported"
	OutcomeRenamed  Outcome = "renamed" // imported under a different name; Reason says why
	OutcomeSkipped  Outcome = "skipped"
	OutcomeFailed   Outcome = "failed"
)

// Item is the per-item result row behind the CSV report.
type Item struct {
	MigrationID string
	// BatchID groups the item; items decided at planning time without a
	// batch (e.g. skipped by the naming policy) can use any id the pipeline
	// picks, such as "plan-000003".
	BatchID string
	// Seq orders items within the batch (and makes the row key).
	Seq        int64
	SourcePath string
	TargetPath string
	Size       int64
	Outcome    Outcome
	// Reason explains a rename, skip or failure in words a user can act on.
	Reason    string
	UpdatedAt time.Time
}

func itemRK(batchID string, seq int64) string { return fmt.Sprintf("%s|%09d", batchID, seq) }

func (it *Item) props() props {
	p := props{}
	p.setStr("BatchID", it.BatchID)
	p.setI64("Seq", it.Seq)
	p.setStr("SourcePath", it.SourcePath)
	p.setStr("TargetPath", it.TargetPath)
	p.setI64("Size", it.Size)
	p.setStr("Outcome", string(it.Outcome))
	p.setStr("Reason", it.Reason)
	p.setTime("UpdatedAt", it.UpdatedAt)
	return p
}

func itemFrom(e rawEntity) Item {
	p := e.p
	return Item{
		MigrationID: e.pk, BatchID: p.str("BatchID"), Seq: p.i64("Seq"),
		SourcePath: p.str("SourcePath"), TargetPath: p.str("TargetPath"), Size: p.i64("Size"),
		Outcome: Outcome(p.str("Outcome")), Reason: p.str("Reason"), UpdatedAt: p.time("UpdatedAt"),
	}
}

// PutItems writes (inserts or replaces) item rows, in transactions of up to
// 100 rows per migration. Writing the same items again is harmless.
func (s *Store) PutItems(ctx context.Context, items []Item) error {
	byMigration := map[string][]aztables.TransactionAction{}
	var order []string
	now := s.now().UTC()
	for i := range items {
		it := items[i]
		if err := errors.Join(checkKey("migration id", it.MigrationID), checkKey("batch id", it.BatchID)); err != nil {
			return err
		}
		if it.Outcome == "" {
			it.Outcome = OutcomePending
		}
		if it.UpdatedAt.IsZero() {
			it.UpdatedAt = now
		}
		if len(it.Reason) > maxStringProp {
			it.Reason = it.Reason[:maxStringProp]
		}
		data, err := marshalEntity(it.MigrationID, itemRK(it.BatchID, it.Seq), it.props())
		if err != nil {
			return err
		}
		if _, ok := byMigration[it.MigrationID]; !ok {
			order = append(order, it.MigrationID)
		}
		byMigration[it.MigrationID] = append(byMigration[it.MigrationID], aztables.TransactionAction{
			ActionType: aztables.TransactionTypeInsertReplace, Entity: data,
		})
	}
	for _, mid := range order {
		actions := byMigration[mid]
		for len(actions) > 0 {
			n := min(len(actions), 100)
			if _, err := s.items.SubmitTransaction(ctx, actions[:n], nil); err != nil {
				return storageErr("write items of migration "+mid, err)
			}
			actions = actions[n:]
		}
	}
	return nil
}

// ListItems returns up to n items of a migration (ordered by batch, then
// sequence) after pageToken ("" for the first page) and the next page's
// token ("" when done). Pages stay stable while items are rewritten.
func (s *Store) ListItems(ctx context.Context, migrationID, pageToken string, n int) ([]Item, string, error) {
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
	var out []Item
	last := ""
	err := s.list(ctx, s.items, filter, n, func(e rawEntity) {
		out = append(out, itemFrom(e))
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

// BatchItems returns all items of one batch in sequence order.
func (s *Store) BatchItems(ctx context.Context, migrationID, batchID string) ([]Item, error) {
	if err := errors.Join(checkKey("migration id", migrationID), checkKey("batch id", batchID)); err != nil {
		return nil, err
	}
	// '}' follows '|' in ASCII: the range covers exactly "batchID|…".
	filter := "PartitionKey eq " + quote(migrationID) +
		" and RowKey gt " + quote(batchID+"|") + " and RowKey lt " + quote(batchID+"}")
	var out []Item
	err := s.list(ctx, s.items, filter, 0, func(e rawEntity) { out = append(out, itemFrom(e)) })
	return out, err
}
