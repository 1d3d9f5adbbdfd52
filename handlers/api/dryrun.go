package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/scan"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Scanner runs the readiness scan of a request (POST
// /api/migrations?dryRun=true); *DryRun implements it.
type Scanner interface {
	Scan(ctx context.Context, req request.Request) (*scan.Report, error)
}

// DryRun is the [Scanner] over the engine's sources: it opens the request's
// source as a migration would and scans it, storing nothing.
type DryRun struct {
	Sources pipeline.Sources
	Options scan.Options
	// Timeout bounds one scan (default 2 minutes, under the Functions HTTP
	// limit); a larger source is for spemigrate scan, which has no limit.
	Timeout time.Duration
}

// Scan implements [Scanner].
func (d *DryRun) Scan(ctx context.Context, req request.Request) (*scan.Report, error) {
	t := d.Timeout
	if t <= 0 {
		t = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	src, err := d.Sources.Source(ctx, &state.Migration{ID: "dry-run", ContainerID: req.Target.ContainerID, Request: req})
	if err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	return scan.Run(ctx, req, src, d.Options)
}

// isDryRun reads the dryRun query parameter; a value that is not a boolean
// is an error rather than a real start.
func isDryRun(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("dryRun")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("dryRun %q: use true or false", v)
	}
	return b, nil
}

// dryRun answers a dry run: the readiness report, 200, nothing created.
func (s *Server) dryRun(w http.ResponseWriter, r *http.Request, req request.Request) {
	if s.Scanner == nil {
		writeError(w, http.StatusNotImplemented, "dry runs are not configured on this app; run spemigrate scan")
		return
	}
	rep, err := s.Scanner.Scan(r.Context(), req)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, "the source is too large to scan within one request; run spemigrate scan")
		return
	case err != nil:
		// Mostly a source that cannot be listed (credentials, missing
		// container): the caller's to fix, so say what failed.
		s.log().WarnContext(r.Context(), "dry run failed", "err", err)
		writeError(w, http.StatusUnprocessableEntity, "scan source: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
