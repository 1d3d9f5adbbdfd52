package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/request"
)

const hostileName = `<script>alert(1)</script>.txt`

// statusFixture stores a running migration, created 100 s before the
// server's clock, with one finished batch, one running and one postponed.
func statusFixture(t *testing.T) (*Server, *fakeBackend) {
	t.Helper()
	srv, fb, _ := newServer()
	now := srv.Now()
	req, err := request.DecodeBytes([]byte(validBody))
	if err != nil {
		t.Fatal(err)
	}
	red := req.Redacted()
	fb.ms["m1"] = &Migration{
		ID: "m1", Status: StatusRunning, Created: now.Add(-100 * time.Second), Updated: now.Add(-time.Second),
		Request: &red,
		Counters: Counters{Items: 500, BytesPlanned: 500e6, PlanDone: true, Batches: 3, BatchesDone: 1,
			FilesMigrated: 198, FilesFailed: 2, BytesMigrated: 198e6},
		Batches: []Batch{
			{ID: "b-0001", Status: "succeeded", Attempt: 1, Items: 200, Bytes: 200e6, FilesMigrated: 198, FilesFailed: 2, BytesMigrated: 198e6},
			{ID: "b-0002", Status: "running", Attempt: 1, Items: 200, Bytes: 200e6, JobID: "job-2", FilesProcessed: 50, BytesProcessed: 50e6},
			{ID: "b-0003", Status: "running", Attempt: 1, Items: 100, Bytes: 100e6, JobID: "job-3",
				Postponed: &Postponed{Reason: `Tenant busy <img src=x onerror=alert(2)>`, NextPickup: now.Add(90 * time.Second), JobsInQueue: 7}},
		},
	}
	fb.items["m1"] = []Item{
		{SourcePath: "ok.txt", Outcome: OutcomeImported, BatchID: "b-0001"},
		{SourcePath: hostileName, Outcome: OutcomeFailed, BatchID: "b-0001", Reason: `bad "name" & <b>worse</b>`, ResultCode: "-2147024809"},
		{SourcePath: "b.txt", Outcome: OutcomeFailed, BatchID: "b-0001", Reason: "virus found"},
	}
	return srv, fb
}

func TestStatusMigrationPage(t *testing.T) {
	srv, _ := statusFixture(t)
	h := srv.Handler()
	for _, via := range []string{"direct", "payload"} {
		t.Run(via, func(t *testing.T) {
			var resp response
			if via == "direct" {
				resp = do(t, h, http.MethodGet, "/api/status/m1", nil)
			} else {
				resp = viaPayload(t, h, http.MethodGet, "/api/status/m1", "")
			}
			if resp.Code != http.StatusOK {
				t.Fatalf("GET /api/status/m1: %d %s", resp.Code, resp.Body)
			}
			checkStatusHeaders(t, resp)
			body := string(resp.Body)
			for _, want := range []string{
				// Escaped, never live markup.
				"&lt;script&gt;alert(1)&lt;/script&gt;.txt",
				"Tenant busy &lt;img src=x onerror=alert(2)&gt;",
				"bad &#34;name&#34; &amp; &lt;b&gt;worse&lt;/b&gt;",
				// 200 done + 50 running of 500 files; 250 MB over 100 s.
				`id="files-done">250 / 500<`, `id="files-per-s">2.50<`, `id="mb-per-s">2.50<`,
				// 250 MB left at 2.5 MB/s.
				`id="eta">1m40s<`,
				`<progress id="overall" value="250" max="500">`,
				`<progress value="200" max="200">`, `<progress value="50" max="200">`, `<progress value="0" max="100">`,
				"2026-11-26 23:01:30Z (in 1m30s)", `<td class="n">7</td>`,
				"All 2 failed files.", "-2147024809", "virus found",
				`href="../migrations/m1/report.csv"`, `href="../migrations/m1/report.jsonl"`,
				`<meta http-equiv="refresh" content="10">`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			for _, bad := range []string{"<script", "<img", secretSig, "sig="} {
				if strings.Contains(body, bad) {
					t.Errorf("page contains %q", bad)
				}
			}
		})
	}
}

func checkStatusHeaders(t *testing.T, resp response) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "default-src 'none'; style-src 'sha256-") || strings.Contains(csp, "script") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", got)
	}
	// The CSP's hash is the hash of the page's one style sheet.
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindAllStringSubmatch(string(resp.Body), -1)
	if len(m) != 1 || !strings.Contains(csp, "'sha256-"+hashCSS(m[0][1])+"'") {
		t.Errorf("%d style elements; CSP %q does not allow the page's style", len(m), csp)
	}
}

// viaPayload sends the request through the payload-mode adapter, as the
// Functions host does, and returns its http output.
func viaPayload(t *testing.T, h http.Handler, method, path, body string) response {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{"Data": map[string]any{"req": map[string]any{
		"Url": "http://localhost:7071" + path, "Method": method, "Headers": map[string][]string{}, "Body": body,
	}}, "Metadata": map[string]any{}})
	var inv handlers.InvokeRequest
	if err := json.Unmarshal(payload, &inv); err != nil {
		t.Fatal(err)
	}
	res, err := handlers.HTTP("req", "res", h).Invoke(context.Background(), &inv)
	if err != nil {
		t.Fatalf("%s %s: invocation failed: %v", method, path, err)
	}
	out := res.Outputs["res"].(handlers.HTTPOutput)
	hdr := http.Header{}
	for k, v := range out.Headers {
		hdr.Set(k, v)
	}
	return response{Code: out.StatusCode, Header: hdr, Body: []byte(out.Body)}
}

func TestStatusFinishedAndList(t *testing.T) {
	srv, fb := statusFixture(t)
	m := fb.ms["m1"]
	m.Status = StatusCompletedWithErrors
	m.Updated = m.Created.Add(50 * time.Second)
	for i := range m.Batches {
		m.Batches[i].Status, m.Batches[i].Postponed = "succeeded", nil
	}
	resp := do(t, srv.Handler(), http.MethodGet, "/api/status/m1", nil)
	body := string(resp.Body)
	// 500 files, 500 MB in the 50 s from creation to the last update.
	for _, want := range []string{`id="files-done">500 / 500<`, `id="files-per-s">10.00<`, `id="mb-per-s">10.00<`, `id="eta">finished<`} {
		if !strings.Contains(body, want) {
			t.Errorf("finished page lacks %q", want)
		}
	}
	for _, bad := range []string{"http-equiv", `id="postponed"`} {
		if strings.Contains(body, bad) {
			t.Errorf("finished page has %q", bad)
		}
	}

	fb.ms["m2"] = &Migration{ID: "m2", Status: StatusRunning, Created: m.Created.Add(time.Minute)}
	resp = do(t, srv.Handler(), http.MethodGet, "/api/status", nil)
	checkStatusHeaders(t, resp)
	body = string(resp.Body)
	if !strings.Contains(body, `href="status/m1"`) || !strings.Contains(body, `href="status/m2"`) ||
		strings.Index(body, "status/m2") > strings.Index(body, "status/m1") {
		t.Errorf("list does not link both migrations, newest first:\n%s", body)
	}
	if !strings.Contains(body, "st-completedWithErrors") || !strings.Contains(body, `http-equiv="refresh"`) {
		t.Errorf("list lacks a status or the refresh while m2 runs")
	}
}

// TestStatusFailuresAreLimited: a migration with many failures lists the
// first ones and points to report.csv.
func TestStatusFailuresAreLimited(t *testing.T) {
	srv, fb := statusFixture(t)
	fb.items["m1"] = nil
	for i := range 3000 {
		fb.items["m1"] = append(fb.items["m1"], Item{SourcePath: fmt.Sprintf("f%05d.txt", i), Outcome: OutcomeFailed, Reason: "no"})
	}
	fb.ms["m1"].Counters.FilesFailed = 3000
	body := string(do(t, srv.Handler(), http.MethodGet, "/api/status/m1", nil).Body)
	if n := strings.Count(body, `<tr class="failure">`); n != statusFailures {
		t.Errorf("%d failures listed, want %d", n, statusFailures)
	}
	if !strings.Contains(body, "The first 50 of 3000 failed files.") || strings.Contains(body, "f00050.txt") {
		t.Errorf("failures note or limit wrong")
	}
}

func TestStatusErrors(t *testing.T) {
	srv, fb := statusFixture(t)
	h := srv.Handler()
	for path, code := range map[string]int{"/api/status/nope": 404, "/api/status/bad%20id": 404} {
		resp := do(t, h, http.MethodGet, path, nil)
		if resp.Code != code || !strings.Contains(string(resp.Body), "<h1>Not Found</h1>") {
			t.Errorf("GET %s: %d %s", path, resp.Code, resp.Body)
		}
		checkStatusHeaders(t, resp)
	}
	if resp := do(t, h, http.MethodPost, "/api/status/m1", nil); resp.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST status: %d", resp.Code)
	}
	// A storage error is a 503 page that does not echo the error.
	srv.Backend = brokenGet{fb, fmt.Errorf("storage down: sig=%s", secretSig)}
	resp := do(t, srv.Handler(), http.MethodGet, "/api/status/m1", nil)
	if resp.Code != http.StatusServiceUnavailable || strings.Contains(string(resp.Body), secretSig) || !strings.Contains(string(resp.Body), "retry later") {
		t.Errorf("storage error: %d %s", resp.Code, resp.Body)
	}
	checkStatusHeaders(t, resp)
}

type brokenGet struct {
	*fakeBackend
	err error
}

func (b brokenGet) Get(context.Context, string) (Migration, error) { return Migration{}, b.err }

// TestRatesETA: the ETA from the byte rate, bounded below by a postponed
// job's pickup and marked "≥" while the source is still being read.
func TestRatesETA(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	base := func() Migration {
		return Migration{Status: StatusRunning, Created: now.Add(-100 * time.Second),
			Counters: Counters{Items: 10, BytesPlanned: 1000, PlanDone: true},
			Batches: []Batch{
				{Status: "succeeded", Items: 4, Bytes: 400},
				{Status: "running", Items: 6, Bytes: 600, FilesProcessed: 1, BytesProcessed: 100},
			}}
	}
	for _, tt := range []struct {
		name   string
		change func(*Migration)
		want   string
	}{
		{"500 of 1000 bytes in 100 s", func(*Migration) {}, "1m40s"},
		{"source still being read", func(m *Migration) { m.Counters.PlanDone = false }, "≥ 1m40s"},
		{"postponed past the estimate", func(m *Migration) {
			m.Batches[1].Postponed = &Postponed{NextPickup: now.Add(3 * time.Minute)}
		}, "≥ 3m00s"},
		{"postponed before the estimate", func(m *Migration) {
			m.Batches[1].Postponed = &Postponed{NextPickup: now.Add(time.Minute)}
		}, "1m40s"},
		{"nothing done yet", func(m *Migration) { m.Batches = nil }, "unknown yet"},
		{"nothing done, postponed", func(m *Migration) {
			m.Batches = []Batch{{Status: "running", Items: 10, Bytes: 1000, Postponed: &Postponed{NextPickup: now.Add(time.Hour)}}}
		}, "≥ 1h00m"},
		{"all done, job finishing", func(m *Migration) { m.Batches[1].FilesProcessed, m.Batches[1].BytesProcessed = 6, 600 }, "finishing"},
		{"finished", func(m *Migration) { m.Status = StatusCompleted }, "finished"},
	} {
		m := base()
		tt.change(&m)
		if got := rates(m, now).ETA; got != tt.want {
			t.Errorf("%s: ETA %q, want %q", tt.name, got, tt.want)
		}
	}
}
