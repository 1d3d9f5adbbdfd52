package graphemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
)

// Route names, used by call counts and fault rules.
const (
	RouteProvision      = "provisionMigrationContainers"
	RouteCreateJob      = "createMigrationJob"
	RouteDeleteJob      = "deleteMigrationJob"
	RouteGetJob         = "getMigrationJob"
	RouteListJobs       = "listMigrationJobs"
	RouteProgressEvents = "listProgressEvents"
	RouteDriveRoot      = "driveRoot"
	RouteDriveItem      = "driveItem"
	RouteDriveChildren  = "driveChildren"
	RouteDriveDelta     = "driveDelta"
	RouteDriveContent   = "driveContent"
	RouteDriveVersions  = "driveVersions"
	RouteCreateFolder   = "createFolder"
)

// faultsFile is the JSON form of Config.FaultsFile.
type faultsFile struct {
	Rules     []FaultRule `json:"rules"`
	JobFaults *JobFaults  `json:"jobFaults"`
}

func readFaultsFile(path string) (faultsFile, error) {
	var ff faultsFile
	b, err := os.ReadFile(path)
	if err != nil {
		return ff, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ff); err != nil {
		return ff, fmt.Errorf("%s: %w (want {\"rules\": [...], \"jobFaults\": {...}})", path, err)
	}
	return ff, nil
}

// FaultRule makes calls to a route fail. With Count > 0 it fails the next
// Count calls and is then spent (a script); otherwise it fails each call
// with Probability.
type FaultRule struct {
	// Route is a route name (RouteProvision, …) or "*" for every route.
	Route string `json:"route"`
	// Status is 429, 503 or 500.
	Status int `json:"status"`
	// RetryAfter is the Retry-After header in seconds (429/503). Default 1.
	RetryAfter  int     `json:"retryAfter,omitempty"`
	Probability float64 `json:"probability,omitempty"`
	Count       int     `json:"count,omitempty"`
}

func (f FaultRule) check() error {
	switch f.Status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusInternalServerError:
	default:
		return fmt.Errorf("fault status %d: use 429, 503 or 500", f.Status)
	}
	if f.Route == "" {
		return fmt.Errorf("fault route is empty: use a route name or \"*\"")
	}
	if f.Count <= 0 && (f.Probability <= 0 || f.Probability > 1) {
		return fmt.Errorf("fault needs count > 0 or 0 < probability <= 1")
	}
	return nil
}

// faults holds the active fault rules, the queued one-shot job faults and
// the per-route call counts.
type faults struct {
	mu     sync.Mutex
	rules  []*FaultRule
	jobs   []JobFaults
	counts map[string]int64
	// injected counts the calls answered with a fault, per route.
	injected map[string]int64
}

func (f *faults) add(r FaultRule) error {
	if err := r.check(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &r)
	return nil
}

// hit counts a call and returns the fault to answer it with, if any.
func (f *faults) hit(route string) *FaultRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[route]++
	for i, r := range f.rules {
		if r.Route != route && r.Route != "*" {
			continue
		}
		if r.Count > 0 {
			r.Count--
			f.countInjected(route)
			out := *r
			if r.Count == 0 {
				f.rules = append(f.rules[:i], f.rules[i+1:]...)
			}
			return &out
		}
		if r.Probability > 0 && rand.Float64() < r.Probability {
			f.countInjected(route)
			out := *r
			return &out
		}
	}
	return nil
}

func (f *faults) countInjected(route string) {
	if f.injected == nil {
		f.injected = map[string]int64{}
	}
	f.injected[route]++
}

// nextJobFaults pops a one-shot job fault set, if one was queued.
func (f *faults) nextJobFaults() (JobFaults, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.jobs) == 0 {
		return JobFaults{}, false
	}
	j := f.jobs[0]
	f.jobs = f.jobs[1:]
	return j, true
}

func writeFault(w http.ResponseWriter, r *http.Request, fr *FaultRule) {
	ra := fr.RetryAfter
	if ra <= 0 {
		ra = 1
	}
	switch fr.Status {
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		writeError(w, r, fr.Status, "activityLimitReached", "RetryAfterDelay", "The request has been throttled. Retry after the delay in Retry-After.")
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		writeError(w, r, fr.Status, "serviceNotAvailable", "", "The service is temporarily unavailable. Retry after the delay in Retry-After.")
	default:
		writeError(w, r, fr.Status, "generalException", "", "An unexpected error occurred (injected fault).")
	}
}

// Admin endpoint (no auth; loopback only):
//
//	GET    /_admin/counts          call counts per route
//	POST   /_admin/counts/reset    zero the counts
//	GET    /_admin/faults          active rules
//	POST   /_admin/faults          add a FaultRule (JSON)
//	DELETE /_admin/faults          remove every rule and queued job fault
//	POST   /_admin/jobfaults       queue a JobFaults (JSON) for the next job
//	POST   /_admin/containers      add an SPE container (JSON Container)
//	GET    /_admin/containers/{id}/tree   imported items (also /_emulator/…)
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request, rest string) {
	f := &s.faults
	switch {
	case rest == "counts" && r.Method == http.MethodGet:
		f.mu.Lock()
		out := map[string]any{}
		var total int64
		for k, v := range f.counts {
			out[k] = v
			total += v
		}
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"counts": out, "total": total})
	case rest == "counts/reset" && r.Method == http.MethodPost:
		f.mu.Lock()
		f.counts = map[string]int64{}
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case rest == "faults" && r.Method == http.MethodGet:
		f.mu.Lock()
		rules := make([]FaultRule, 0, len(f.rules))
		for _, x := range f.rules {
			rules = append(rules, *x)
		}
		jobs := append([]JobFaults{}, f.jobs...)
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"rules": rules, "jobFaults": jobs})
	case rest == "faults" && r.Method == http.MethodPost:
		var fr FaultRule
		if err := json.NewDecoder(r.Body).Decode(&fr); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := f.add(fr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case rest == "faults" && r.Method == http.MethodDelete:
		f.mu.Lock()
		f.rules, f.jobs = nil, nil
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case rest == "containers" && r.Method == http.MethodPost:
		var c Container
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.AddContainer(c); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
	case rest == "jobfaults" && r.Method == http.MethodPost:
		var jf JobFaults
		if err := json.NewDecoder(r.Body).Decode(&jf); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.AddJobFaults(jf)
		w.WriteHeader(http.StatusNoContent)
	case rest == "content" && r.Method == http.MethodPut:
		s.serveOverwrite(w, r)
	default:
		if id, ok := cutTree(rest); ok && r.Method == http.MethodGet {
			s.serveTree(w, r, id)
			return
		}
		http.NotFound(w, r)
	}
}

// AddFault activates a fault rule (same as POST /_admin/faults).
func (s *Server) AddFault(r FaultRule) error { return s.faults.add(r) }

// AddJobFaults queues faults for the next job created.
func (s *Server) AddJobFaults(jf JobFaults) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.jobs = append(s.faults.jobs, jf)
}

// ClearFaults removes every fault rule and queued job fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.rules, s.faults.jobs = nil, nil
}

// Counts returns the number of calls per route since start (or reset).
func (s *Server) Counts() map[string]int64 {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make(map[string]int64, len(s.faults.counts))
	for k, v := range s.faults.counts {
		out[k] = v
	}
	return out
}
