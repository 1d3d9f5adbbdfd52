package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/verify"
)

// ErrNotFinished is returned for a verification of a running migration.
var ErrNotFinished = errors.New("migration has not finished")

// Verifier checks a finished migration's target (POST
// /api/migrations/{id}/verify); *EngineVerifier implements it.
type Verifier interface {
	Verify(ctx context.Context, id string, sample float64) (*Verification, error)
}

// Verification is the body of a verify answer.
type Verification struct {
	ID string `json:"id"`
	OK bool   `json:"ok"`
	*verify.Result
	// Gone are reported files the source no longer lists (not compared).
	Gone []string `json:"goneFromSource,omitempty"`
}

// EngineVerifier reads the migration's per-item results from the store,
// its source through the engine's sources (the stored request holds the
// credentials) and its target through Graph's drive endpoints, read-only.
type EngineVerifier struct {
	Store   Store
	Sources pipeline.Sources
	Graph   *verify.Graph
	// Timeout bounds one verification (default 2 minutes, under the
	// Functions HTTP limit); spemigrate verify has no limit.
	Timeout time.Duration
}

// Verify implements [Verifier].
func (v *EngineVerifier) Verify(ctx context.Context, id string, sample float64) (*Verification, error) {
	t := v.Timeout
	if t <= 0 {
		t = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	m, err := v.Store.GetMigration(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
	if !m.Status.Terminal() {
		return nil, fmt.Errorf("migration %s is %s: %w", id, m.Status, ErrNotFinished)
	}
	var rows []verify.Row
	for tok := ""; ; {
		rs, next, err := v.Store.ListResults(ctx, id, tok, reportPage)
		if err != nil {
			return nil, fmt.Errorf("read results: %w", err)
		}
		for _, r := range rs {
			rows = append(rows, verify.Row{SourcePath: r.SourcePath, VersionID: r.VersionID, TargetPath: r.TargetPath, Size: r.Size, Outcome: string(r.Outcome)})
		}
		if next == "" {
			break
		}
		tok = next
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
	return &Verification{ID: id, OK: res.OK() && len(gone) == 0, Result: res, Gone: gone}, nil
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
