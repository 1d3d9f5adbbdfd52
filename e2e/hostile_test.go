package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/shared/request"
)

// A hostile caller of the running app (issue #12): sources on the host's
// own file system, around the allowed root, on loopback services and behind
// redirects, through HTTP and the provision queue; then a corpus of
// malformed HTTP input. Every one is a 4xx naming the field (or, from the
// queue, a recorded rejection), nothing reaches stage-batch, no response
// carries the SAS signature, and the handler process survives.
func TestHostileSourcesAreRefused(t *testing.T) {
	needApp(t)
	ctx := testContext(t, 2*time.Minute)
	sasURL, err := app.ContainerSASURL("e2e-hostile", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sasQuery := sasURL[strings.IndexByte(sasURL, '?'):]
	sig := sasQuery[strings.Index(sasQuery, "sig=")+4:]

	// Inside the allowed root: a link to /etc and a folder to climb out of.
	if err := os.MkdirAll(filepath.Join(localRoot, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(localRoot, "etc-link")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	// A real loopback server that redirects every request to Azurite (another
	// port): the source URL names it, the listing would come from elsewhere.
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.TrimSuffix(app.BlobEndpoint, "/"+"devstoreaccount1")+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()

	req := func(src map[string]any) map[string]any {
		return map[string]any{"v": 1, "source": src, "target": map[string]any{"containerId": target("http")}}
	}
	local := func(p string) map[string]any { return req(map[string]any{"kind": "localFolder", "path": p}) }
	blob := func(u string) map[string]any { return req(map[string]any{"kind": "azureBlob", "containerUrl": u}) }
	cases := []struct {
		name    string
		body    map[string]any
		field   string
		mention string
	}{
		{"local folder /etc", local("/etc"), "source.path", "outside the folders"},
		{"local folder / ", local("/"), "source.path", "outside the folders"},
		{"local folder climbing out with ../", local(localRoot + "/data/../../../etc"), "source.path", "'..'"},
		{"local folder through a link to /etc", local(localRoot + "/etc-link"), "source.path", "symbolic links"},
		{"local prefix climbing out", req(map[string]any{"kind": "localFolder", "path": localRoot + "/data", "prefix": "../../etc"}), "source.prefix", "'..'"},
		{"blob on another host", blob("https://evil:9000/docs" + sasQuery), "source.containerUrl", `host "evil:9000" is not an Azure Blob endpoint`},
		{"blob on the Service Bus admin port", blob(app.ServiceBusAdminURL + "/devstoreaccount1/docs" + sasQuery), "source.containerUrl", "SPEMIGRATE_ALLOWED_BLOB_HOSTS"},
		{"blob behind a redirecting server", blob(redirector.URL + "/devstoreaccount1/e2e-hostile" + sasQuery), "source.containerUrl", "not an Azure Blob endpoint"},
		{"blob on the metadata address", blob("https://169.254.169.254/acct/docs" + sasQuery), "source.containerUrl", "not an Azure Blob endpoint"},
		{"blob with user information", blob(strings.Replace(sasURL, "http://", "http://admin:pw@", 1)), "source.containerUrl", "user information"},
	}

	pid := handlerPID(t)
	stats0 := sbStats(t, ctx)
	listed0 := allMigrationIDs(t, ctx)
	for _, c := range cases {
		t.Run("http/"+c.name, func(t *testing.T) {
			st, body := call(t, ctx, http.MethodPost, "/api/migrations", mustJSON(t, c.body), nil)
			e := errorBody(t, st, body)
			if st != http.StatusBadRequest || len(e.Errors) == 0 || e.Errors[0].Field != c.field || !strings.Contains(e.Errors[0].Message, c.mention) {
				t.Fatalf("%d %s, want 400 naming %s and %q", st, body, c.field, c.mention)
			}
			if strings.Contains(string(body), sig) {
				t.Errorf("response quotes the SAS signature: %s", body)
			}
			t.Logf("%d %s", st, e.Error)
		})
	}
	if n := len(allMigrationIDs(t, ctx)) - len(listed0); n != 0 {
		t.Errorf("%d migrations appeared after the refused HTTP requests", n)
	}

	// The same requests (plus garbage and a 256 KiB body) from the queue:
	// each is recorded as a failed migration with the reason, not retried.
	sb, err := azservicebus.NewClientFromConnectionString(app.ServiceBusConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(ctx)
	sender, err := sb.NewSender("provision", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close(ctx)
	type queued struct {
		name, msgID string
		body        []byte
		says        string
	}
	var sent []queued
	run := fmt.Sprint(time.Now().UnixNano())
	for i, c := range cases {
		sent = append(sent, queued{"queue/" + c.name, fmt.Sprintf("hostile-%s-%d", run, i), mustJSON(t, c.body), c.field})
	}
	sent = append(sent,
		queued{"queue/raw garbage", "hostile-" + run + "-garbage", []byte("\x00\xff<not json>\x1b[31m"), "UTF-8"},
		queued{"queue/256 KiB body", "hostile-" + run + "-big", append([]byte(`{"v":1,"colour":"`), bytes.Repeat([]byte("x"), 250<<10)...), "larger than"},
		queued{"queue/JSON array", "hostile-" + run + "-array", []byte(`[{"v":1},{"v":1}]`), "object"},
		queued{"queue/id with a bidi override", "hostile-" + run + "-bidi", mustJSON(t, map[string]any{"v": 1, "id": "run\u202e1", "source": local("/etc")["source"], "target": map[string]any{"containerId": target("http")}}), "letters, digits"},
	)
	ct := "application/json"
	for _, q := range sent {
		msgID := q.msgID
		if err := sender.SendMessage(ctx, &azservicebus.Message{Body: q.body, MessageID: &msgID, ContentType: &ct}, nil); err != nil {
			t.Fatalf("%s: send: %v", q.name, err)
		}
	}
	for _, q := range sent {
		t.Run(q.name, func(t *testing.T) {
			id := request.IDForMessage(q.msgID)
			var m api.Migration
			waitFor(t, ctx, "rejection of "+q.name, 200*time.Millisecond, func() bool {
				st, body := call(t, ctx, http.MethodGet, "/api/migrations/"+id, nil, nil)
				if st != http.StatusOK {
					return false
				}
				return json.Unmarshal(body, &m) == nil && m.Status == api.StatusFailed
			})
			if !strings.Contains(m.Reason, "rejected") || !strings.Contains(m.Reason, q.says) {
				t.Errorf("reason %q does not say it was rejected for %s", m.Reason, q.says)
			}
			if strings.Contains(m.Reason, sig) {
				t.Errorf("reason quotes the SAS signature: %s", m.Reason)
			}
			t.Logf("%s: %s", id, m.Reason)
		})
	}

	// Nothing moved past intake: no stage-batch message, no plan message
	// (the provision queue saw exactly what was sent), nothing dead-lettered.
	stats := sbStats(t, ctx)
	for _, c := range []struct {
		queue, counter string
		want           int
	}{
		{"provision", "sent", len(sent)},
		{"stage-batch", "sent", 0},
		{"submit", "sent", 0},
		{"provision", "deadLettered", 0},
	} {
		if got := queueCount(stats, c.queue, c.counter) - queueCount(stats0, c.queue, c.counter); got != c.want {
			t.Errorf("%s %s: %d during the hostile requests, want %d", c.queue, c.counter, got, c.want)
		}
	}
	if n := len(allMigrationIDs(t, ctx)) - len(listed0); n != len(sent) {
		t.Errorf("%d migrations appeared, want %d rejections", n, len(sent))
	}
	if got := handlerPID(t); got != pid {
		t.Errorf("the handler restarted (pid %d, then %d)", pid, got)
	}
}

// Malformed HTTP input through the real front door, beyond the request
// format (TestMalformedRequestsAreRefused covers that): duplicate keys,
// encodings, invisible characters, numbers, media types, streamed and
// oversized bodies, hostile headers and paths, hostile cron.
func TestHostileHTTPInput(t *testing.T) {
	needApp(t)
	ctx := testContext(t, 2*time.Minute)
	sasURL, err := app.ContainerSASURL("e2e-hostile", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Written out (not marshalled from a map) so that "v" comes first and
	// the edits below find what they replace.
	tgt := `"target":{"containerId":"` + target("http") + `"`
	good := `{"v":1,"source":{"kind":"azureBlob","containerUrl":"` + sasURL + `"},` + tgt + `}}`
	if !json.Valid([]byte(good)) {
		t.Fatalf("the template request is not JSON: %s", good)
	}
	folder := func(f string) []byte { return []byte(strings.Replace(good, tgt, tgt+`,"folder":"`+f+`"`, 1)) }
	cases := []struct {
		name, method, path string
		body               []byte
		header             http.Header
		chunked            bool
		host               bool // answered by the Functions host, not the app: any body
		status             int
		mention            string
	}{
		{name: "duplicate key", method: "POST", path: "/api/migrations", body: []byte(strings.Replace(good, `{"v":1,`, `{"v":1,"v":1,`, 1)), status: 400, mention: "more than once"},
		{name: "duplicate target smuggling another container", method: "POST", path: "/api/migrations", body: []byte(strings.TrimSuffix(good, "}") + `,"target":{"containerId":"` + target("queue") + `"}}`), status: 400, mention: "more than once"},
		{name: "invalid UTF-8", method: "POST", path: "/api/migrations", body: folder("a\xffb"), status: 400, mention: "UTF-8"},
		{name: "RLO in folder", method: "POST", path: "/api/migrations", body: folder(`x\u202efdp.exe`), status: 400, mention: "target.folder"},
		{name: "NUL in folder", method: "POST", path: "/api/migrations", body: folder(`a\u0000b`), status: 400, mention: "target.folder"},
		{name: "newline in id", method: "POST", path: "/api/migrations", body: []byte(strings.Replace(good, `{"v":1,`, `{"v":1,"id":"a\nlevel=ERROR",`, 1)), status: 400, mention: "id"},
		{name: "version 1e400", method: "POST", path: "/api/migrations", body: []byte(strings.Replace(good, `"v":1`, `"v":1e400`, 1)), status: 400, mention: "v"},
		{name: "maxItems past int64", method: "POST", path: "/api/migrations", body: []byte(strings.TrimSuffix(good, "}") + `,"options":{"batch":{"maxItems":99999999999999999999}}}`), status: 400, mention: "options.batch.maxItems"},
		{name: "text/plain", method: "POST", path: "/api/migrations", body: []byte(good), header: http.Header{"Content-Type": {"text/plain"}}, status: 415, mention: "Content-Type"},
		{name: "form-encoded", method: "POST", path: "/api/migrations", body: []byte("v=1"), header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, status: 415, mention: "Content-Type"},
		{name: "chunked 256 KiB", method: "POST", path: "/api/migrations", body: append([]byte(`{"v":1,"colour":"`), bytes.Repeat([]byte("y"), 256<<10)...), chunked: true, status: 413, mention: "larger"},
		{name: "chunked garbage", method: "POST", path: "/api/migrations", body: []byte("\x00\x01\x02garbage"), chunked: true, status: 400, mention: "JSON"},
		{name: "Idempotency-Key of 10 KB", method: "POST", path: "/api/migrations", body: []byte(good), header: http.Header{"Idempotency-Key": {strings.Repeat("k", 10000)}}, status: 400, mention: "Idempotency-Key"},
		{name: "id with path traversal", method: "GET", path: "/api/migrations/..%2f..%2fetc", host: true, status: 404},
		{name: "id with unicode", method: "GET", path: "/api/migrations/%E2%80%AEabc", status: 404, mention: "migration"},
		{name: "limit -1", method: "GET", path: "/api/migrations?limit=-1", status: 400, mention: "limit"},
		{name: "limit 1e9", method: "GET", path: "/api/migrations?limit=1000000000", status: 400, mention: "limit"},
		{name: "items limit of letters", method: "GET", path: "/api/migrations/nope/items?limit=abc", status: 400, mention: "limit"},
		{name: "cancel an unknown migration", method: "DELETE", path: "/api/migrations/no-such-migration", status: 404, mention: "not found"},
		{name: "PUT on migrations (no route in the host)", method: "PUT", path: "/api/migrations", body: []byte(good), host: true, status: 404},
		{name: "hostile cron: 8 fields", method: "POST", path: "/api/schedules", body: []byte(`{"cron":"* * * * * * * *","request":` + good + `}`), status: 400, mention: "cron"},
		{name: "hostile cron: step 0", method: "POST", path: "/api/schedules", body: []byte(`{"cron":"*/0 * * * * *","request":` + good + `}`), status: 400, mention: "cron"},
		{name: "hostile cron: 10 KB list", method: "POST", path: "/api/schedules", body: []byte(`{"cron":"` + strings.Repeat("1,", 5000) + `1 * * * * *","request":` + good + `}`), status: 400, mention: "cron"},
		{name: "hostile cron: never (31 February)", method: "POST", path: "/api/schedules", body: []byte(`{"cron":"0 0 2 31 2 *","request":` + good + `}`), status: 400, mention: "cron"},
		{name: "schedule template on /etc", method: "POST", path: "/api/schedules", body: []byte(`{"cron":"0 0 2 * * *","request":{"v":1,"source":{"kind":"localFolder","path":"/etc"},` + tgt + `}}}`), status: 400, mention: "request.source.path"},
	}
	stats0 := sbStats(t, ctx)
	listed0 := allMigrationIDs(t, ctx)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rd io.Reader
			if c.body != nil {
				rd = bytes.NewReader(c.body)
				if c.chunked {
					rd = struct{ io.Reader }{rd} // no length known: sent chunked
				}
			}
			req, err := http.NewRequestWithContext(ctx, c.method, app.APIURL+c.path, rd)
			if err != nil {
				t.Fatal(err)
			}
			if c.body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			for k, v := range c.header {
				req.Header[k] = v
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", c.method, c.path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if c.host {
				if resp.StatusCode != c.status {
					t.Fatalf("%d %.200s, want %d", resp.StatusCode, body, c.status)
				}
				return
			}
			e := errorBody(t, resp.StatusCode, body)
			text := e.Error
			for _, f := range e.Errors {
				text += " | " + f.Field + ": " + f.Message
			}
			if resp.StatusCode != c.status || !strings.Contains(text, c.mention) {
				t.Fatalf("%d %s, want %d mentioning %q", resp.StatusCode, body, c.status, c.mention)
			}
			if strings.Contains(string(body), "sig=") && !strings.Contains(string(body), "sig=REDACTED") {
				t.Errorf("response quotes a SAS signature: %s", body)
			}
			t.Logf("%d %s", resp.StatusCode, text)
		})
	}
	stats := sbStats(t, ctx)
	if got := queueCount(stats, "provision", "sent") - queueCount(stats0, "provision", "sent"); got != 0 {
		t.Errorf("the provision queue received %d messages", got)
	}
	if n := len(allMigrationIDs(t, ctx)) - len(listed0); n != 0 {
		t.Errorf("%d migrations appeared", n)
	}
	st, body := call(t, ctx, http.MethodGet, "/api/schedules", nil, nil)
	if st != http.StatusOK || bytes.Contains(body, []byte(`"/etc"`)) {
		t.Errorf("schedules after the hostile input: %d %s", st, body)
	}
}

func errorBody(t *testing.T, status int, body []byte) api.ErrorBody {
	t.Helper()
	var e api.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("%d: body is not an error message: %.300s", status, body)
	}
	return e
}

// allMigrationIDs pages through every migration.
func allMigrationIDs(t *testing.T, ctx context.Context) []string {
	t.Helper()
	var ids []string
	token := ""
	for {
		st, body := call(t, ctx, http.MethodGet, "/api/migrations?limit=200&pageToken="+url.QueryEscape(token), nil, nil)
		if st != http.StatusOK {
			t.Fatalf("list migrations: %d %s", st, body)
		}
		var page struct {
			Migrations    []api.Migration `json:"migrations"`
			NextPageToken string          `json:"nextPageToken"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Migrations {
			ids = append(ids, m.ID)
		}
		if page.NextPageToken == "" || page.NextPageToken == token {
			return ids
		}
		token = page.NextPageToken
	}
}

// A permitted local folder holding a symbolic link to a file outside it
// (the host's /etc/passwd): the migration runs, the file in the tree is
// imported, the link is reported failed with the reason, and its target's
// bytes are never read.
func TestLocalLinkOutOfTheFolderIsRefused(t *testing.T) {
	needApp(t)
	ctx := testContext(t, 2*time.Minute)
	dir := filepath.Join(localRoot, "links")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inside.txt"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	m := startHTTP(t, ctx, map[string]any{
		"v": 1, "id": fmt.Sprintf("e2e-links-%d", time.Now().UnixNano()),
		"source": map[string]any{"kind": "localFolder", "path": dir},
		"target": map[string]any{"containerId": target("http"), "folder": "e2e/hostile-links"},
	})
	m = waitMigration(t, ctx, m.ID)
	st, body := call(t, ctx, http.MethodGet, "/api/migrations/"+m.ID+"/items?limit=100", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("items: %d %s", st, body)
	}
	var page struct {
		Items []api.Item `json:"items"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	got := map[string]api.Item{}
	for _, it := range page.Items {
		got[it.SourcePath] = it
		t.Logf("%s: %s %s", it.SourcePath, it.Outcome, it.Reason)
	}
	if it := got["inside.txt"]; it.Outcome != "imported" {
		t.Errorf("inside.txt: %s %s, want imported", it.Outcome, it.Reason)
	}
	if it := got["passwd"]; it.Outcome != "failed" || !strings.Contains(it.Reason, "symbolic link leads outside the source folder") {
		t.Errorf("passwd (a link to /etc/passwd): %s %q, want failed with the reason", it.Outcome, it.Reason)
	}
	if m.Status != api.StatusCompletedWithErrors {
		t.Errorf("migration %s, want completedWithErrors", m.Status)
	}
	if m.Counters.BytesMigrated > int64(len("inside")) {
		t.Errorf("%d bytes migrated, more than the one file inside the folder", m.Counters.BytesMigrated)
	}
}
