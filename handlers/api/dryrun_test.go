package api

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/scan"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/state"
)

// localSources opens a request's local folder, as the engine's sources do.
type localSources struct{ opened int }

func (l *localSources) Source(_ context.Context, m *state.Migration) (source.Source, error) {
	l.opened++
	return source.NewLocal(m.Request.Source.Path)
}

// POST /api/migrations?dryRun=true answers the readiness report and starts
// nothing; a dryRun that is not a boolean is refused, also starting nothing.
func TestDryRunStartsNothing(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a.txt", "con.txt", "b:c.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, fb, _ := newServer()
	ls := &localSources{}
	s.Scanner = &DryRun{Sources: ls}
	// A deployment that lets local sources read under dir; the strict zero
	// Policy refuses them (a dry run reads the source too).
	s.Policy = request.Policy{LocalRoots: []string{dir}}
	h := s.Handler()
	body := []byte(`{"v":1,"source":{"kind":"localFolder","path":"` + dir + `"},"target":{"containerId":"b!ISJs1WRro0y0EWgkUYcktDa0mE8zSlFEqFzqRn70Zwp1"}}`)

	r := do(t, h, http.MethodPost, "/api/migrations?dryRun=true", body)
	if r.Code != http.StatusOK || r.Header.Get("Location") != "" {
		t.Fatalf("dry run: %d %s", r.Code, r.Body)
	}
	var rep scan.Report
	r.json(t, &rep)
	if !rep.DryRun || rep.Files != 3 || rep.Renamed != 2 || rep.Packages != 1 || rep.Estimate.DurationText == "" {
		t.Errorf("report: %+v", rep)
	}
	r = do(t, h, http.MethodPost, "/api/migrations?dryRun=maybe", body)
	checkMalformed(t, r, http.StatusBadRequest, "dryRun", "true or false")
	r = do(t, h, http.MethodPost, "/api/migrations?dryRun=true", []byte(`{"v":1}`))
	if r.Code != http.StatusBadRequest {
		t.Errorf("invalid request on a dry run: %d %s", r.Code, r.Body)
	}
	if fb.starts != 0 || ls.opened != 1 {
		t.Errorf("backend started %d migrations, source opened %d times; want 0 and 1", fb.starts, ls.opened)
	}

	s.Scanner = nil
	if r := do(t, s.Handler(), http.MethodPost, "/api/migrations?dryRun=1", body); r.Code != http.StatusNotImplemented {
		t.Errorf("no scanner: %d %s", r.Code, r.Body)
	}
}
