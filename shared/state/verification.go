package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// VerificationRecord is one item's result in a verify run, to be recorded
// on its result row: the row's key, the ETag it was read with and the
// result.
type VerificationRecord struct {
	SourcePath, VersionID string
	// ETag is the result row's ETag as read (ItemResult.ETag); the write is
	// conditional on it. Empty: conditional on the row existing only (a
	// caller that did not read the rows, such as an upload of a run made
	// elsewhere); a concurrent run's rows are then told apart by their
	// time (see [VerificationOf]).
	ETag string
	ItemVerification
}

func itemVerificationProps(p props, v ItemVerification) {
	p.setStr("VerifyStatus", v.Status)
	p.setStr("VerifyReason", truncate(v.Reason))
	p.setTime("VerifiedAt", v.At)
	p.setStr("TargetItemID", v.TargetItemID)
	p.setStr("TargetListItemID", v.TargetListItemID)
}

func itemVerificationFrom(p props) ItemVerification {
	return ItemVerification{Status: p.str("VerifyStatus"), Reason: p.str("VerifyReason"), At: p.time("VerifiedAt"),
		TargetItemID: p.str("TargetItemID"), TargetListItemID: p.str("TargetListItemID")}
}

func verificationProps(p props, v VerificationSummary) {
	p.setTime("VerifiedAt", v.At)
	p.setI64("VerifyPassed", v.Passed)
	p.setI64("VerifyFailed", v.Failed)
	p.setI64("VerifyMissing", v.Missing)
	p.setI64("VerifyNotCompared", v.NotCompared)
}

func verificationFrom(p props) VerificationSummary {
	return VerificationSummary{At: p.time("VerifiedAt"), Passed: p.i64("VerifyPassed"), Failed: p.i64("VerifyFailed"),
		Missing: p.i64("VerifyMissing"), NotCompared: p.i64("VerifyNotCompared")}
}

// PutVerifications records a verify run's per-item results on the result
// rows of migration id, replacing an earlier run's. The rows are merged
// (the engine's columns are kept) in transactions of 100, each merge
// conditional on the ETag the row was read with. A transaction that fails
// (a row changed since: another verify run, or the engine wrote it again)
// is redone row by row on fresh reads, where a row holding a later run's
// result is left alone and a row that no longer exists is skipped.
func (s *Store) PutVerifications(ctx context.Context, id string, recs []VerificationRecord) error {
	if err := checkKey("migration id", id); err != nil {
		return err
	}
	for len(recs) > 0 {
		n := min(len(recs), 100)
		chunk := recs[:n]
		recs = recs[n:]
		actions, err := verificationActions(id, chunk)
		if err != nil {
			return err
		}
		_, err = s.results.SubmitTransaction(ctx, dedupeActions(actions), nil)
		if err == nil {
			continue
		}
		var re *azcore.ResponseError
		if !errors.As(err, &re) {
			return storageErr("record verification of migration "+id, err)
		}
		for _, r := range chunk {
			if err := s.putVerification(ctx, id, r); err != nil {
				return err
			}
		}
	}
	return nil
}

func verificationActions(id string, recs []VerificationRecord) ([]aztables.TransactionAction, error) {
	actions := make([]aztables.TransactionAction, 0, len(recs))
	for _, r := range recs {
		if r.SourcePath == "" || r.At.IsZero() {
			return nil, fmt.Errorf("state: verification in migration %s: a record needs the result row's source path and the run's time", id)
		}
		p := props{}
		itemVerificationProps(p, r.ItemVerification)
		data, err := marshalEntity(id, resultRK(r.SourcePath, r.VersionID), p)
		if err != nil {
			return nil, err
		}
		etag := azcore.ETagAny
		if r.ETag != "" {
			etag = azcore.ETag(r.ETag)
		}
		actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeUpdateMerge, Entity: data, IfMatch: &etag})
	}
	return actions, nil
}

// putVerification records one item on a fresh read, conditionally, until
// it is written, a later run's result is found, or the row is gone.
func (s *Store) putVerification(ctx context.Context, id string, r VerificationRecord) error {
	rk := resultRK(r.SourcePath, r.VersionID)
	op := "record verification of " + id + "/" + r.SourcePath
	for range MaxRaces {
		e, found, err := getRaw(ctx, s.results, id, rk, op)
		if err != nil || !found {
			return err
		}
		if cur := itemVerificationFrom(e.p); cur.At.After(r.At) {
			return nil
		}
		p := props{}
		itemVerificationProps(p, r.ItemVerification)
		data, err := marshalEntity(id, rk, p)
		if err != nil {
			return err
		}
		_, err = s.results.UpdateEntity(ctx, data, &aztables.UpdateEntityOptions{IfMatch: &e.etag, UpdateMode: aztables.UpdateModeMerge})
		switch {
		case err == nil, isNotFound(err):
			return nil
		case !isPrecondition(err):
			return storageErr(op, err)
		}
	}
	return fmt.Errorf("%s: %w", op, ErrContended)
}

// PutVerificationSummary records a verify run's summary on migration id
// unless a later run's is stored. It merges only the summary's
// properties, conditional on the row's ETag, so the engine's columns
// (and Updated) are left as they are.
func (s *Store) PutVerificationSummary(ctx context.Context, id string, v VerificationSummary) error {
	if err := checkKey("migration id", id); err != nil {
		return err
	}
	op := "record verification of " + id
	for range MaxRaces {
		e, found, err := getRaw(ctx, s.migrations, id, migrationRK, op)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("migration %s: %w", id, ErrNotFound)
		}
		if cur := verificationFrom(e.p); cur.At.After(v.At) {
			return nil
		}
		p := props{}
		verificationProps(p, v)
		// Zero counts are left out of a bag; a merge must still clear them.
		for _, k := range []string{"VerifyPassed", "VerifyFailed", "VerifyMissing", "VerifyNotCompared"} {
			if _, ok := p[k]; !ok {
				p[k] = aztables.EDMInt64(0)
			}
		}
		data, err := marshalEntity(id, migrationRK, p)
		if err != nil {
			return err
		}
		_, err = s.migrations.UpdateEntity(ctx, data, &aztables.UpdateEntityOptions{IfMatch: &e.etag, UpdateMode: aztables.UpdateModeMerge})
		switch {
		case err == nil:
			return nil
		case isNotFound(err):
			return fmt.Errorf("migration %s: %w", id, ErrNotFound)
		case !isPrecondition(err):
			return storageErr(op, err)
		}
	}
	return fmt.Errorf("%s: %w", op, ErrContended)
}

// VerificationOf is an item's verification as of the migration's last
// verify run: its stored result if that run wrote it, otherwise none (a
// row left from an earlier run, or not checked, is not verified now).
func VerificationOf(r ItemResult, last VerificationSummary) ItemVerification {
	if r.Verification.Status == "" || last.At.IsZero() || !r.Verification.At.Equal(last.At) {
		return ItemVerification{Status: VerifyNone}
	}
	return r.Verification
}

// NewVerificationRun is the time that identifies a verify run, at a
// precision that survives a round trip through the store and JSON.
func NewVerificationRun(now time.Time) time.Time { return now.UTC().Truncate(time.Millisecond) }
