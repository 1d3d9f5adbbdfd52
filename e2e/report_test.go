package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/infra/local/localapp"
	"github.com/spemigrate/spemigrate/infra/local/sample"
)

// unresolvedDomain is a domain whose logins the Graph emulator does not
// resolve (Knobs.UnresolvedLogins, set in TestMain): SharePoint then uses
// System Account and warns.
const unresolvedDomain = "@former.contoso.com"

// The report's per-item columns after a migration with an author
// SharePoint could not resolve, and after verify runs (the CLI's, then
// the API's) with one file corrupted in the target: author outcome,
// verification with its run time, driveItem and list item ids, extension;
// report.csv and report.jsonl agree row by row; the migration shows its
// summary code and last verification.
func TestReportColumns(t *testing.T) {
	needApp(t)
	ctx := testContext(t, 4*time.Minute)
	tc := targetContainer("report")
	if err := app.Graph.AddContainer(tc); err != nil {
		t.Fatal(err)
	}
	seed(t, ctx, "e2e-report", []sample.File{
		{Path: "docs/alice.txt", Size: 300, Metadata: map[string]string{"author": "alice@contoso.com"}},
		{Path: "docs/gone.txt", Size: 200, Metadata: map[string]string{"author": "gone" + unresolvedDomain}},
		{Path: "docs/plain.md", Size: 100},
		{Path: "docs/a:b.txt", Size: 50},
		{Path: "docs/victim.bin", Size: 4096, Metadata: map[string]string{"author": "alice@contoso.com"}},
	})
	req := migrationRequest(t, "e2e-report-1", "e2e-report", tc.ID, "e2e/report")
	reqFile := writeRequest(t, req)
	m := waitMigration(t, ctx, startHTTP(t, ctx, req).ID)
	if m.Status != api.StatusCompleted || m.SummaryCode != api.SummarySucceededWithWarnings || m.Verified != nil {
		t.Fatalf("migration ended %s summary %s (%s), verification %+v; want completed, succeededWithWarnings, none", m.Status, m.SummaryCode, m.Reason, m.Verified)
	}
	items := reportBoth(t, ctx, m.ID)
	for p, it := range items {
		if it.Verification != "not-verified" || it.TargetItemID != "" || !it.VerifiedAt.IsZero() {
			t.Errorf("%s before any verify run: %q %q %v", p, it.Verification, it.TargetItemID, it.VerifiedAt)
		}
	}

	victim := "e2e/report/docs/victim.bin"
	overwrite(t, ctx, tc.ID, victim, 4096)
	out, err := runCLI(t, ctx, "verify", "-url", app.APIURL, "-request", reqFile, "-graph-url", app.GraphURL,
		"-graph-ca-file", app.GraphCAFile, "-graph-token", localapp.GraphToken, "-sample", "1", m.ID)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(out, "result:   FAILED") {
		t.Fatalf("CLI verify with a corrupted file and a replaced author: %v\n%s", err, out)
	}
	t.Logf("CLI verify:\n%s", out)
	first := checkReportColumns(t, ctx, m.ID, time.Time{})

	// The API's run replaces the CLI's.
	v := apiVerify(t, ctx, m.ID)
	if v.OK || !v.VerifiedAt.After(first) {
		t.Fatalf("POST verify: ok %v at %v (the CLI's run was at %v)", v.OK, v.VerifiedAt, first)
	}
	if second := checkReportColumns(t, ctx, m.ID, v.VerifiedAt); !second.Equal(v.VerifiedAt) {
		t.Errorf("report's verified_at %v, the API run's %v", second, v.VerifiedAt)
	}
	for _, f := range []string{"report.csv", "report.jsonl"} {
		_, body := call(t, ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(m.ID)+"/"+f, nil, nil)
		t.Logf("%s:\n%s", f, body)
	}
}

// checkReportColumns asserts every row's new columns after a verify run
// (at, when known) and returns the run's time.
func checkReportColumns(t *testing.T, ctx context.Context, id string, at time.Time) time.Time {
	t.Helper()
	items := reportBoth(t, ctx, id)
	type want struct{ outcome, author, login, fallback, verification, problem, ext string }
	const alice = "i:0#.f|membership|alice@contoso.com"
	wants := map[string]want{
		"docs/alice.txt":  {"imported", "mapped", alice, "", "passed", "", ".txt"},
		"docs/gone.txt":   {"imported", "fallback", "i:0#.f|membership|gone" + unresolvedDomain, "System Account", "failed", "created by", ".txt"},
		"docs/plain.md":   {"imported", "not-applicable", "", "", "passed", "", ".md"},
		"docs/a:b.txt":    {"renamed", "not-applicable", "", "", "passed", "", ".txt"},
		"docs/victim.bin": {"imported", "mapped", alice, "", "failed", "content differs", ".bin"},
	}
	if len(items) != len(wants) {
		t.Fatalf("%d report rows, want %d: %v", len(items), len(wants), items)
	}
	ids := map[string]bool{}
	for p, w := range wants {
		it, ok := items[p]
		if !ok {
			t.Fatalf("no report row for %s", p)
		}
		got := want{it.Outcome, it.AuthorOutcome, it.AuthorLogin, it.AuthorFallback, it.Verification, "", it.Extension}
		if w.problem != "" && strings.Contains(it.VerificationReason, w.problem) {
			got.problem = w.problem
		}
		if got != w {
			t.Errorf("%s: %+v (reason %q), want %+v", p, got, it.VerificationReason, w)
		}
		if n, err := strconv.Atoi(it.TargetListItemID); err != nil || n <= 0 || it.TargetItemID == "" || ids[it.TargetItemID] {
			t.Errorf("%s: target item id %q, list item id %q", p, it.TargetItemID, it.TargetListItemID)
		}
		ids[it.TargetItemID] = true
		if at.IsZero() {
			at = it.VerifiedAt
		}
		if it.VerifiedAt.IsZero() || !it.VerifiedAt.Equal(at) {
			t.Errorf("%s: verified at %v, want the run's %v", p, it.VerifiedAt, at)
		}
	}
	st, body := call(t, ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(id), nil, nil)
	var m api.Migration
	if st != http.StatusOK || json.Unmarshal(body, &m) != nil {
		t.Fatalf("GET migration: %d %s", st, body)
	}
	if v := m.Verified; v == nil || !v.At.Equal(at) || v.Passed != 3 || v.Failed != 2 || v.Missing != 0 {
		t.Errorf("migration's verification %+v, want the run at %v: 3 passed, 2 failed", v, at)
	}
	return at
}

// reportBoth reads report.csv and report.jsonl, checks that they hold the
// same rows with the same values, and returns the rows by source path.
func reportBoth(t *testing.T, ctx context.Context, id string) map[string]api.Item {
	t.Helper()
	base := "/api/migrations/" + url.PathEscape(id)
	st, body := call(t, ctx, http.MethodGet, base+"/report.jsonl", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("report.jsonl: %d %s", st, body)
	}
	items := map[string]api.Item{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var it api.Item
		if err := json.Unmarshal(sc.Bytes(), &it); err != nil {
			t.Fatalf("report.jsonl line %q: %v", sc.Text(), err)
		}
		items[it.SourcePath] = it
	}
	st, body = call(t, ctx, http.MethodGet, base+"/report.csv", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("report.csv: %d %s", st, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(api.ReportHeader, ",") {
		t.Fatalf("report.csv header %v: %v", rows, err)
	}
	if len(rows)-1 != len(items) {
		t.Fatalf("report.csv has %d rows, report.jsonl %d", len(rows)-1, len(items))
	}
	for _, r := range rows[1:] {
		cell := map[string]string{}
		for i, h := range rows[0] {
			cell[h] = r[i]
		}
		it, ok := items[cell["source_path"]]
		if !ok {
			t.Fatalf("report.csv row %v is not in report.jsonl", r)
		}
		verifiedAt := ""
		if !it.VerifiedAt.IsZero() {
			verifiedAt = it.VerifiedAt.UTC().Format(time.RFC3339Nano)
		}
		jsonl := map[string]string{
			"target_path": it.TargetPath, "outcome": it.Outcome, "size": strconv.FormatInt(it.Size, 10),
			"manifest_id": it.ManifestID, "job_id": it.JobID,
			"target_item_id": it.TargetItemID, "target_list_item_id": it.TargetListItemID,
			"author_outcome": it.AuthorOutcome, "author_login": it.AuthorLogin, "author_fallback": it.AuthorFallback,
			"verification": it.Verification, "verification_reason": it.VerificationReason, "verified_at": verifiedAt,
			"extension": it.Extension,
		}
		for col, want := range jsonl {
			if cell[col] != want {
				t.Errorf("%s: report.csv %s = %q, report.jsonl %q", it.SourcePath, col, cell[col], want)
			}
		}
	}
	return items
}

// overwrite replaces a target file's bytes (same length) through the
// emulator's admin endpoint, so only the content checks can tell.
func overwrite(t *testing.T, ctx context.Context, containerID, targetPath string, size int) {
	t.Helper()
	g, err := app.GraphReader()
	if err != nil {
		t.Fatal(err)
	}
	u := app.GraphAdminURL + "/content?" + url.Values{"container": {containerID}, "path": {targetPath}}.Encode()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(bytes.Repeat([]byte{0x5A}, size)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := g.Client.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("overwrite %q: %s", targetPath, resp.Status)
	}
}
