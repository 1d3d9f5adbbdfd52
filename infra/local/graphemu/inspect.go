package graphemu

import (
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
)

// JobInfo is what the emulator knows of one migration job, for tests that
// check how many jobs a client created and which of them imported.
type JobInfo struct {
	ID string
	// State is "queued", "processing", "finished" (imported: the job ran to
	// its end) or "deleted" (deleted while queued; it imported nothing).
	State string
	// Cancelled: the job was deleted while processing and stopped.
	Cancelled bool
	// DataContainer is the blob container name of the job's package (one
	// per provisioning call).
	DataContainer string
}

// Jobs lists the jobs created in an SPE container, ordered by id.
func (s *Server) Jobs(containerID string) []JobInfo {
	s.mu.Lock()
	var jobs []*job
	for _, j := range s.jobs {
		if strings.EqualFold(j.containerID, containerID) {
			jobs = append(jobs, j)
		}
	}
	s.mu.Unlock()
	out := make([]JobInfo, 0, len(jobs))
	for _, j := range jobs {
		j.mu.Lock()
		info := JobInfo{ID: j.id, State: j.state.String(), Cancelled: j.cancelled, DataContainer: j.prov.data}
		j.mu.Unlock()
		out = append(out, info)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

func (st jobState) String() string {
	switch st {
	case stateQueued:
		return "queued"
	case stateProcessing:
		return "processing"
	case stateFinished:
		return "finished"
	default:
		return "deleted"
	}
}

// FaultsInjected returns how many calls were answered with an injected
// fault, per route, since start.
func (s *Server) FaultsInjected() map[string]int64 {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make(map[string]int64, len(s.faults.injected))
	for k, v := range s.faults.injected {
		out[k] = v
	}
	return out
}

// IssuedSecrets returns every secret the emulator handed out through
// provisioning: each encryption key (base64, as the response carries it)
// and each SAS signature (the sig value, raw and as it appears
// percent-encoded). A secret scan searches logs and stored rows for them.
func (s *Server) IssuedSecrets() []string {
	s.mu.Lock()
	provs := make(map[*provisioning]bool, len(s.provs))
	for _, p := range s.provs {
		provs[p] = true
	}
	s.mu.Unlock()
	var out []string
	for p := range provs {
		out = append(out, base64.StdEncoding.EncodeToString(p.key))
		for _, raw := range []string{p.dataSAS, p.metaSAS} {
			u, err := url.Parse(raw)
			if err != nil {
				continue
			}
			if sig := u.Query().Get("sig"); sig != "" {
				out = append(out, sig, url.QueryEscape(sig))
			}
		}
	}
	return out
}
