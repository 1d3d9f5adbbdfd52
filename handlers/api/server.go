package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/schedule"
)

// Page size bounds for list endpoints.
const (
	defaultLimit = 20
	maxLimit     = 200
	reportPage   = 1000
)

// Server serves the HTTP API.
type Server struct {
	Backend   Backend
	Schedules ScheduleStore // nil: the schedule endpoints answer 501
	Scanner   Scanner       // nil: dry runs answer 501 (dryrun.go)
	Verifier  Verifier      // nil: verify answers 501 (verify.go)
	Log       *slog.Logger
	// Policy says which sources and target containers requests may name;
	// the zero Policy is the strict one (see access.go).
	Policy request.Policy
	// Now and NewID are the clock and the id source; tests set them.
	Now   func() time.Time
	NewID func() string
}

// Handler returns the API's routes, all under /api.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/migrations", s.postMigration)
	mux.HandleFunc("GET /api/migrations", s.listMigrations)
	mux.HandleFunc("GET /api/migrations/{id}", s.getMigration)
	mux.HandleFunc("DELETE /api/migrations/{id}", s.cancelMigration)
	mux.HandleFunc("GET /api/migrations/{id}/items", s.listItems)
	mux.HandleFunc("GET /api/migrations/{id}/report.csv", s.report)
	mux.HandleFunc("GET /api/migrations/{id}/report.jsonl", s.reportJSONL)
	mux.HandleFunc("POST /api/migrations/{id}/verify", s.verifyMigration)
	mux.HandleFunc("PUT /api/migrations/{id}/verification", s.putVerification)
	mux.HandleFunc("POST /api/schedules", s.postSchedule)
	mux.HandleFunc("GET /api/schedules", s.listSchedules)
	mux.HandleFunc("GET /api/schedules/{id}", s.getSchedule)
	mux.HandleFunc("DELETE /api/schedules/{id}", s.deleteSchedule)
	mux.HandleFunc("GET /api/status", s.statusList)
	mux.HandleFunc("GET /api/status/{id}", s.statusMigration)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // sets the path values
			return
		}
		// ServeMux answers unknown routes (404) and wrong methods (405, with
		// Allow) in text/plain; keep its status and headers, answer in JSON.
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
			writeError(w, probe.status, fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API route for %s %s; see docs/api.md", r.Method, r.URL.Path))
	})
}

// statusProbe records what ServeMux's own error handlers answer.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) WriteHeader(s int) {
	if p.status == 0 {
		p.status = s
	}
}
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return s.Log
}

func (s *Server) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// newID makes a migration id that sorts by creation time.
func (s *Server) newID(prefix string) string {
	if s.NewID != nil {
		return s.NewID()
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + s.now().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// knownID answers 404 for a path id that cannot name a migration, before it
// reaches storage (where it could be an invalid key).
func (s *Server) knownID(w http.ResponseWriter, r *http.Request) bool {
	if request.ValidID(r.PathValue("id")) {
		return true
	}
	writeError(w, http.StatusNotFound, "no migration has this id; ids are 1-64 letters, digits, '.', '_' or '-'")
	return false
}

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 255

func (s *Server) postMigration(w http.ResponseWriter, r *http.Request) {
	if !jsonContentType(r) {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	req, err := request.Decode(r.Body)
	if err != nil {
		s.writeRequestError(w, err)
		return
	}
	// The policy first: a dry run reads the source too.
	if !s.admit(w, req, "") {
		return
	}
	if dry, err := isDryRun(r); err != nil || dry {
		if err != nil {
			writeFieldError(w, http.StatusBadRequest, "dryRun", err.Error())
			return
		}
		s.dryRun(w, r, req)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		writeFieldError(w, http.StatusBadRequest, "Idempotency-Key", fmt.Sprintf("header must be at most %d characters", maxIdempotencyKey))
		return
	}
	id, idField := req.ID, "id"
	switch {
	case id != "":
	case key != "":
		id, idField = request.IDForIdempotencyKey(key), "Idempotency-Key"
	default:
		id = s.newID("m-")
	}
	req.ID = id
	m, created, err := s.Backend.Start(r.Context(), id, req)
	switch {
	case errors.Is(err, ErrIDConflict):
		writeFieldError(w, http.StatusConflict, idField, fmt.Sprintf("migration %s exists with a different request; choose a new id", id))
		return
	case request.IsInvalid(err):
		// The backend found the request unusable (e.g. an unknown target
		// container).
		s.writeRequestError(w, err)
		return
	case err != nil:
		s.internal(w, r, "start migration", err)
		return
	}
	loc := "/api/migrations/" + m.ID
	w.Header().Set("Location", loc)
	status := http.StatusAccepted
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	}
	writeJSON(w, status, m)
}

func jsonContentType(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true // curl -d without -H; the body is still checked strictly
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func (s *Server) listMigrations(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r, defaultLimit)
	if !ok {
		return
	}
	ms, next, err := s.Backend.List(r.Context(), r.URL.Query().Get("pageToken"), limit)
	if err != nil {
		s.internal(w, r, "list migrations", err)
		return
	}
	if ms == nil {
		ms = []Migration{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"migrations": ms, "nextPageToken": next})
}

func limitParam(w http.ResponseWriter, r *http.Request, def int) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		writeFieldError(w, http.StatusBadRequest, "limit", fmt.Sprintf("query parameter must be a number from 1 to %d", maxLimit))
		return 0, false
	}
	return n, true
}

func (s *Server) getMigration(w http.ResponseWriter, r *http.Request) {
	if !s.knownID(w, r) {
		return
	}
	m, err := s.Backend.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.notFoundOr(w, r, "get migration", err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) cancelMigration(w http.ResponseWriter, r *http.Request) {
	if !s.knownID(w, r) {
		return
	}
	m, err := s.Backend.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		s.notFoundOr(w, r, "cancel migration", err)
		return
	}
	status := http.StatusAccepted
	if m.Terminal() {
		status = http.StatusOK
	}
	writeJSON(w, status, m)
}

func (s *Server) listItems(w http.ResponseWriter, r *http.Request) {
	if !s.knownID(w, r) {
		return
	}
	limit, ok := limitParam(w, r, 100)
	if !ok {
		return
	}
	items, next, err := s.Backend.Items(r.Context(), r.PathValue("id"), r.URL.Query().Get("pageToken"), limit)
	if err != nil {
		s.notFoundOr(w, r, "list items", err)
		return
	}
	if items == nil {
		items = []Item{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "nextPageToken": next})
}

// ReportHeader is the report's CSV header row.
// The first seven columns keep their places; later ones are appended.
var ReportHeader = []string{"source_path", "version_id", "target_path", "batch", "size", "outcome", "reason",
	"source_etag", "manifest_id", "job_id", "attempt", "result_code",
	"target_item_id", "target_list_item_id", "author_outcome", "author_login", "author_fallback",
	"verification", "verification_reason", "verified_at", "extension"}

// reportRow is an item's report.csv row, in ReportHeader's order.
func reportRow(it Item) []string {
	attempt, verifiedAt := "", ""
	if it.Attempt > 0 {
		attempt = strconv.Itoa(it.Attempt)
	}
	if !it.VerifiedAt.IsZero() {
		verifiedAt = it.VerifiedAt.UTC().Format(time.RFC3339Nano)
	}
	return []string{csvSafe(it.SourcePath), it.VersionID, csvSafe(it.TargetPath), it.BatchID,
		strconv.FormatInt(it.Size, 10), it.Outcome, csvSafe(it.Reason),
		csvSafe(it.SourceETag), it.ManifestID, csvSafe(it.JobID), attempt, resultCode(it.ResultCode),
		csvSafe(it.TargetItemID), it.TargetListItemID, it.AuthorOutcome, csvSafe(it.AuthorLogin), it.AuthorFallback,
		it.Verification, csvSafe(it.VerificationReason), verifiedAt, csvSafe(it.Extension)}
}

// report writes every item as CSV. In payload mode the host buffers the body
// anyway, so it is built in memory and its size is bounded by the migration.
func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	if !s.knownID(w, r) {
		return
	}
	// Items answers ErrNotFound for an unknown id: no separate read (Get
	// would also list every batch).
	id := r.PathValue("id")
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.Write(ReportHeader)
	err := s.eachItem(r, id, func(it Item) { _ = cw.Write(reportRow(it)) })
	if err != nil {
		s.notFoundOr(w, r, "report", err)
		return
	}
	cw.Flush()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-report.csv"`, id))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// reportJSONL is the report as JSON Lines: one Item object per line, in
// the order of report.csv, for tools that read records rather than cells.
func (s *Server) reportJSONL(w http.ResponseWriter, r *http.Request) {
	if !s.knownID(w, r) {
		return
	}
	// Items answers ErrNotFound for an unknown id: no separate read (Get
	// would also list every batch).
	id := r.PathValue("id")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := s.eachItem(r, id, func(it Item) { _ = enc.Encode(it) }); err != nil {
		s.notFoundOr(w, r, "report", err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-report.jsonl"`, id))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// eachItem calls f for every per-item result of migration id, page by page,
// in the store's order; both report formats are this one walk.
func (s *Server) eachItem(r *http.Request, id string, f func(Item)) error {
	for token := ""; ; {
		items, next, err := s.Backend.Items(r.Context(), id, token, reportPage)
		if err != nil {
			return err
		}
		for _, it := range items {
			f(it)
		}
		if next == "" || next == token {
			return nil
		}
		token = next
	}
}

// resultCode writes SharePoint's numeric error codes as numbers (they start
// with '-', which csvSafe would quote) and anything else formula-safe.
func resultCode(c string) string {
	if _, err := strconv.ParseInt(c, 10, 64); err == nil {
		return c
	}
	return csvSafe(c)
}

// csvSafe keeps a spreadsheet from reading a file name as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

type scheduleBody struct {
	ID      string          `json:"id"`
	Cron    string          `json:"cron"`
	Request json.RawMessage `json:"request"`
}

func (s *Server) postSchedule(w http.ResponseWriter, r *http.Request) {
	if s.Schedules == nil {
		writeError(w, http.StatusNotImplemented, "schedules are not configured on this deployment")
		return
	}
	if !jsonContentType(r) {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, request.MaxBodyBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "could not read the body")
		return
	}
	if len(body) > request.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", request.MaxBodyBytes))
		return
	}
	var sb scheduleBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sb); err != nil {
		writeFieldError(w, http.StatusBadRequest, "", `expected {"id": optional, "cron": "<NCRONTAB>", "request": {…migration request…}}: `+strings.TrimPrefix(err.Error(), "json: "))
		return
	}
	if len(sb.Request) == 0 || bytes.Equal(bytes.TrimSpace(sb.Request), []byte("null")) {
		writeFieldError(w, http.StatusBadRequest, "request", "required: the migration request each run starts")
		return
	}
	tmpl, err := request.DecodeBytes(sb.Request)
	if err != nil {
		var re *request.Error
		if errors.As(err, &re) {
			for i := range re.Fields {
				re.Fields[i].Field = strings.TrimSuffix("request."+re.Fields[i].Field, ".")
			}
		}
		s.writeRequestError(w, err)
		return
	}
	if !s.admit(w, tmpl, "request.") {
		return
	}
	sc := &schedule.Schedule{ID: sb.ID, Cron: sb.Cron, Request: tmpl, Created: s.now()}
	if err := sc.Validate(); err != nil {
		s.writeRequestError(w, err)
		return
	}
	if sc.ID == "" {
		sc.ID = strings.ToLower(s.newID("sch-"))
	}
	if !s.roomForSchedule(w, r) {
		return
	}
	switch err := s.Schedules.Create(r.Context(), sc); {
	case errors.Is(err, schedule.ErrExists):
		writeFieldError(w, http.StatusConflict, "id", fmt.Sprintf("schedule %s exists; delete it first or choose another id", sc.ID))
		return
	case err != nil:
		s.internal(w, r, "create schedule", err)
		return
	}
	w.Header().Set("Location", "/api/schedules/"+sc.ID)
	writeJSON(w, http.StatusCreated, s.scheduleView(sc))
}

func (s *Server) scheduleView(sc *schedule.Schedule) Schedule {
	v := Schedule{ID: sc.ID, Cron: sc.Cron, Request: sc.Request.Redacted(), Created: sc.Created,
		LastSlot: sc.LastSlot, LastMigrationID: sc.LastMigrationID}
	if c, err := schedule.ParseCron(sc.Cron); err == nil {
		v.NextRun = c.Next(s.now())
	}
	return v
}

func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) {
	if s.Schedules == nil {
		writeError(w, http.StatusNotImplemented, "schedules are not configured on this deployment")
		return
	}
	list, err := s.Schedules.List(r.Context())
	if err != nil {
		s.internal(w, r, "list schedules", err)
		return
	}
	out := make([]Schedule, 0, len(list))
	for _, sc := range list {
		out = append(out, s.scheduleView(sc))
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedules": out})
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) {
	if s.Schedules == nil {
		writeError(w, http.StatusNotImplemented, "schedules are not configured on this deployment")
		return
	}
	sc, err := s.Schedules.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, schedule.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("schedule %s not found", r.PathValue("id")))
		return
	}
	if err != nil {
		s.internal(w, r, "get schedule", err)
		return
	}
	writeJSON(w, http.StatusOK, s.scheduleView(sc))
}

func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request) {
	if s.Schedules == nil {
		writeError(w, http.StatusNotImplemented, "schedules are not configured on this deployment")
		return
	}
	err := s.Schedules.Delete(r.Context(), r.PathValue("id"))
	if errors.Is(err, schedule.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("schedule %s not found", r.PathValue("id")))
		return
	}
	if err != nil {
		s.internal(w, r, "delete schedule", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeRequestError answers a request validation error: 400 (413 for an
// oversized body) with every field problem.
func (s *Server) writeRequestError(w http.ResponseWriter, err error) {
	var re *request.Error
	if !errors.As(err, &re) {
		writeError(w, http.StatusBadRequest, "could not read the request body")
		return
	}
	status := http.StatusBadRequest
	switch {
	case re.TooLarge:
		status = http.StatusRequestEntityTooLarge
	case re.Forbidden:
		status = http.StatusForbidden
	}
	writeJSON(w, status, ErrorBody{Error: "invalid request: " + summary(re), Errors: re.Fields})
}

func summary(re *request.Error) string {
	if len(re.Fields) == 1 {
		return re.Fields[0].Error()
	}
	return fmt.Sprintf("%d problems, first: %s", len(re.Fields), re.Fields[0].Error())
}

func (s *Server) notFoundOr(w http.ResponseWriter, r *http.Request, op string, err error) {
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("migration %s not found", r.PathValue("id")))
		return
	}
	s.internal(w, r, op, err)
}

// internal logs the error and answers 503 (the client may retry) without the
// error's text: it may carry a storage response body.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, op string, err error) {
	s.log().Error("api: "+op, "method", r.Method, "path", r.URL.Path, "err", err)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		writeError(w, http.StatusServiceUnavailable, op+": timed out; retry")
		return
	}
	writeError(w, http.StatusServiceUnavailable, op+": the service could not complete the request; retry later (details are in the Function App's log)")
}

// ErrorBody is every error response's shape.
type ErrorBody struct {
	Error  string               `json:"error"`
	Errors []request.FieldError `json:"errors,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg})
}

func writeFieldError(w http.ResponseWriter, status int, field, msg string) {
	fe := request.FieldError{Field: field, Message: msg}
	writeJSON(w, status, ErrorBody{Error: fe.Error(), Errors: []request.FieldError{fe}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"response not serialisable"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
