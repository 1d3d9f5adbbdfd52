package graphemu

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

type jobState int

const (
	stateQueued jobState = iota
	stateProcessing
	stateFinished
	stateDeleted
)

// job is one migration job. Events are kept in memory: they are small and
// bounded by the package's object count.
type job struct {
	id          string
	containerID string
	prov        *provisioning
	key         []byte
	faults      JobFaults

	mu        sync.Mutex
	state     jobState
	events    []map[string]any
	ended     time.Time
	corr      string
	retries   int
	cancel    context.CancelFunc
	cancelled bool
	postponed int
}

func (s *Server) handleCreateJob(w http.ResponseWriter, r *http.Request, cid string) {
	d := s.container(cid)
	if d == nil {
		containerNotFound(w, r, cid)
		return
	}
	var body struct {
		ContainerInfo *struct {
			DataContainerURI     *string `json:"dataContainerUri"`
			MetadataContainerURI *string `json:"metadataContainerUri"`
			EncryptionKey        *string `json:"encryptionKey"`
		} `json:"containerInfo"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, r, http.StatusBadRequest, "invalidRequest", "", "The request body is not valid JSON: "+err.Error())
		return
	}
	ci := body.ContainerInfo
	if ci == nil || ci.DataContainerURI == nil || ci.MetadataContainerURI == nil || ci.EncryptionKey == nil {
		writeError(w, r, http.StatusBadRequest, "invalidRequest", "", "containerInfo with dataContainerUri, metadataContainerUri and encryptionKey is required.")
		return
	}
	bad := func(msg string) {
		writeError(w, r, http.StatusBadRequest, "migrationBadRequest", "invalidAzureResource", msg)
	}
	pd, dn, err := s.checkContainerURI("dataContainerUri", *ci.DataContainerURI, d.c.ID)
	if err != nil {
		bad(err.Error())
		return
	}
	pm, mn, err := s.checkContainerURI("metadataContainerUri", *ci.MetadataContainerURI, d.c.ID)
	if err != nil {
		bad(err.Error())
		return
	}
	if pd != pm || dn != pd.data || mn != pd.meta {
		bad("containerInfo: dataContainerUri and metadataContainerUri must be the data and metadata containers of one provisioning call")
		return
	}
	key, err := base64.StdEncoding.DecodeString(*ci.EncryptionKey)
	if err != nil || len(key) != 32 {
		bad("containerInfo.encryptionKey must be the base64 of a 32-byte AES-256 key")
		return
	}
	if !bytes.Equal(key, pd.key) && s.cfg.Knobs.WrongKey == "sync" {
		bad("containerInfo.encryptionKey is not the key returned when these containers were provisioned")
		return
	}
	s.mu.Lock()
	if s.cfg.Knobs.OneJobPerContainerPair && pd.jobs > 0 {
		s.mu.Unlock()
		bad("these migration containers already served a job; provision new ones")
		return
	}
	pd.jobs++
	j := &job{id: uuid.NewString(), containerID: d.c.ID, prov: pd, key: key, faults: s.cfg.JobFaults, corr: uuid.NewString()}
	if jf, ok := s.faults.nextJobFaults(); ok {
		j.faults = jf
	}
	s.jobs[strings.ToLower(j.id)] = j
	s.mu.Unlock()
	s.emit(j, "sharePointMigrationJobQueuedEvent", nil)
	s.enqueue(j)
	writeJSON(w, http.StatusCreated, map[string]any{
		"@odata.context": "https://graph.microsoft.com/" + graphVersion(r) + "/$metadata#storage/fileStorage/containers('" + d.c.ID + "')/migrationJobs/$entity",
		"id":             j.id,
	})
}

func (s *Server) lookupJob(cid, jid string) *job {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[strings.ToLower(jid)]
	if j == nil || !strings.EqualFold(j.containerID, cid) {
		return nil
	}
	return j
}

// jobOr404 finds a job of a container, or answers 404 as Graph does for an
// unknown container or job and returns nil.
func (s *Server) jobOr404(w http.ResponseWriter, r *http.Request, cid, jid string) *job {
	if s.container(cid) == nil {
		containerNotFound(w, r, cid)
		return nil
	}
	j := s.lookupJob(cid, jid)
	if j == nil {
		s.jobNotFound(w, r)
	}
	return j
}

func (s *Server) jobNotFound(w http.ResponseWriter, r *http.Request) {
	inner := "jobNotFound"
	if s.cfg.Knobs.NotFoundCodes == "topOnly" {
		inner = ""
	}
	writeError(w, r, http.StatusNotFound, "migrationNotFound", inner, "The migration job was not found.")
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request, cid, jid string) {
	j := s.jobOr404(w, r, cid, jid)
	if j == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"@odata.type": "#microsoft.graph.sharePointMigrationJob", "id": j.id})
}

func (s *Server) handleDeleteJob(w http.ResponseWriter, r *http.Request, cid, jid string) {
	j := s.jobOr404(w, r, cid, jid)
	if j == nil {
		return
	}
	j.mu.Lock()
	switch j.state {
	case stateQueued:
		j.state = stateDeleted
		j.ended = s.cfg.Now()
		j.mu.Unlock()
		s.emit(j, "sharePointMigrationJobDeletedEvent", nil)
		w.WriteHeader(http.StatusNoContent)
	case stateProcessing:
		if s.cfg.Knobs.DeleteProcessing != "cancel" || j.cancelled {
			j.mu.Unlock()
			s.jobNotFound(w, r)
			return
		}
		j.cancelled = true
		cancel := j.cancel
		j.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		j.mu.Unlock()
		s.jobNotFound(w, r)
	}
}

// emit appends an event to the job's stream.
func (s *Server) emit(j *job, typ string, fields map[string]any) {
	ev := map[string]any{}
	for k, v := range fields {
		ev[k] = v
	}
	ev["@odata.type"] = "#microsoft.graph." + typ
	ev["id"] = uuid.NewString()
	ev["jobId"] = j.id
	ev["eventDateTime"] = s.cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	j.mu.Lock()
	ev["correlationId"] = j.corr
	j.events = append(j.events, ev)
	j.mu.Unlock()
}

// enum applies the configured casing to an enum value given in camelCase.
func (s *Server) enum(v string) string {
	if s.cfg.Knobs.EnumCase == "pascal" && v != "" {
		return strings.ToUpper(v[:1]) + v[1:]
	}
	return v
}

// pageCursor reads the position (and whether the empty page before it was
// served) from a progressEvents query, in either paging style. ok is false
// for a cursor the emulator did not issue.
func pageCursor(q url.Values) (pos int, emptyServed, ok bool) {
	for k, v := range q {
		if len(v) == 0 {
			continue
		}
		switch {
		case strings.EqualFold(k, "$skiptoken"):
			tok, e := strings.CutSuffix(v[0], ".e")
			n, ok := decodeCursor(tok)
			return n, e, ok
		case strings.EqualFold(k, "$skip"):
			n, err := strconv.Atoi(v[0])
			return n, q.Get("served") == "empty", err == nil && n >= 0
		}
	}
	return 0, false, true
}

// pageLink is the next link to position n in the configured style.
func (s *Server) pageLink(base string, n int, emptyServed bool) string {
	if s.cfg.Knobs.Paging == "skip" {
		l := base + "?$skip=" + strconv.Itoa(n)
		if emptyServed {
			l += "&served=empty"
		}
		return l
	}
	tok := encodeCursor(n)
	if emptyServed {
		tok += ".e"
	}
	return base + "?$skiptoken=" + tok
}

func encodeCursor(n int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(n)))
}

func decodeCursor(tok string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(tok, "="))
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(string(b))
	return n, err == nil && n >= 0
}

func (s *Server) handleProgressEvents(w http.ResponseWriter, r *http.Request, version, cid, jid string) {
	j := s.jobOr404(w, r, cid, jid)
	if j == nil {
		return
	}
	start, emptyServed, ok := pageCursor(r.URL.Query())
	if !ok {
		writeError(w, r, http.StatusBadRequest, "invalidRequest", "", "The $skiptoken is not valid; use the @odata.nextLink as returned.")
		return
	}
	j.mu.Lock()
	if !j.ended.IsZero() && s.cfg.Now().After(j.ended.Add(s.cfg.EventRetention)) {
		j.mu.Unlock()
		inner := "jobProgressExpired"
		if s.cfg.Knobs.NotFoundCodes == "topOnly" {
			inner = ""
		}
		writeError(w, r, http.StatusNotFound, "migrationNotFound", inner, "The job's progress events expired.")
		return
	}
	total := len(j.events)
	if start > total {
		start = total
	}
	end := min(start+s.cfg.Knobs.PageSize, total)
	// An empty page that still links onwards: only before a page that has
	// events, so an exhausted stream still answers with its own link.
	empty := s.cfg.Knobs.EmptyPages && !emptyServed && end > start
	page := []map[string]any{}
	if empty {
		end = start
	} else {
		page = append(page, j.events[start:end]...)
	}
	j.mu.Unlock()
	base := s.url + "/" + version + "/storage/fileStorage/containers/" + cid + "/migrationJobs/" + j.id + "/progressEvents"
	out := map[string]any{
		"@odata.context": "https://graph.microsoft.com/" + version + "/$metadata#storage/fileStorage/containers('" + cid + "')/migrationJobs('" + j.id + "')/progressEvents",
		"value":          page,
	}
	if empty || !(s.cfg.Knobs.OmitNextLinkWhenExhausted && end == total) {
		out["@odata.nextLink"] = s.pageLink(base, end, empty)
	}
	writeJSON(w, http.StatusOK, out)
}
