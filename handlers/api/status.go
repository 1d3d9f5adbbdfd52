package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"time"

	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

// The operators' status page: server-rendered HTML over the same Backend
// the JSON API reads, with no script and no external asset. Everything it
// shows (file names, reasons, ids) is data from sources and SharePoint, so
// it is escaped by html/template, and the Content-Security-Policy allows
// nothing but the page's own style sheet, by hash.

//go:embed status/page.html status/status.css
var statusFiles embed.FS

var (
	statusCSS  = mustRead("status/status.css")
	statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
		"time":  formatTime,
		"bytes": formatBytes,
		"dur":   formatDuration,
	}).Parse(mustRead("status/page.html")))
	// statusCSP allows the one inline style sheet (by its hash) and
	// nothing else: no script, image, font, frame, form or base URL.
	statusCSP = "default-src 'none'; style-src 'sha256-" + hashCSS(statusCSS) + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

func mustRead(name string) string {
	b, err := statusFiles.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func hashCSS(css string) string {
	sum := sha256.Sum256([]byte(css))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Status page limits.
const (
	// statusFailures is how many failed files the page lists; the rest
	// are in report.csv.
	statusFailures = 50
	// statusScan bounds how many per-item results one page view reads
	// looking for failures, so a 100k-item migration costs a few Table
	// requests, not a hundred.
	statusScan = 5 * reportPage
	// statusRefresh is the reload interval, in seconds, while a
	// migration runs.
	statusRefresh = 10
)

// pageData is what every page template reads.
type pageData struct {
	Title   string
	CSS     template.CSS
	Refresh int
	Now     time.Time
}

func (s *Server) page(title string) pageData {
	return pageData{Title: title, CSS: template.CSS(statusCSS), Now: s.now()}
}

// statusList serves GET /api/status: the migrations, newest first.
func (s *Server) statusList(w http.ResponseWriter, r *http.Request) {
	limit := defaultLimit
	ms, next, err := s.Backend.List(r.Context(), r.URL.Query().Get("pageToken"), limit)
	if err != nil {
		s.log().Error("api: status list", "err", err)
		s.statusError(w, http.StatusServiceUnavailable, "status", "The migrations could not be read; retry later (details are in the Function App's log).")
		return
	}
	data := struct {
		pageData
		Migrations []Migration
		Next       string
	}{s.page("Migrations"), ms, next}
	for _, m := range ms {
		if !m.Terminal() {
			data.Refresh = statusRefresh
			break
		}
	}
	s.renderStatus(w, http.StatusOK, "list", data)
}

// migrationPage is the one-migration page's data.
type migrationPage struct {
	pageData
	M             Migration
	Rates         Rates
	Batches       []statusBatch
	Postponed     []statusBatch
	FailedBatches []statusBatch
	Failures      failureList
}

type statusBatch struct {
	Batch
	Done, Max int64
	Pickup    string // time to the next pickup, "" once due
}

// statusMigration serves GET /api/status/{id}.
func (s *Server) statusMigration(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !request.ValidID(id) {
		s.statusError(w, http.StatusNotFound, "../status", "No migration has this id; ids are 1-64 letters, digits, '.', '_' or '-'.")
		return
	}
	m, err := s.Backend.Get(r.Context(), id)
	if err == nil {
		var fl failureList
		if fl, err = s.failures(r, id, m.Counters.FilesFailed); err == nil {
			s.renderStatus(w, http.StatusOK, "migration", s.migrationPage(m, fl))
			return
		}
	}
	if errors.Is(err, ErrNotFound) {
		s.statusError(w, http.StatusNotFound, "../status", fmt.Sprintf("Migration %s was not found.", id))
		return
	}
	s.log().Error("api: status migration", "id", id, "err", err)
	s.statusError(w, http.StatusServiceUnavailable, "../status", "The migration could not be read; retry later (details are in the Function App's log).")
}

func (s *Server) migrationPage(m Migration, fl failureList) migrationPage {
	now := s.now()
	p := migrationPage{pageData: s.page("Migration " + m.ID), M: m, Rates: rates(m, now), Failures: fl}
	if !m.Terminal() {
		p.Refresh = statusRefresh
	}
	for _, b := range m.Batches {
		sb := statusBatch{Batch: b, Done: batchFiles(b), Max: max(int64(b.Items), 1)}
		if b.Postponed != nil && b.Postponed.NextPickup.After(now) {
			sb.Pickup = "in " + formatDuration(b.Postponed.NextPickup.Sub(now))
		}
		p.Batches = append(p.Batches, sb)
		if b.Postponed != nil {
			p.Postponed = append(p.Postponed, sb)
		}
		if b.Status == string(state.BatchFailed) && b.Reason != "" {
			p.FailedBatches = append(p.FailedBatches, sb)
		}
	}
	return p
}

// failureList is the first failed files of a migration, found within a
// bounded scan of its results.
type failureList struct {
	Items []Item
	Note  string
}

func (s *Server) failures(r *http.Request, id string, total int64) (failureList, error) {
	var fl failureList
	if total == 0 {
		// The counters say none failed: a page refreshed every few seconds
		// reads no item results for nothing.
		return fl, nil
	}
	scanned, complete := 0, false
	for token := ""; len(fl.Items) < statusFailures && scanned < statusScan; {
		items, next, err := s.Backend.Items(r.Context(), id, token, reportPage)
		if err != nil {
			return fl, err
		}
		scanned += len(items)
		for _, it := range items {
			if it.Outcome == OutcomeFailed && len(fl.Items) < statusFailures {
				fl.Items = append(fl.Items, it)
			}
		}
		if next == "" || next == token {
			complete = true
			break
		}
		token = next
	}
	switch shown := int64(len(fl.Items)); {
	case shown == 0:
		fl.Note = fmt.Sprintf("%d files failed; none is among the first %d results read here.", total, scanned)
	case complete && shown == 1 && total == 1:
		fl.Note = "The one failed file."
	case complete && shown == total:
		fl.Note = fmt.Sprintf("All %d failed files.", shown)
	default:
		fl.Note = fmt.Sprintf("The first %d of %d failed files.", shown, max(total, shown))
	}
	return fl, nil
}

func (s *Server) statusError(w http.ResponseWriter, code int, back, msg string) {
	data := struct {
		pageData
		Message, Back string
	}{s.page(http.StatusText(code)), msg, back}
	s.renderStatus(w, code, "error", data)
}

// renderStatus renders into a buffer first, so a template error is a 500
// rather than half a page.
func (s *Server) renderStatus(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := statusPage.ExecuteTemplate(&buf, name, data); err != nil {
		s.log().Error("api: render status page", "page", name, "err", err)
		code, buf = http.StatusInternalServerError, *bytes.NewBufferString("status page could not be rendered\n")
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %cB", v, "kMGTP"[i])
}

func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "—"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(math.Ceil(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	default:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}
