package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/spemigrate/spemigrate/shared/source"
)

func itemsPK(migrationID, batchID string) string { return migrationID + "|" + batchID }

// itemDetail is the part of an Item stored as JSON (its source versions and
// naming notes).
type itemDetail struct {
	Versions     []source.Entry `json:"versions"`
	Renamed      bool           `json:"renamed,omitempty"`
	NamingReason string         `json:"namingReason,omitempty"`
	StageError   string         `json:"stageError,omitempty"`
}

// PutBatchItems writes a batch's items (insert or replace, in transactions
// of 100), in order: the row key is the item's index. Writing the same
// items again is harmless; staging rewrites them to record StageError.
func (s *Store) PutBatchItems(ctx context.Context, migrationID, batchID string, items []Item) error {
	if err := checkBatchKeys(migrationID, batchID); err != nil {
		return err
	}
	pk := itemsPK(migrationID, batchID)
	actions := make([]aztables.TransactionAction, 0, len(items))
	for i, it := range items {
		d, err := json.Marshal(itemDetail{Versions: it.Versions, Renamed: it.Renamed, NamingReason: it.NamingReason, StageError: it.StageError})
		if err != nil {
			return fmt.Errorf("state: batch %s/%s item %d: %w", migrationID, batchID, i, err)
		}
		if len(d) > maxStringProp {
			return fmt.Errorf("state: batch %s/%s item %d (%s): %d bytes of versions and notes; at most %d fit", migrationID, batchID, i, it.Path, len(d), maxStringProp)
		}
		p := props{}
		p.setI64("Seq", int64(i))
		p.setStr("SourcePath", it.Path)
		p.setStr("TargetPath", it.Target)
		p.setI64("Size", it.Size())
		p.setStr("Detail", string(d))
		data, err := marshalEntity(pk, fmt.Sprintf("%09d", i), p)
		if err != nil {
			return err
		}
		actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: data})
	}
	return s.submit(ctx, s.items, actions, "write items of batch "+migrationID+"/"+batchID)
}

// BatchItems returns a batch's items in order.
func (s *Store) BatchItems(ctx context.Context, migrationID, batchID string) ([]Item, error) {
	if err := checkBatchKeys(migrationID, batchID); err != nil {
		return nil, err
	}
	var out []Item
	var derr error
	err := s.list(ctx, s.items, "PartitionKey eq "+quote(itemsPK(migrationID, batchID)), 0, func(e rawEntity) {
		var d itemDetail
		if err := json.Unmarshal([]byte(e.p.str("Detail")), &d); err != nil {
			derr = errors.Join(derr, fmt.Errorf("state: batch %s/%s item %s: detail: %w", migrationID, batchID, e.rk, err))
			return
		}
		out = append(out, Item{Path: e.p.str("SourcePath"), Target: e.p.str("TargetPath"), Versions: d.Versions,
			Renamed: d.Renamed, NamingReason: d.NamingReason, StageError: d.StageError})
	})
	return out, errors.Join(err, derr)
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

func resultRK(sourcePath, versionID string) string {
	sum := sha256.Sum256([]byte(sourcePath + "\x00" + versionID))
	return hex.EncodeToString(sum[:])
}

// PutResults writes (inserts or replaces) per-item results, in
// transactions of up to 100 rows per migration.
func (s *Store) PutResults(ctx context.Context, results []ItemResult) error {
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
		if r.Updated.IsZero() {
			r.Updated = now
		}
		if len(r.Reason) > maxStringProp {
			r.Reason = r.Reason[:maxStringProp]
		}
		p := resultProps(r)
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
func (s *Store) ListResults(ctx context.Context, migrationID, pageToken string, n int) ([]ItemResult, string, error) {
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
	var out []ItemResult
	last := ""
	err := s.list(ctx, s.results, filter, n, func(e rawEntity) {
		out = append(out, resultFrom(e))
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

// resultProps and resultFrom are the result row's codec.
func resultProps(r ItemResult) props {
	p := props{}
	p.setStr("SourcePath", r.SourcePath)
	p.setStr("VersionID", r.VersionID)
	p.setStr("TargetPath", r.TargetPath)
	p.setStr("BatchID", r.BatchID)
	p.setI64("Size", r.Size)
	p.setStr("Outcome", string(r.Outcome))
	p.setBool("Renamed", r.Renamed)
	p.setStr("Reason", r.Reason)
	p.setStr("SourceETag", r.SourceETag)
	p.setStr("ManifestID", r.ManifestID)
	p.setStr("JobID", r.JobID)
	p.setI64("Attempt", int64(r.Attempt))
	p.setStr("ResultCode", r.ResultCode)
	p.setStr("AuthorOutcome", string(r.AuthorOutcome))
	p.setStr("AuthorLogin", r.AuthorLogin)
	p.setStr("AuthorFallback", r.AuthorFallback)
	itemVerificationProps(p, r.Verification)
	p.setTime("Updated", r.Updated)
	return p
}

func resultFrom(e rawEntity) ItemResult {
	p := e.p
	return ItemResult{
		MigrationID: e.pk, SourcePath: p.str("SourcePath"), VersionID: p.str("VersionID"),
		TargetPath: p.str("TargetPath"), BatchID: p.str("BatchID"), Size: p.i64("Size"),
		Outcome: Outcome(p.str("Outcome")), Renamed: p.boolean("Renamed"), Reason: p.str("Reason"),
		SourceETag: p.str("SourceETag"), ManifestID: p.str("ManifestID"), JobID: p.str("JobID"),
		Attempt: int(p.i64("Attempt")), ResultCode: p.str("ResultCode"),
		AuthorOutcome: AuthorOutcome(p.str("AuthorOutcome")), AuthorLogin: p.str("AuthorLogin"),
		AuthorFallback: p.str("AuthorFallback"), Verification: itemVerificationFrom(p),
		Updated: p.time("Updated"), ETag: string(e.etag),
	}
}
