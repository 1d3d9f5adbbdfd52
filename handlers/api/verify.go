package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/state"
	"github.com/spemigrate/spemigrate/shared/verify"
)

// ErrNotFinished is returned for a verification of a running migration.
var ErrNotFinished = errors.New("migration has not finished")

// Verifier checks a finished migration's target (POST
// /api/migrations/{id}/verify) and records a check made elsewhere (PUT
// /api/migrations/{id}/verification, what spemigrate verify sends);
// *EngineVerifier implements it.
type Verifier interface {
	Verify(ctx context.Context, id string, sample float64) (*Verification, error)
	Record(ctx context.Context, id string, up VerificationUpload) error
}

// Verification is the body of a verify answer.
type Verification struct {
	ID string `json:"id"`
	OK bool   `json:"ok"`
	// VerifiedAt identifies the run: the items' verifiedAt in the report.
	VerifiedAt time.Time `json:"verifiedAt"`
	*verify.Result
	// Gone are reported files the source no longer lists (not compared).
	Gone []string `json:"goneFromSource,omitempty"`
}

// VerificationUpload is one part of a verify run made outside the app,
// recorded by PUT /api/migrations/{id}/verification: the run's time, its
// per-item results and, in the run's last part only, its totals.
type VerificationUpload struct {
	At    time.Time           `json:"at"`
	Items []verify.ItemResult `json:"items"`
	Gone  []string            `json:"goneFromSource,omitempty"`
	// Summary, in the last part, makes the run the migration's last one;
	// its At is the upload's.
	Summary *VerifiedSummary `json:"summary,omitempty"`
}

// maxUploadBytes bounds one upload; the custom handler's invocation limit
// (8 MiB, JSON-escaped) is the real bound. spemigrate verify sends
// UploadItems items per part.
const maxUploadBytes = 3 << 20

// UploadItems is how many item results one upload carries at most.
const UploadItems = 1000

// VerifyStore is what verification reads and records; *state.Store
// implements it.
type VerifyStore interface {
	Store
	PutVerifications(ctx context.Context, id string, recs []state.VerificationRecord) error
	PutVerificationSummary(ctx context.Context, id string, v state.VerificationSummary) error
}

// EngineVerifier reads the migration's per-item results from the store,
// its source through the engine's sources (the stored request holds the
// credentials) and its target through Graph's drive endpoints, read-only,
// and records the results per item in the store.
type EngineVerifier struct {
	Store   VerifyStore
	Sources pipeline.Sources
	Graph   *verify.Graph
	// Timeout bounds one verification (default 2 minutes, under the
	// Functions HTTP limit); spemigrate verify has no limit.
	Timeout time.Duration
	Now     func() time.Time
}

// Verify implements [Verifier].
func (v *EngineVerifier) Verify(ctx context.Context, id string, sample float64) (*Verification, error) {
	t := v.Timeout
	if t <= 0 {
		t = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	m, err := v.finished(ctx, id)
	if err != nil {
		return nil, err
	}
	at := state.NewVerificationRun(v.now())
	results, err := v.results(ctx, id)
	if err != nil {
		return nil, err
	}
	rows := make([]verify.Row, 0, len(results))
	for _, r := range results {
		rows = append(rows, verify.Row{SourcePath: r.SourcePath, VersionID: r.VersionID, TargetPath: r.TargetPath, Size: r.Size, Outcome: string(r.Outcome)})
	}
	src, err := v.Sources.Source(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	want, gone, err := verify.FromReport(ctx, m.Request, rows, src)
	if err != nil {
		return nil, err
	}
	res, err := verify.Check(ctx, v.Graph, want, verify.Options{DriveID: m.ContainerID, Sample: sample})
	if err != nil {
		return nil, err
	}
	if err := v.Store.PutVerifications(ctx, id, verificationRecords(results, res.Items, gone, at)); err != nil {
		return nil, fmt.Errorf("record verification: %w", err)
	}
	sum := state.VerificationSummary{At: at, Passed: int64(res.Passed), Failed: int64(res.Failed), Missing: int64(res.Missing), NotCompared: int64(len(gone))}
	if err := v.Store.PutVerificationSummary(ctx, id, sum); err != nil {
		return nil, fmt.Errorf("record verification: %w", err)
	}
	return &Verification{ID: id, OK: res.OK() && len(gone) == 0, VerifiedAt: at, Result: res, Gone: gone}, nil
}

// Record implements [Verifier]: an upload's items are recorded on the
// files' result rows (version id empty), conditional on the rows existing
// (a path the migration does not have is left out).
func (v *EngineVerifier) Record(ctx context.Context, id string, up VerificationUpload) error {
	if _, err := v.finished(ctx, id); err != nil {
		return err
	}
	at := state.NewVerificationRun(up.At)
	if err := v.Store.PutVerifications(ctx, id, verificationRecords(nil, up.Items, up.Gone, at)); err != nil {
		return fmt.Errorf("record verification: %w", err)
	}
	if s := up.Summary; s != nil {
		sum := state.VerificationSummary{At: at, Passed: s.Passed, Failed: s.Failed, Missing: s.Missing, NotCompared: s.NotCompared}
		if err := v.Store.PutVerificationSummary(ctx, id, sum); err != nil {
			return fmt.Errorf("record verification: %w", err)
		}
	}
	return nil
}

func (v *EngineVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// finished reads migration id, which must have ended.
func (v *EngineVerifier) finished(ctx context.Context, id string) (*state.Migration, error) {
	m, err := v.Store.GetMigration(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
	if !m.Status.Terminal() {
		return nil, fmt.Errorf("migration %s is %s: %w", id, m.Status, ErrNotFinished)
	}
	return m, nil
}

// results reads every result row of migration id.
func (v *EngineVerifier) results(ctx context.Context, id string) ([]state.ItemResult, error) {
	var out []state.ItemResult
	for tok := ""; ; {
		rs, next, err := v.Store.ListResults(ctx, id, tok, reportPage)
		if err != nil {
			return nil, fmt.Errorf("read results: %w", err)
		}
		out = append(out, rs...)
		if next == "" {
			return out, nil
		}
		tok = next
	}
}

// verificationRecords turns a run's per-file results into records for
// the result rows: every imported row of a checked file (its versions'
// rows too) gets the file's result, a file gone from the source
// not-compared. With rows nil (an upload) the records name the files'
// current rows, without ETags.
func verificationRecords(rows []state.ItemResult, items []verify.ItemResult, gone []string, at time.Time) []state.VerificationRecord {
	byPath := make(map[string]state.ItemVerification, len(items)+len(gone))
	for _, it := range items {
		byPath[it.Source] = state.ItemVerification{Status: it.Status, Reason: strings.Join(it.Problems, "; "), At: at,
			TargetItemID: it.TargetItemID, TargetListItemID: it.TargetListItemID}
	}
	for _, p := range gone {
		byPath[p] = state.ItemVerification{Status: state.VerifyNotCompared, Reason: "no longer in the source", At: at}
	}
	var out []state.VerificationRecord
	if rows == nil {
		for p, iv := range byPath {
			out = append(out, state.VerificationRecord{SourcePath: p, ItemVerification: iv})
		}
		return out
	}
	for _, r := range rows {
		iv, ok := byPath[r.SourcePath]
		if !ok || (r.Outcome != state.OutcomeImported && r.Outcome != state.OutcomeRenamed) {
			continue
		}
		out = append(out, state.VerificationRecord{SourcePath: r.SourcePath, VersionID: r.VersionID, ETag: r.ETag, ItemVerification: iv})
	}
	return out
}

var _ Verifier = (*EngineVerifier)(nil)

func (s *Server) verifyMigration(w http.ResponseWriter, r *http.Request) {
	if !s.knownID(w, r) {
		return
	}
	if s.Verifier == nil {
		writeError(w, http.StatusNotImplemented, "verification is not configured on this app; run spemigrate verify")
		return
	}
	sample := 0.0
	if v := r.URL.Query().Get("sample"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			writeFieldError(w, http.StatusBadRequest, "sample", fmt.Sprintf("%q: use a fraction from 0 to 1 of the files to compare byte by byte", v))
			return
		}
		sample = f
	}
	res, err := s.Verifier.Verify(r.Context(), r.PathValue("id"), sample)
	switch {
	case errors.Is(err, ErrNotFinished):
		writeError(w, http.StatusConflict, err.Error()+"; verify it when it has finished")
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, "the migration is too large to verify within one request; run spemigrate verify")
	case err != nil:
		s.notFoundOr(w, r, "verify migration", err)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// putVerification records a verify run made elsewhere (spemigrate verify).
func (s *Server) putVerification(w http.ResponseWriter, r *http.Request) {
	if !s.knownID(w, r) {
		return
	}
	if s.Verifier == nil {
		writeError(w, http.StatusNotImplemented, "verification is not configured on this app")
		return
	}
	up, ok := decodeUpload(w, r)
	if !ok {
		return
	}
	switch err := s.Verifier.Record(r.Context(), r.PathValue("id"), up); {
	case errors.Is(err, ErrNotFinished):
		writeError(w, http.StatusConflict, err.Error()+"; verify it when it has finished")
	case err != nil:
		s.notFoundOr(w, r, "record verification", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// decodeUpload reads and checks an upload, answering 4xx itself.
func decodeUpload(w http.ResponseWriter, r *http.Request) (VerificationUpload, bool) {
	var up VerificationUpload
	if !jsonContentType(r) {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return up, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxUploadBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "could not read the body")
		return up, false
	}
	if len(body) > maxUploadBytes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes; send at most %d items per request", maxUploadBytes, UploadItems))
		return up, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&up); err != nil {
		writeFieldError(w, http.StatusBadRequest, "", `expected {"at": "<RFC 3339 time of the run>", "items": [{"source", "status", …}], "goneFromSource": [...], "summary": {…} in the last part}: `+strings.TrimPrefix(err.Error(), "json: "))
		return up, false
	}
	switch {
	case up.At.IsZero():
		writeFieldError(w, http.StatusBadRequest, "at", "required: the time the run started, the same in every part of one run")
	case len(up.Items) > UploadItems:
		writeFieldError(w, http.StatusBadRequest, "items", fmt.Sprintf("%d items; send at most %d per request", len(up.Items), UploadItems))
	default:
		for i, it := range up.Items {
			if it.Source == "" || (it.Status != verify.Passed && it.Status != verify.Failed && it.Status != verify.Missing) {
				writeFieldError(w, http.StatusBadRequest, fmt.Sprintf("items[%d]", i), "needs source and a status of passed, failed or missing")
				return up, false
			}
		}
		return up, true
	}
	return up, false
}
