package state

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Verify runs are recorded on the result rows without touching the
// engine's columns; a later run replaces an earlier one, an earlier run
// arriving late (its rows read before the later run wrote) does not
// overwrite it, and a re-written result row drops its verification.
func TestPutVerifications(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	m := &Migration{ID: "mv", ContainerID: "b!c", Status: MigrationCompleted}
	if err := s.CreateMigration(ctx, m); err != nil {
		t.Fatal(err)
	}
	var rs []ItemResult
	for i := range 150 { // two transactions
		rs = append(rs, ItemResult{MigrationID: "mv", SourcePath: fmt.Sprintf("f%03d.txt", i), TargetPath: fmt.Sprintf("T/f%03d.txt", i),
			Outcome: OutcomeImported, JobID: "job-1", AuthorOutcome: AuthorFallback, AuthorLogin: "i:0#.f|membership|x@former.example", AuthorFallback: FallbackSystemAccount})
	}
	if err := s.PutResults(ctx, rs); err != nil {
		t.Fatal(err)
	}
	read := func() map[string]ItemResult {
		out := map[string]ItemResult{}
		got, _, err := s.ListResults(ctx, "mv", "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got {
			out[r.SourcePath] = r
		}
		return out
	}
	records := func(rows map[string]ItemResult, at time.Time, status string) []VerificationRecord {
		var out []VerificationRecord
		for _, r := range rows {
			out = append(out, VerificationRecord{SourcePath: r.SourcePath, ETag: r.ETag,
				ItemVerification: ItemVerification{Status: status, Reason: status + " reason", At: at, TargetItemID: "01" + r.SourcePath, TargetListItemID: "1001"}})
		}
		return out
	}
	first := NewVerificationRun(time.Now())
	stale := read() // read before the first run wrote: its ETags are old afterwards
	if err := s.PutVerifications(ctx, "mv", records(stale, first, VerifyPassed)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutVerificationSummary(ctx, "mv", VerificationSummary{At: first, Passed: 150}); err != nil {
		t.Fatal(err)
	}
	got := read()
	r := got["f007.txt"]
	if r.Verification.Status != VerifyPassed || !r.Verification.At.Equal(first) || r.Verification.TargetItemID != "01f007.txt" ||
		r.JobID != "job-1" || r.AuthorOutcome != AuthorFallback || r.AuthorFallback != FallbackSystemAccount {
		t.Fatalf("after the first run: %+v", r)
	}
	mm, err := s.GetMigration(ctx, "mv")
	if err != nil || !mm.Verification.At.Equal(first) || mm.Verification.Passed != 150 || mm.Status != MigrationCompleted {
		t.Fatalf("migration after the first run: %+v, %v", mm, err)
	}
	if v := VerificationOf(r, mm.Verification); v.Status != VerifyPassed {
		t.Errorf("VerificationOf = %+v", v)
	}

	second := first.Add(time.Second)
	if err := s.PutVerifications(ctx, "mv", records(got, second, VerifyFailed)); err != nil {
		t.Fatal(err)
	}
	// An older run whose reads predate both writes: refused row by row.
	if err := s.PutVerifications(ctx, "mv", records(stale, first.Add(-time.Second), VerifyMissing)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutVerificationSummary(ctx, "mv", VerificationSummary{At: second, Failed: 150}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutVerificationSummary(ctx, "mv", VerificationSummary{At: first, Passed: 150}); err != nil {
		t.Fatal(err)
	}
	got = read()
	for p, r := range got {
		if r.Verification.Status != VerifyFailed || !r.Verification.At.Equal(second) {
			t.Fatalf("%s after the second run and a late older one: %+v", p, r.Verification)
		}
	}
	mm, _ = s.GetMigration(ctx, "mv")
	if !mm.Verification.At.Equal(second) || mm.Verification.Failed != 150 || mm.Verification.Passed != 0 {
		t.Errorf("summary after a late older run: %+v", mm.Verification)
	}
	// The engine writing the row again (a new import) clears it.
	if err := s.PutResults(ctx, rs[:1]); err != nil {
		t.Fatal(err)
	}
	r = read()["f000.txt"]
	if r.Verification.Status != "" || VerificationOf(r, mm.Verification).Status != VerifyNone {
		t.Errorf("re-written row keeps %+v", r.Verification)
	}
	if VerificationOf(got["f001.txt"], VerificationSummary{At: first}).Status != VerifyNone {
		t.Errorf("a row of another run than the summary's shows as verified")
	}
	// An upload without ETags writes existing rows only: no row is created
	// for a path the migration does not have.
	third := second.Add(time.Second)
	up := []VerificationRecord{
		{SourcePath: "f002.txt", ItemVerification: ItemVerification{Status: VerifyPassed, At: third}},
		{SourcePath: "nope.txt", ItemVerification: ItemVerification{Status: VerifyPassed, At: third}},
	}
	if err := s.PutVerifications(ctx, "mv", up); err != nil {
		t.Fatal(err)
	}
	got = read()
	if _, ok := got["nope.txt"]; ok || len(got) != 150 {
		t.Errorf("an upload created a row: %d rows", len(got))
	}
	if v := got["f002.txt"].Verification; v.Status != VerifyPassed || !v.At.Equal(third) {
		t.Errorf("uploaded row: %+v", v)
	}
}
