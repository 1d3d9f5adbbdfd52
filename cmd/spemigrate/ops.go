package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spemigrate/spemigrate/handlers/api"
)

// errNotSucceeded makes the exit code non-zero when a watched migration
// ends in anything but completed.
var errNotSucceeded = errors.New("migration did not complete successfully")

// Exit codes of a command that waits for a migration (watch, submit
// --watch), by the migration's summary code (docs/api.md); 1 is any other
// failure and 2 a usage error.
const (
	exitPartial   = 3
	exitFailed    = 4
	exitCancelled = 5
)

// migrationEnd is a watched migration that ended without succeeding.
type migrationEnd struct{ status, summary string }

func (e *migrationEnd) Error() string {
	return fmt.Sprintf("%v: %s (summary %s)", errNotSucceeded, e.status, e.summary)
}
func (e *migrationEnd) Unwrap() error { return errNotSucceeded }

// exitCode is the process exit code for the migration's end.
func (e *migrationEnd) exitCode() int {
	switch e.summary {
	case api.SummaryPartial:
		return exitPartial
	case api.SummaryCancelled:
		return exitCancelled
	}
	return exitFailed
}

// summaryCode is the migration's summary code, derived from its status
// when the API is older than summary codes.
func summaryCode(m api.Migration) string {
	if m.SummaryCode != "" {
		return m.SummaryCode
	}
	switch m.Status {
	case api.StatusCompleted:
		return api.SummarySucceeded
	case api.StatusCompletedWithErrors:
		return api.SummaryPartial
	case api.StatusFailed:
		return api.SummaryFailed
	case api.StatusCancelled:
		return api.SummaryCancelled
	}
	return api.SummaryRunning
}

// succeeded reports whether a summary code is one of the successes.
func succeeded(code string) bool {
	return code == api.SummarySucceeded || code == api.SummarySucceededWithRenames || code == api.SummarySucceededWithWarnings
}

func apiCommand(name string, args []string, stderr io.Writer, usage string, extra func(fs *flag.FlagSet)) (*apiClient, *flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage+"\nFlags:\n"); fs.PrintDefaults() }
	base, key := apiFlags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	c, err := newAPIClient(*base, *key)
	return c, fs, err
}

func oneID(fs *flag.FlagSet) (string, error) {
	if fs.NArg() != 1 {
		return "", fmt.Errorf("expected one migration id, got %d arguments", fs.NArg())
	}
	return fs.Arg(0), nil
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var limit *int
	c, fs, err := apiCommand("status", args, stderr, "Usage: spemigrate status [ID]\n\nWithout an id, lists recent migrations; with one, shows its counters and batches.\n",
		func(fs *flag.FlagSet) { limit = fs.Int("n", 20, "how many migrations to list") })
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		var page struct {
			Migrations []api.Migration `json:"migrations"`
		}
		if _, err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/migrations?limit=%d", *limit), nil, nil, &page); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tSUMMARY\tFILES\tBYTES\tCREATED")
		for _, m := range page.Migrations {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", m.ID, m.Status, summaryCode(m), m.Counters.FilesMigrated, m.Counters.Items,
				humanBytes(m.Counters.BytesMigrated), m.Created.Format(time.RFC3339))
		}
		return tw.Flush()
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	m, err := c.migration(ctx, id)
	if err != nil {
		return err
	}
	printMigration(stdout, m)
	return nil
}

func printMigration(w io.Writer, m api.Migration) {
	k := m.Counters
	fmt.Fprintf(w, "migration %s: %s (summary %s)\n", m.ID, m.Status, summaryCode(m))
	if m.Reason != "" {
		fmt.Fprintf(w, "  reason:   %s\n", m.Reason)
	}
	if m.Request != nil {
		src := m.Request.Source.ContainerURL
		if src == "" {
			src = m.Request.Source.Path
		}
		fmt.Fprintf(w, "  source:   %s%s\n  target:   %s/%s\n", src, prefixNote(m.Request.Source.Prefix), m.Request.Target.ContainerID, m.Request.Target.Folder)
	}
	planned := "planning"
	if k.PlanDone {
		planned = "planned"
	}
	skipped := fmt.Sprintf("%d skipped", k.Skipped)
	if k.Unchanged > 0 {
		skipped += fmt.Sprintf(" (%d unchanged since an earlier run)", k.Unchanged)
	}
	fmt.Fprintf(w, "  source:   %d entries seen (%s), %d to import, %s, %d renamed\n", k.Entries, planned, k.Items, skipped, k.Renamed)
	fmt.Fprintf(w, "  imported: %d files, %s of %s; %d failed\n", k.FilesMigrated, humanBytes(k.BytesMigrated), humanBytes(k.BytesPlanned), k.FilesFailed)
	fmt.Fprintf(w, "  batches:  %d done of %d (%d failed, %d with errors, %d cancelled)\n", k.BatchesDone, k.Batches, k.BatchesFailed, k.BatchesWithErrors, k.BatchesCancelled)
	if v := m.Verified; v != nil {
		fmt.Fprintf(w, "  verified: %s: %d passed, %d failed, %d missing, %d not compared\n", v.At.Format(time.RFC3339), v.Passed, v.Failed, v.Missing, v.NotCompared)
	}
	if len(m.Batches) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  BATCH\tSTATUS\tATTEMPT\tITEMS\tIMPORTED\tFAILED\tREASON")
		for _, b := range m.Batches {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\t%s\n", b.ID, b.Status, b.Attempt, b.Items, b.FilesMigrated, b.FilesFailed, b.Reason)
		}
		tw.Flush()
	}
}

func prefixNote(p string) string {
	if p == "" {
		return ""
	}
	return " (prefix " + p + ")"
}

func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var interval *time.Duration
	c, fs, err := apiCommand("watch", args, stderr, "Usage: spemigrate watch ID\n\nShows live progress until the migration ends. Exit code by its summary code: 0 succeeded (with renames or warnings too), 3 partial, 4 failed, 5 cancelled, 1 the watch itself failed.\n",
		func(fs *flag.FlagSet) { interval = fs.Duration("every", 2*time.Second, "how often to poll the API") })
	if err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	return watch(ctx, c, id, *interval, stdout)
}

// watch polls the migration and draws a progress bar until it ends.
func watch(ctx context.Context, c *apiClient, id string, every time.Duration, out io.Writer) error {
	tty := isTerminal(out)
	p := &progress{start: time.Now()}
	last := ""
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		m, err := c.migration(ctx, id)
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				return err
			}
			// A transient error while watching is shown, not fatal.
			fmt.Fprintf(out, "\n(watch: %s; retrying)\n", shortErr(err))
		} else {
			line := p.line(m, time.Now())
			switch {
			case tty:
				fmt.Fprintf(out, "\r\x1b[K%s", line)
			case line != last:
				fmt.Fprintln(out, line)
			}
			last = line
			if m.Terminal() {
				if tty {
					fmt.Fprintln(out)
				}
				printMigration(out, m)
				if code := summaryCode(m); !succeeded(code) {
					return &migrationEnd{status: m.Status, summary: code}
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(out)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// progress turns successive snapshots into a bar with rates. Rates are over
// a sliding window of recent samples, so they follow the current pace.
type progress struct {
	start   time.Time
	samples []sample
}

type sample struct {
	at           time.Time
	files, bytes int64
}

const rateWindow = 30 * time.Second

func (p *progress) line(m api.Migration, now time.Time) string {
	k := m.Counters
	done := k.FilesMigrated + k.FilesFailed
	p.samples = append(p.samples, sample{now, done, k.BytesMigrated})
	for len(p.samples) > 2 && now.Sub(p.samples[0].at) > rateWindow {
		p.samples = p.samples[1:]
	}
	var fileRate, byteRate float64
	if first := p.samples[0]; now.Sub(first.at) > 0 {
		secs := now.Sub(first.at).Seconds()
		fileRate = float64(done-first.files) / secs
		byteRate = float64(k.BytesMigrated-first.bytes) / secs
	}
	frac := 0.0
	switch {
	case k.BytesPlanned > 0:
		frac = float64(k.BytesMigrated) / float64(k.BytesPlanned)
	case k.Items > 0:
		frac = float64(done) / float64(k.Items)
	}
	if m.Terminal() && m.Status == api.StatusCompleted {
		frac = 1
	}
	frac = min(max(frac, 0), 1)
	const width = 30
	filled := int(frac * width)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	total := fmt.Sprint(k.Items)
	if !k.PlanDone {
		total += "+"
	}
	eta := ""
	if byteRate > 0 && k.BytesPlanned > k.BytesMigrated && k.PlanDone {
		eta = " eta " + (time.Duration(float64(k.BytesPlanned-k.BytesMigrated)/byteRate) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("%s %3.0f%%  files %d/%s  %s/%s  %.1f files/s  %s/s  batches %d/%d%s  [%s]",
		bar, frac*100, done, total, humanBytes(k.BytesMigrated), humanBytes(k.BytesPlanned), fileRate, humanBytes(int64(byteRate)),
		k.BatchesDone, k.Batches, eta, m.Status)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func runCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, fs, err := apiCommand("cancel", args, stderr, "Usage: spemigrate cancel ID\n\nCancels a migration: queued jobs are deleted, unstarted batches cancelled, running jobs finish.\n", nil)
	if err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	var m api.Migration
	if _, err := c.do(ctx, http.MethodDelete, "/api/migrations/"+url.PathEscape(id), nil, nil, &m); err != nil {
		return err
	}
	if m.Terminal() {
		fmt.Fprintf(stdout, "migration %s had already ended: %s\n", m.ID, m.Status)
		return nil
	}
	fmt.Fprintf(stdout, "migration %s: cancel requested (%s); running jobs finish, the rest stop\n", m.ID, m.Status)
	return nil
}

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var csvOut *string
	var all *bool
	c, fs, err := apiCommand("report", args, stderr, "Usage: spemigrate report ID\n\nSummarises the per-item report (imported, renamed, skipped, failed, with reasons).\n",
		func(fs *flag.FlagSet) {
			csvOut = fs.String("csv", "", "write the full report as CSV to `FILE` (- for stdout)")
			all = fs.Bool("all", false, "list every renamed, skipped and failed item (default: the first 20 of each)")
		})
	if err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := c.do(ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(id)+"/report.csv", nil, nil, &buf); err != nil {
		return err
	}
	if *csvOut == "-" {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	if *csvOut != "" {
		if err := os.WriteFile(*csvOut, buf.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "report written to %s\n", *csvOut)
	}
	s, err := summarise(buf.Bytes())
	if err != nil {
		return err
	}
	s.print(stdout, id, *all)
	return nil
}

// reportSummary counts a report's outcomes and keeps the notable rows.
type reportSummary struct {
	total   int
	counts  map[string]int
	bytes   int64
	notable map[string][][]string // outcome → rows (renamed, skipped, failed)
}

func summarise(data []byte) (*reportSummary, error) {
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("report is not valid CSV: %w", err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(api.ReportHeader, ",") {
		return nil, errors.New("report has an unexpected header")
	}
	s := &reportSummary{counts: map[string]int{}, notable: map[string][][]string{}}
	for _, r := range rows[1:] {
		s.total++
		outcome := r[5]
		s.counts[outcome]++
		if outcome == api.OutcomeImported || outcome == api.OutcomeRenamed {
			var n int64
			fmt.Sscan(r[4], &n)
			s.bytes += n
		}
		if outcome != api.OutcomeImported && outcome != api.OutcomePending {
			s.notable[outcome] = append(s.notable[outcome], r)
		}
	}
	return s, nil
}

func (s *reportSummary) print(w io.Writer, id string, all bool) {
	fmt.Fprintf(w, "report for %s: %d items, %s imported\n", id, s.total, humanBytes(s.bytes))
	outcomes := make([]string, 0, len(s.counts))
	for o := range s.counts {
		outcomes = append(outcomes, o)
	}
	order := map[string]int{api.OutcomeImported: 0, api.OutcomeRenamed: 1, api.OutcomeSkipped: 2, api.OutcomeFailed: 3, api.OutcomeCancelled: 4, api.OutcomePending: 5}
	sort.Slice(outcomes, func(i, j int) bool { return order[outcomes[i]] < order[outcomes[j]] })
	for _, o := range outcomes {
		fmt.Fprintf(w, "  %-10s %d\n", o, s.counts[o])
	}
	for _, o := range []string{api.OutcomeRenamed, api.OutcomeSkipped, api.OutcomeFailed} {
		rows := s.notable[o]
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s:\n", o)
		for i, r := range rows {
			if !all && i == 20 {
				fmt.Fprintf(w, "  … %d more (use --all or --csv)\n", len(rows)-20)
				break
			}
			line := "  " + r[0]
			if o == api.OutcomeRenamed {
				line += " → " + r[2]
			}
			if r[6] != "" {
				line += ": " + r[6]
			}
			fmt.Fprintln(w, line)
		}
	}
}
