package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/schedule"
)

const (
	containerID = "b!ISJs1WRro0y0EWgkUYcktDa0mE8zSlFEqFzqRn70Zwp1"
	secretSig   = "Zm9vYmFyU2VjcmV0"
	validBody   = `{"v":1,"source":{"kind":"azureBlob","containerUrl":"https://acct.blob.core.windows.net/src?sv=2024-08-04&sp=rl&sig=` + secretSig + `"},"target":{"containerId":"` + containerID + `"}}`
)

// fakeBackend is an in-memory Backend for the API's own logic; the real
// backend is exercised end to end through the dev host.
type fakeBackend struct {
	mu     sync.Mutex
	ms     map[string]*Migration
	digest map[string]string
	items  map[string][]Item
	starts int
	fail   error
}

func newFake() *fakeBackend {
	return &fakeBackend{ms: map[string]*Migration{}, digest: map[string]string{}, items: map[string][]Item{}}
}

func (f *fakeBackend) Start(_ context.Context, id string, req request.Request) (Migration, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return Migration{}, false, f.fail
	}
	if m, ok := f.ms[id]; ok {
		if f.digest[id] != req.Digest() {
			return Migration{}, false, ErrIDConflict
		}
		return *m, false, nil
	}
	f.starts++
	red := req.Redacted()
	m := &Migration{ID: id, Status: StatusRunning, Request: &red, Created: time.Date(2026, 11, 26, 0, 0, f.starts, 0, time.UTC)}
	f.ms[id], f.digest[id] = m, req.Digest()
	return *m, true, nil
}

func (f *fakeBackend) List(_ context.Context, token string, limit int) ([]Migration, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []Migration
	for _, m := range f.ms {
		all = append(all, *m)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Created.After(all[j].Created) })
	start := 0
	if token != "" {
		fmt.Sscan(token, &start)
	}
	end := min(start+limit, len(all))
	next := ""
	if end < len(all) {
		next = fmt.Sprint(end)
	}
	return all[start:end], next, nil
}

func (f *fakeBackend) Get(_ context.Context, id string) (Migration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m, ok := f.ms[id]; ok {
		return *m, nil
	}
	return Migration{}, fmt.Errorf("load %s: %w", id, ErrNotFound)
}

func (f *fakeBackend) Items(_ context.Context, id, token string, limit int) ([]Item, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ms[id]; !ok {
		return nil, "", ErrNotFound
	}
	all := f.items[id]
	start := 0
	if token != "" {
		fmt.Sscan(token, &start)
	}
	end := min(start+limit, len(all))
	next := ""
	if end < len(all) {
		next = fmt.Sprint(end)
	}
	return all[start:end], next, nil
}

func (f *fakeBackend) Cancel(_ context.Context, id string) (Migration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.ms[id]
	if !ok {
		return Migration{}, ErrNotFound
	}
	if !m.Terminal() {
		m.CancelRequested, m.Status = true, StatusCancelling
	}
	return *m, nil
}

type memSchedules struct {
	mu sync.Mutex
	m  map[string]*schedule.Schedule
}

func (s *memSchedules) Create(_ context.Context, sc *schedule.Schedule) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[sc.ID]; ok {
		return schedule.ErrExists
	}
	cp := *sc
	s.m[sc.ID] = &cp
	return nil
}

func (s *memSchedules) Get(_ context.Context, id string) (*schedule.Schedule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sc, ok := s.m[id]; ok {
		cp := *sc
		return &cp, nil
	}
	return nil, schedule.ErrNotFound
}

func (s *memSchedules) List(context.Context) ([]*schedule.Schedule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*schedule.Schedule
	for _, sc := range s.m {
		cp := *sc
		out = append(out, &cp)
	}
	return out, nil
}

func (s *memSchedules) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		return schedule.ErrNotFound
	}
	delete(s.m, id)
	return nil
}

func newServer() (*Server, *fakeBackend, *memSchedules) {
	fb := newFake()
	ms := &memSchedules{m: map[string]*schedule.Schedule{}}
	n := 0
	return &Server{Backend: fb, Schedules: ms, Now: func() time.Time { return time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC) },
		NewID: func() string { n++; return fmt.Sprintf("gen-%d", n) }}, fb, ms
}

type response struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response %d %q: %v", r.Code, r.Body, err)
	}
}

func do(t *testing.T, h http.Handler, method, path string, body []byte, header ...string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

func TestPostMigration(t *testing.T) {
	s, fb, _ := newServer()
	h := s.Handler()

	r := do(t, h, "POST", "/api/migrations", []byte(validBody))
	if r.Code != http.StatusAccepted || r.Header.Get("Location") != "/api/migrations/gen-1" {
		t.Fatalf("POST = %d %v %s", r.Code, r.Header, r.Body)
	}
	if bytes.Contains(r.Body, []byte(secretSig)) {
		t.Errorf("response echoes the SAS signature: %s", r.Body)
	}
	var m Migration
	r.json(t, &m)
	if m.ID != "gen-1" || m.Status != StatusRunning || m.Request == nil || m.Request.ID != "gen-1" {
		t.Errorf("migration = %+v", m)
	}

	// Client-chosen id: idempotent.
	withID := strings.Replace(validBody, `{"v":1,`, `{"v":1,"id":"nightly-1",`, 1)
	for i, want := range []int{http.StatusAccepted, http.StatusOK} {
		r := do(t, h, "POST", "/api/migrations", []byte(withID))
		if r.Code != want || r.Header.Get("Location") != "/api/migrations/nightly-1" {
			t.Fatalf("POST #%d with id = %d %s", i+1, r.Code, r.Body)
		}
	}
	// Same id, different request: 409 naming the id.
	r = do(t, h, "POST", "/api/migrations", []byte(strings.Replace(withID, `"target":{`, `"target":{"folder":"x",`, 1)))
	if r.Code != http.StatusConflict || !bytes.Contains(r.Body, []byte(`"field": "id"`)) {
		t.Errorf("conflicting id = %d %s", r.Code, r.Body)
	}
	// Idempotency-Key header.
	for i, want := range []int{http.StatusAccepted, http.StatusOK} {
		r := do(t, h, "POST", "/api/migrations", []byte(validBody), "Idempotency-Key", "retry-me")
		if r.Code != want || r.Header.Get("Location") != "/api/migrations/"+request.IDForIdempotencyKey("retry-me") {
			t.Fatalf("POST #%d with Idempotency-Key = %d %v %s", i+1, r.Code, r.Header, r.Body)
		}
	}
	if fb.starts != 3 {
		t.Errorf("backend started %d migrations, want 3", fb.starts)
	}

	// A backend failure is a 503 without its text.
	fb.fail = errors.New("table storage: <Error><Message>AccountKey=abc</Message></Error>")
	r = do(t, h, "POST", "/api/migrations", []byte(validBody))
	if r.Code != http.StatusServiceUnavailable || bytes.Contains(r.Body, []byte("AccountKey")) {
		t.Errorf("backend failure = %d %s", r.Code, r.Body)
	}
}

// malformed are twenty-plus bad POST /api/migrations bodies; each must get
// a 4xx naming the problem and start nothing.
var malformed = []struct {
	name  string
	body  string
	code  int
	field string
	want  string
}{
	{"empty body", ``, 400, "", "empty body"},
	{"bad JSON", `{"v":1,`, 400, "", "invalid JSON"},
	{"JSON array", `[]`, 400, "", "expected a JSON object"},
	{"JSON string", `"migrate please"`, 400, "", "expected a JSON object"},
	{"missing version", `{"source":{"kind":"localFolder","path":"/d"},"target":{"containerId":"` + containerID + `"}}`, 400, "v", "required"},
	{"missing source", `{"v":1,"target":{"containerId":"` + containerID + `"}}`, 400, "source.kind", "required"},
	{"missing target", `{"v":1,"source":{"kind":"localFolder","path":"/d"}}`, 400, "target.containerId", "required"},
	{"wrong type for version", `{"v":"one","source":{"kind":"localFolder","path":"/d"},"target":{"containerId":"` + containerID + `"}}`, 400, "v", "expected an integer"},
	{"wrong type for source", `{"v":1,"source":[],"target":{"containerId":"` + containerID + `"}}`, 400, "source", "expected an object"},
	{"unknown source kind", strings.Replace(validBody, `"azureBlob"`, `"s3"`, 1), 400, "source.kind", "unknown kind"},
	{"unknown container id format", strings.Replace(validBody, containerID, "my-container", 1), 400, "target.containerId", "'b!'"},
	{"invalid URL", strings.Replace(validBody, "https://acct.blob.core.windows.net/src", "not a url", 1), 400, "source.containerUrl", "absolute URL"},
	{"http URL", strings.Replace(validBody, "https://", "http://", 1), 400, "source.containerUrl", "https"},
	{"URL with a path", strings.Replace(validBody, "/src?", "/src/deeper?", 1), 400, "source.containerUrl", "source.prefix"},
	{"bad container name", strings.Replace(validBody, "/src?", "/S?", 1), 400, "source.containerUrl", "container name"},
	{"negative maxItems", strings.Replace(validBody, `}}`, `},"options":{"batch":{"maxItems":-1}}}`, 1), 400, "options.batch.maxItems", "between 1 and 250"},
	{"negative maxBytes", strings.Replace(validBody, `}}`, `},"options":{"batch":{"maxBytes":-100}}}`, 1), 400, "options.batch.maxBytes", "between 1"},
	{"unknown option", strings.Replace(validBody, `}}`, `},"options":{"deleteAfter":true}}`, 1), 400, "options.deleteAfter", "unknown field"},
	{"unknown top-level field", strings.Replace(validBody, `{"v":1,`, `{"v":1,"priority":9,`, 1), 400, "priority", "unknown field"},
	{"bad naming policy", strings.Replace(validBody, `}}`, `},"options":{"naming":{"invalidChars":"strip"}}}`, 1), 400, "options.naming.invalidChars", `"replace" or "skip"`},
	{"bad user map", strings.Replace(validBody, `}}`, `},"options":{"userMap":{"bob":"not an email"}}}`, 1), 400, `options.userMap["bob"]`, "user principal name"},
	{"SAS credential without a token", strings.Replace(validBody, "?sv=2024-08-04&sp=rl&sig="+secretSig, "", 1)[:0] + `{"v":1,"source":{"kind":"azureBlob","credential":"sas","containerUrl":"https://acct.blob.core.windows.net/src"},"target":{"containerId":"` + containerID + `"}}`, 400, "source.containerUrl", "SAS token"},
	{"relative local path", `{"v":1,"source":{"kind":"localFolder","path":"data"},"target":{"containerId":"` + containerID + `"}}`, 400, "source.path", "absolute"},
	{"bad id", strings.Replace(validBody, `{"v":1,`, `{"v":1,"id":"a/b",`, 1), 400, "id", "1-64 characters"},
	{"oversized body", `{"v":1,"id":"` + strings.Repeat("x", request.MaxBodyBytes) + `"}`, 413, "", "larger than"},
}

func TestMalformedRequestsStartNothing(t *testing.T) {
	if len(malformed) < 20 {
		t.Fatalf("%d cases; want at least 20", len(malformed))
	}
	s, fb, _ := newServer()
	h := s.Handler()
	for _, tt := range malformed {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, h, "POST", "/api/migrations", []byte(tt.body))
			checkMalformed(t, r, tt.code, tt.field, tt.want)
		})
	}
	if fb.starts != 0 {
		t.Errorf("malformed requests started %d migrations", fb.starts)
	}
	r := do(t, h, "POST", "/api/migrations", []byte(validBody), "Content-Type", "text/plain")
	if r.Code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body = %d", r.Code)
	}
	r = do(t, h, "POST", "/api/migrations", []byte(validBody), "Idempotency-Key", strings.Repeat("k", 300))
	checkMalformed(t, r, 400, "Idempotency-Key", "at most")
	if fb.starts != 0 {
		t.Errorf("rejected requests started %d migrations", fb.starts)
	}
}

func checkMalformed(t *testing.T, r response, code int, field, want string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("status = %d, want %d; body %s", r.Code, code, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var eb ErrorBody
	r.json(t, &eb)
	found := false
	for _, f := range eb.Errors {
		if f.Field == field && strings.Contains(f.Message, want) {
			found = true
		}
	}
	if !found {
		t.Errorf("error body %s does not name %q with %q", r.Body, field, want)
	}
	if !strings.Contains(eb.Error, want) && len(eb.Errors) == 1 {
		t.Errorf("summary %q does not say %q", eb.Error, want)
	}
	if bytes.Contains(r.Body, []byte(secretSig)) {
		t.Errorf("error echoes the SAS signature: %s", r.Body)
	}
}

// The same malformed requests through the Functions wire protocol (payload
// mode, the way the host delivers them) get the same 4xx in the http output.
func TestMalformedThroughHostPayload(t *testing.T) {
	s, fb, _ := newServer()
	fn := handlers.HTTP("req", "res", s.Handler())
	for _, tt := range malformed {
		if tt.code == 413 {
			continue // the host's own body limits apply before the handler
		}
		payload, _ := json.Marshal(map[string]any{"Data": map[string]any{"req": map[string]any{
			"Url": "http://localhost:7071/api/migrations", "Method": "POST",
			"Headers": map[string][]string{"Content-Type": {"application/json"}}, "Body": tt.body,
		}}, "Metadata": map[string]any{}})
		var inv handlers.InvokeRequest
		if err := json.Unmarshal(payload, &inv); err != nil {
			t.Fatal(err)
		}
		res, err := fn.Invoke(context.Background(), &inv)
		if err != nil {
			t.Fatalf("%s: invocation failed: %v", tt.name, err)
		}
		out := res.Outputs["res"].(handlers.HTTPOutput)
		checkMalformed(t, response{out.StatusCode, http.Header{"Content-Type": {out.Headers["Content-Type"]}}, []byte(out.Body)}, tt.code, tt.field, tt.want)
	}
	if fb.starts != 0 {
		t.Errorf("started %d", fb.starts)
	}
}

func TestReadAndCancel(t *testing.T) {
	s, fb, _ := newServer()
	h := s.Handler()
	for range 5 {
		do(t, h, "POST", "/api/migrations", []byte(validBody))
	}
	fb.items["gen-1"] = []Item{
		{SourcePath: "a/b.txt", TargetPath: "a/b.txt", BatchID: "p000000-b000", Size: 3, Outcome: OutcomeImported},
		{SourcePath: "a/c:d.txt", TargetPath: "a/c_d.txt", BatchID: "p000000-b000", Size: 4, Outcome: OutcomeRenamed, Reason: `":" is not allowed; replaced with "_"`},
		{SourcePath: "=cmd.txt", Outcome: OutcomeSkipped, Reason: "name collides with =CMD.txt"},
		{SourcePath: "big.bin", TargetPath: "big.bin", Size: 1 << 30, Outcome: OutcomeFailed, Reason: "import failed: file is locked"},
	}

	// Paged listing, newest first.
	var page struct {
		Migrations []Migration `json:"migrations"`
		Next       string      `json:"nextPageToken"`
	}
	r := do(t, h, "GET", "/api/migrations?limit=2", nil)
	r.json(t, &page)
	if r.Code != 200 || len(page.Migrations) != 2 || page.Migrations[0].ID != "gen-5" || page.Next == "" {
		t.Fatalf("page 1 = %d %s", r.Code, r.Body)
	}
	var seen []string
	for token := ""; ; {
		var p struct {
			Migrations []Migration `json:"migrations"`
			Next       string      `json:"nextPageToken"`
		}
		do(t, h, "GET", "/api/migrations?limit=2&pageToken="+token, nil).json(t, &p)
		for _, m := range p.Migrations {
			seen = append(seen, m.ID)
		}
		if p.Next == "" {
			break
		}
		token = p.Next
	}
	if strings.Join(seen, ",") != "gen-5,gen-4,gen-3,gen-2,gen-1" {
		t.Errorf("paged through %v", seen)
	}
	if r := do(t, h, "GET", "/api/migrations?limit=0", nil); r.Code != 400 || !bytes.Contains(r.Body, []byte(`"limit"`)) {
		t.Errorf("limit=0 = %d %s", r.Code, r.Body)
	}

	if r := do(t, h, "GET", "/api/migrations/gen-1", nil); r.Code != 200 {
		t.Errorf("GET = %d", r.Code)
	}
	if r := do(t, h, "GET", "/api/migrations/nope", nil); r.Code != 404 || !bytes.Contains(r.Body, []byte("nope not found")) {
		t.Errorf("GET unknown = %d %s", r.Code, r.Body)
	}

	var items struct {
		Items []Item `json:"items"`
		Next  string `json:"nextPageToken"`
	}
	do(t, h, "GET", "/api/migrations/gen-1/items?limit=3", nil).json(t, &items)
	if len(items.Items) != 3 || items.Next == "" || items.Items[1].Outcome != OutcomeRenamed {
		t.Errorf("items = %+v", items)
	}

	r = do(t, h, "GET", "/api/migrations/gen-1/report.csv", nil)
	if r.Code != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("report = %d %v", r.Code, r.Header)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 || strings.Join(rows[0], ",") != strings.Join(ReportHeader, ",") {
		t.Fatalf("report rows = %q", rows)
	}
	if rows[2][5] != "renamed" || !strings.Contains(rows[2][6], "replaced") || rows[3][0] != "'=cmd.txt" || rows[4][5] != "failed" {
		t.Errorf("report = %q", rows)
	}
	if r := do(t, h, "GET", "/api/migrations/nope/report.csv", nil); r.Code != 404 {
		t.Errorf("report of unknown = %d", r.Code)
	}
	// The same rows as JSON Lines.
	r = do(t, h, "GET", "/api/migrations/gen-1/report.jsonl", nil)
	if r.Code != 200 || r.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("jsonl report = %d %v", r.Code, r.Header)
	}
	lines := strings.Split(strings.TrimSpace(string(r.Body)), "\n")
	if len(lines) != len(rows)-1 {
		t.Fatalf("%d JSON lines for %d CSV rows", len(lines), len(rows)-1)
	}
	for i, l := range lines {
		var it Item
		if err := json.Unmarshal([]byte(l), &it); err != nil || it.Outcome != rows[i+1][5] {
			t.Errorf("line %d = %s (%v); CSV says %s", i, l, err, rows[i+1][5])
		}
	}
	if r := do(t, h, "GET", "/api/migrations/nope/report.jsonl", nil); r.Code != 404 {
		t.Errorf("jsonl report of unknown = %d", r.Code)
	}

	r = do(t, h, "DELETE", "/api/migrations/gen-2", nil)
	var m Migration
	r.json(t, &m)
	if r.Code != http.StatusAccepted || m.Status != StatusCancelling || !m.CancelRequested {
		t.Errorf("DELETE = %d %s", r.Code, r.Body)
	}
	if r := do(t, h, "DELETE", "/api/migrations/nope", nil); r.Code != 404 {
		t.Errorf("DELETE unknown = %d", r.Code)
	}
	if r := do(t, h, "GET", "/api/migrations/a%2Fb/items", nil); r.Code != 404 {
		t.Errorf("GET with an impossible id = %d %s", r.Code, r.Body)
	}
	if r := do(t, h, "PUT", "/api/migrations/gen-2", nil); r.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT = %d", r.Code)
	}
}

func TestSchedulesAPI(t *testing.T) {
	s, fb, ms := newServer()
	h := s.Handler()
	body := `{"id":"nightly","cron":"0 0 2 * * *","request":` + validBody + `}`
	r := do(t, h, "POST", "/api/schedules", []byte(body))
	if r.Code != http.StatusCreated || r.Header.Get("Location") != "/api/schedules/nightly" {
		t.Fatalf("POST schedule = %d %s", r.Code, r.Body)
	}
	if bytes.Contains(r.Body, []byte(secretSig)) {
		t.Errorf("schedule response echoes the SAS: %s", r.Body)
	}
	var sc Schedule
	r.json(t, &sc)
	if !sc.NextRun.Equal(time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("nextRun = %v", sc.NextRun)
	}
	if stored := ms.m["nightly"]; stored == nil || !strings.Contains(stored.Request.Source.ContainerURL, secretSig) {
		t.Error("the stored template lost its credential")
	}
	if r := do(t, h, "POST", "/api/schedules", []byte(body)); r.Code != http.StatusConflict {
		t.Errorf("duplicate = %d", r.Code)
	}
	for _, bad := range []struct{ body, field string }{
		{`{"cron":"0 0 2 * * *"}`, "request"},
		{`{"cron":"every night","request":` + validBody + `}`, "cron"},
		{`{"cron":"0 0 2 * * *","request":{"v":1}}`, "request.source.kind"},
		{`{"cron":"0 0 2 * * *","request":` + strings.Replace(validBody, `{"v":1,`, `{"v":1,"id":"x",`, 1) + `}`, "request.id"},
		{`{"cron":"0 0 2 * * *","when":"now","request":` + validBody + `}`, ""},
	} {
		r := do(t, h, "POST", "/api/schedules", []byte(bad.body))
		var eb ErrorBody
		r.json(t, &eb)
		if r.Code != 400 || len(eb.Errors) == 0 || eb.Errors[0].Field != bad.field {
			t.Errorf("bad schedule %s = %d %s", bad.body, r.Code, r.Body)
		}
	}
	var list struct {
		Schedules []Schedule `json:"schedules"`
	}
	do(t, h, "GET", "/api/schedules", nil).json(t, &list)
	if len(list.Schedules) != 1 || list.Schedules[0].ID != "nightly" {
		t.Errorf("list = %+v", list)
	}
	if r := do(t, h, "GET", "/api/schedules/nightly", nil); r.Code != 200 {
		t.Errorf("GET schedule = %d", r.Code)
	}
	if r := do(t, h, "DELETE", "/api/schedules/nightly", nil); r.Code != http.StatusNoContent {
		t.Errorf("DELETE schedule = %d", r.Code)
	}
	if r := do(t, h, "GET", "/api/schedules/nightly", nil); r.Code != 404 {
		t.Errorf("GET deleted schedule = %d", r.Code)
	}
	if fb.starts != 0 {
		t.Error("schedule endpoints started a migration")
	}
	_ = io.Discard
}
