package chaos

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/localapp"
	"github.com/spemigrate/spemigrate/infra/local/sample"
	"github.com/spemigrate/spemigrate/infra/local/secretscan"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/verify"
)

// verify checks the run's invariants and returns the number of files read
// back and compared.
func (r *run) verify(ctx context.Context, m api.Migration, blobs []sample.Blob) int {
	t := r.t
	if m.Status != api.StatusCompleted {
		t.Fatalf("migration ended %s (%s), want completed; counters %+v%s", m.Status, m.Reason, m.Counters, batchLines(m))
	}
	st, body, err := r.call(ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(m.ID)+"/report.csv", nil)
	if err != nil || st != http.StatusOK {
		t.Fatalf("report.csv: %d %v", st, err)
	}
	rows, err := verify.ParseReport(body)
	if err != nil {
		t.Fatal(err)
	}
	if st, _, err := r.call(ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(m.ID)+"/report.jsonl", nil); err != nil || st != http.StatusOK {
		t.Fatalf("report.jsonl: %d %v", st, err)
	}
	g, err := r.app.GraphReader()
	if err != nil {
		t.Fatal(err)
	}
	res, err := verify.Check(ctx, verify.Options{
		Graph: g, DriveID: graphemu.DefaultContainer().ID, Folder: "chaos", Source: blobs, Report: rows,
		Times: true, Authors: true, Exclusive: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Error(err)
	}
	if res.Checked != len(blobs) {
		t.Errorf("verified %d files through the drive endpoints, want %d", res.Checked, len(blobs))
	}
	r.checkReport(rows, len(blobs))
	r.checkCounters(m, blobs)
	r.checkJobs(m)
	return res.Checked
}

func batchLines(m api.Migration) string {
	var b strings.Builder
	for _, x := range m.Batches {
		fmt.Fprintf(&b, "\n  batch %s: %s attempt %d job %s: %s", x.ID, x.Status, x.Attempt, x.JobID, x.Reason)
	}
	return b.String()
}

// checkReport: one row per file, each imported, none pending.
func (r *run) checkReport(rows []verify.Row, files int) {
	outcomes := map[string]int{}
	for _, row := range rows {
		outcomes[row.Outcome]++
	}
	if len(rows) != files || outcomes[api.OutcomeImported] != files {
		r.t.Errorf("report: %d rows with outcomes %v, want %d imported", len(rows), outcomes, files)
	}
	if n := outcomes[api.OutcomePending]; n != 0 {
		r.t.Errorf("report: %d items still pending", n)
	}
}

// checkCounters: the migration's counters equal what is in the target.
func (r *run) checkCounters(m api.Migration, blobs []sample.Blob) {
	var bytes int64
	for _, b := range blobs {
		bytes += b.Size
	}
	var batchFiles int64
	for _, b := range m.Batches {
		batchFiles += b.FilesMigrated
		if b.Status != "succeeded" {
			r.t.Errorf("batch %s is %s", b.ID, b.Status)
		}
	}
	c, n := m.Counters, int64(len(blobs))
	want := api.Counters{
		Entries: n, Items: n, BytesPlanned: bytes, PlanDone: true,
		Batches: int64(len(m.Batches)), BatchesDone: int64(len(m.Batches)),
		FilesMigrated: n, BytesMigrated: bytes,
	}
	got := c
	got.Errors, got.Warnings = 0, 0 // not a count of files; checked below
	if got != want {
		r.t.Errorf("counters\n got %+v\nwant %+v", c, want)
	}
	// The strict profile adds PhantomErrors to each job's totalErrors with
	// no error event and no log line; the engine reconciles them from the
	// import log (every batch succeeded, above), and the counter keeps
	// SharePoint's own figure. Anything beyond that is a real error.
	if phantom := stack.DefaultGraphKnobs().PhantomErrors * int64(len(m.Batches)); c.Errors != phantom {
		r.t.Errorf("counters: %d import errors, want the %d the emulator counts without naming any item", c.Errors, phantom)
	}
	if batchFiles != n {
		r.t.Errorf("batches' filesMigrated add up to %d, want %d", batchFiles, n)
	}
}

// checkJobs: every batch attempt committed at most one job and each
// batch's last attempt exactly one, the one it recorded; no job is left
// queued or running. Each attempt stages its own package (one provisioning,
// one data container), so two committed jobs over one data container are
// two imports of one attempt. A job whose id a crash lost belongs to an
// attempt the engine counted as failed (Engine.Submit), so committed jobs
// may number fewer than attempts but never more.
func (r *run) checkJobs(m api.Migration) {
	jobs := r.app.Graph.Jobs(graphemu.DefaultContainer().ID)
	committed := map[string]bool{}
	perPackage := map[string]int{}
	states := map[string]int{}
	for _, j := range jobs {
		states[j.State]++
		if j.State == "finished" && !j.Cancelled {
			committed[j.ID] = true
			perPackage[j.DataContainer]++
		}
	}
	for pkg, n := range perPackage {
		if n > 1 {
			r.t.Errorf("%d committed jobs imported the package in data container %s, want at most one", n, pkg)
		}
	}
	attempts := 0
	seen := map[string]bool{}
	for _, b := range m.Batches {
		attempts += b.Attempt
		if !committed[b.JobID] || seen[b.JobID] {
			r.t.Errorf("batch %s (attempt %d) recorded job %q, which is not a committed job of its own (%v)", b.ID, b.Attempt, b.JobID, states)
		}
		seen[b.JobID] = true
	}
	if len(committed) > attempts || len(committed) < len(m.Batches) {
		r.t.Errorf("the emulator committed %d jobs for %d batches in %d attempts (job states %v)", len(committed), len(m.Batches), attempts, states)
	}
	if states["queued"]+states["processing"] != 0 {
		r.t.Errorf("jobs still queued or running after the migration ended: %v", states)
	}
	r.t.Logf("jobs: %v, %d committed for %d batches in %d attempts", states, len(committed), len(m.Batches), attempts)
}

// scanSecrets searches every log line, API response and table row of the
// run for SAS signatures, keys and tokens.
func (r *run) scanSecrets(ctx context.Context, id string) {
	t := r.t
	secrets := append(r.app.Graph.IssuedSecrets(), r.stateKey, stack.AzuriteKey, stack.ServiceBusKey, localapp.GraphToken)
	if sas, err := r.app.ContainerSASURL("chaos-src", 0); err == nil {
		if u, err := url.Parse(sas); err == nil {
			secrets = append(secrets, u.Query().Get("sig"))
		}
	}
	sc := &secretscan.Scanner{Secrets: secrets}
	sc.Scan("logs", r.logs.String())
	r.mu.Lock()
	for _, f := range r.responses {
		sc.Scan(f.what, string(f.body))
	}
	r.mu.Unlock()
	rows := r.scanTables(ctx, sc)
	for _, f := range sc.Findings() {
		t.Errorf("secret scan: %s", f)
	}
	if len(r.app.Graph.IssuedSecrets()) == 0 || rows == 0 {
		t.Errorf("secret scan: %d issued secrets, %d table rows; the scan had nothing to search", len(r.app.Graph.IssuedSecrets()), rows)
	}
	t.Logf("secret scan: %d KiB of logs, responses and %d table rows searched for %d known secrets and the credential patterns", sc.Scanned()/1024, rows, len(secrets))
}

// scanTables feeds every row of every table in Azurite to the scanner.
func (r *run) scanTables(ctx context.Context, sc *secretscan.Scanner) int {
	svc, err := aztables.NewServiceClientFromConnectionString(r.app.StorageConnectionString, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	rows := 0
	tp := svc.NewListTablesPager(nil)
	for tp.More() {
		page, err := tp.NextPage(ctx)
		if err != nil {
			r.t.Fatalf("list tables: %v", err)
		}
		for _, tb := range page.Tables {
			pg := svc.NewClient(*tb.Name).NewListEntitiesPager(nil)
			for pg.More() {
				resp, err := pg.NextPage(ctx)
				if err != nil {
					r.t.Fatalf("table %s: %v", *tb.Name, err)
				}
				for _, ent := range resp.Entities {
					sc.Scan("table "+*tb.Name, string(ent))
					rows++
				}
			}
		}
	}
	return rows
}
