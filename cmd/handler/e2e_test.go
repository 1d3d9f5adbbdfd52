package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/shared/request"
)

// The end-to-end tests run the real handler binary under the Functions dev
// host, with Azurite, the Service Bus emulator and the Graph emulator: the
// same processes and protocols as a deployment, on loopback.
var e2e *stack.Stack

const stateKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if testing.Short() {
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "spemigrate-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "handler")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build handler:", err)
			return 1
		}
		var out io.Writer = io.Discard
		if os.Getenv("SPEMIGRATE_E2E_VERBOSE") != "" {
			out = os.Stderr
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		stackDir := filepath.Join(dir, "stack")
		s, err := stack.Start(ctx, stack.Options{
			Dir: stackDir, Azurite: true, Graph: true, ServiceBus: true, Output: out,
			GraphOptions: stack.GraphOptions{Containers: extraContainers},
			Functions: &stack.FunctionsOptions{
				HandlerPath: bin,
				Settings: map[string]string{
					"SPEMIGRATE_STATE_KEY":      stateKey,
					"SPEMIGRATE_DRAIN_SCHEDULE": "*/5 * * * * *",
					"SPEMIGRATE_POLL_INTERVAL":  "1s",
					// NO_SUCH_SETTING may be named but is not set: the
					// poison-message test's source.
					"SPEMIGRATE_ALLOWED_CONNECTION_SETTINGS": "SOURCE_STORAGE,NO_SUCH_SETTING",
				},
			},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "start the local stack:", err)
			return 1
		}
		defer s.Close()
		e2e = s
		return m.Run()
	}()
	os.Exit(code)
}

// extraContainers give each end-to-end test its own SPE container, so the
// tests do not depend on each other's content.
var extraContainers = []graphemu.Container{container("queue", 1), container("sched", 2), container("cancel", 3), container("poison", 4)}

func container(name string, n int) graphemu.Container {
	return graphemu.Container{
		ID:            "b!e2e-" + name + "-container-000000000000000000000000",
		WebID:         fmt.Sprintf("b7e1c3d5-9f2a-4c6e-8b0d-%012d", n),
		ListID:        fmt.Sprintf("5c3a9f1e-2b7d-4e6a-8f01-%012d", n),
		RootFolderID:  fmt.Sprintf("0e9d8c7b-6a5f-4e3d-2c1b-%012d", n),
		SiteURL:       fmt.Sprintf("https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-%012d", n),
		LibraryFolder: "Document Library",
	}
}

func needStack(t *testing.T) *stack.Stack {
	t.Helper()
	if e2e == nil {
		t.Skip("end-to-end: needs the local stack (not started with -short)")
	}
	return e2e
}

// seeded is a source container's files: content and last-modified time.
type seeded map[string]seededFile

type seededFile struct {
	body     []byte
	modified time.Time
}

// seed uploads files to a new source container.
func seed(t *testing.T, s *stack.Stack, container string, n int) seeded {
	t.Helper()
	ctx := context.Background()
	c, err := azblob.NewClientFromConnectionString(s.StorageConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateContainer(ctx, container, nil); err != nil {
		t.Fatal(err)
	}
	files := seeded{}
	for i := range n {
		name := fmt.Sprintf("dir%d/sub/file-%03d.txt", i%3, i)
		switch i {
		case 0:
			name = "Überblick/naïve café.txt"
		case 1:
			name = "reports/Q1:Q2 summary.txt" // ':' needs the naming policy
		case 2:
			name = "empty.txt"
		}
		body := bytes.Repeat([]byte(fmt.Sprintf("file %d of %s\n", i, container)), i*37%200)
		resp, err := c.UploadBuffer(ctx, container, name, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = seededFile{body: body, modified: resp.LastModified.UTC()}
	}
	return files
}

func requestFor(s *stack.Stack, container, id string) []byte {
	return requestInto(s.SPEContainerID, s, container, id)
}

func requestInto(containerID string, s *stack.Stack, container, id string) []byte {
	r := map[string]any{
		"v": 1,
		"source": map[string]any{
			"kind": "azureBlob", "containerUrl": s.BlobEndpoint + "/" + container,
			"credential": "connectionString", "connectionSetting": "SOURCE_STORAGE",
		},
		// Each migration gets its own top-level folder: see the report on
		// parent folders shared between migrations.
		"target": map[string]any{"containerId": containerID, "folder": "e2e-" + container},
	}
	if id != "" {
		r["id"] = id
	}
	b, _ := json.Marshal(r)
	return b
}

func call(t *testing.T, method, url string, body []byte, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}

// waitDone polls the API until the migration ends or the deadline passes.
func waitDone(t *testing.T, s *stack.Stack, id string, within time.Duration) api.Migration {
	t.Helper()
	deadline := time.Now().Add(within)
	var m api.Migration
	for {
		code, _, body := call(t, "GET", s.FunctionsURL+"/api/migrations/"+id, nil)
		if code == http.StatusOK {
			m = api.Migration{}
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("GET migration: %v: %s", err, body)
			}
			if m.Terminal() {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("migration %s not done within %v: last %d %+v", id, within, code, m)
		}
		time.Sleep(250 * time.Millisecond) // polling interval, not synchronisation: the loop checks the state
	}
}

// verify checks every file is in the target, byte-identical, with the
// source's modification time; names that needed the naming policy are
// checked through the report.
func verify(t *testing.T, s *stack.Stack, containerID, folder string, files seeded, items []api.Item) {
	t.Helper()
	client := s.Graph.HTTPClient()
	targetOf := map[string]string{}
	for _, it := range items {
		targetOf[it.SourcePath] = it.TargetPath
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		tp := targetOf[name]
		if tp == "" {
			t.Errorf("%s: no target path in the report", name)
			continue
		}
		if !strings.HasPrefix(tp, folder+"/") {
			tp = folder + "/" + tp
		}
		item := s.GraphURL + "/v1.0/drives/" + containerID + "/root:/" + pathEscape(tp)
		code, got := graphGet(t, client, item+":/content")
		if code != http.StatusOK {
			t.Errorf("%s → %s: HTTP %d %s", name, tp, code, got)
			continue
		}
		if sha256.Sum256(got) != sha256.Sum256(files[name].body) {
			t.Errorf("%s → %s: content differs (%d bytes, want %d)", name, tp, len(got), len(files[name].body))
		}
		_, meta := graphGet(t, client, item)
		var di struct {
			Modified time.Time `json:"lastModifiedDateTime"`
		}
		if err := json.Unmarshal(meta, &di); err != nil || !di.Modified.Equal(files[name].modified.Truncate(time.Second)) {
			t.Errorf("%s: target modified %v, source %v (%v)", name, di.Modified, files[name].modified, err)
		}
	}
}

func graphGet(t *testing.T, client *http.Client, url string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+stack.GraphToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// graphEvents reads every progress event page, following @odata.nextLink
// until a page with no events links to itself (the stream is exhausted),
// and returns the pages' bodies joined.
func graphEvents(t *testing.T, client *http.Client, link string) (int, []byte) {
	t.Helper()
	var all []byte
	for range 1000 {
		code, b := graphGet(t, client, link)
		if code != http.StatusOK {
			return code, b
		}
		all = append(all, b...)
		var page struct {
			Value []json.RawMessage `json:"value"`
			Next  string            `json:"@odata.nextLink"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatalf("events page: %v", err)
		}
		if page.Next == "" || (len(page.Value) == 0 && page.Next == link) {
			return http.StatusOK, all
		}
		link = page.Next
	}
	t.Fatalf("events of %s: no end after 1000 pages", link)
	return 0, nil
}

// pathEscape escapes every byte outside the unreserved set, ':' included
// (the drive path syntax root:/path: uses it as a delimiter).
func pathEscape(p string) string {
	var b strings.Builder
	for _, c := range []byte(p) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func itemsOf(t *testing.T, s *stack.Stack, id string) []api.Item {
	t.Helper()
	var all []api.Item
	token := ""
	for {
		code, _, body := call(t, "GET", s.FunctionsURL+"/api/migrations/"+id+"/items?limit=200&pageToken="+token, nil)
		if code != http.StatusOK {
			t.Fatalf("items: %d %s", code, body)
		}
		var page struct {
			Items []api.Item `json:"items"`
			Next  string     `json:"nextPageToken"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all
		}
		token = page.Next
	}
}

func TestE2EMigrationOverHTTP(t *testing.T) {
	s := needStack(t)
	files := seed(t, s, "http-src", 30)
	code, h, body := call(t, "POST", s.FunctionsURL+"/api/migrations", requestFor(s, "http-src", "e2e-http"))
	if code != http.StatusAccepted || h.Get("Location") != "/api/migrations/e2e-http" {
		t.Fatalf("POST: %d %v %s", code, h, body)
	}
	// Idempotent: the same request again starts nothing new.
	if code, _, body := call(t, "POST", s.FunctionsURL+"/api/migrations", requestFor(s, "http-src", "e2e-http")); code != http.StatusOK {
		t.Errorf("second POST: %d %s", code, body)
	}
	// The same id with a different request is a conflict naming the id.
	other := bytes.Replace(requestFor(s, "http-src", "e2e-http"), []byte(`"e2e-http-src"`), []byte(`"elsewhere"`), 1)
	if code, _, body := call(t, "POST", s.FunctionsURL+"/api/migrations", other); code != http.StatusConflict || !bytes.Contains(body, []byte(`"field": "id"`)) {
		t.Errorf("conflicting POST: %d %s", code, body)
	}
	m := waitDone(t, s, "e2e-http", 3*time.Minute)
	if m.Status != api.StatusCompleted {
		t.Fatalf("migration ended %s: %s %+v", m.Status, m.Reason, m.Batches)
	}
	items := itemsOf(t, s, "e2e-http")
	if len(items) != len(files) {
		t.Errorf("report has %d items, want %d", len(items), len(files))
	}
	verify(t, s, s.SPEContainerID, "e2e-http-src", files, items)
	code, _, csv := call(t, "GET", s.FunctionsURL+"/api/migrations/e2e-http/report.csv", nil)
	if code != 200 || !bytes.Contains(csv, []byte("Q1:Q2 summary.txt")) {
		t.Errorf("report.csv: %d %s", code, csv)
	}
}

func TestE2EMigrationFromQueue(t *testing.T) {
	s := needStack(t)
	files := seed(t, s, "queue-src", 12)
	ctx := context.Background()
	c, err := azservicebus.NewClientFromConnectionString(s.ServiceBusConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	snd, err := c.NewSender("provision", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close(ctx)
	if err := snd.SendMessage(ctx, &azservicebus.Message{Body: requestInto(extraContainers[0].ID, s, "queue-src", ""), MessageID: to.Ptr("e2e-queue-msg-1")}, nil); err != nil {
		t.Fatal(err)
	}
	// A malformed request on the queue starts nothing, and the API says why
	// under the id derived from its MessageId.
	if err := snd.SendMessage(ctx, &azservicebus.Message{Body: []byte(`{"v":1,"source":{"kind":"azureBlob"},"target":{}}`), MessageID: to.Ptr("e2e-queue-bad-1")}, nil); err != nil {
		t.Fatal(err)
	}
	bad := waitDone(t, s, request.IDForMessage("e2e-queue-bad-1"), time.Minute)
	if bad.Status != api.StatusFailed || !strings.Contains(bad.Reason, "source.containerUrl") || !strings.Contains(bad.Reason, "target.containerId") {
		t.Errorf("rejected queue request: %s %q", bad.Status, bad.Reason)
	}
	if len(bad.Batches) != 0 {
		t.Errorf("a rejected request has batches: %+v", bad.Batches)
	}

	id := request.IDForMessage("e2e-queue-msg-1")
	m := waitDone(t, s, id, 3*time.Minute)
	if m.Status != api.StatusCompleted {
		t.Fatalf("migration ended %s: %s %+v\nitems: %+v", m.Status, m.Reason, m.Batches, itemsOf(t, s, id))
	}
	verify(t, s, extraContainers[0].ID, "e2e-queue-src", files, itemsOf(t, s, id))
}

func TestE2EMalformedRequestsEnqueueNothing(t *testing.T) {
	s := needStack(t)
	list := func() int {
		_, _, body := call(t, "GET", s.FunctionsURL+"/api/migrations?limit=200", nil)
		var page struct {
			Migrations []api.Migration `json:"migrations"`
		}
		_ = json.Unmarshal(body, &page)
		return len(page.Migrations)
	}
	before := list()
	good := string(requestFor(s, "nothing", ""))
	for _, bad := range []string{
		`{"v":1`,
		`{"v":2}`,
		strings.Replace(good, `"azureBlob"`, `"s3"`, 1),
		strings.Replace(good, s.SPEContainerID, "not-an-id", 1),
		strings.Replace(good, `"target":{`, `"target":{"colour":"blue",`, 1),
		strings.Replace(good, `"v":1`, `"v":1,"options":{"batch":{"maxItems":-3}}`, 1),
	} {
		code, h, body := call(t, "POST", s.FunctionsURL+"/api/migrations", []byte(bad))
		if code != http.StatusBadRequest || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("%s → %d %s", bad, code, body)
		}
	}
	if after := list(); after != before {
		t.Errorf("malformed requests created migrations: %d → %d", before, after)
	}
}

func TestE2EMigrationFromSchedule(t *testing.T) {
	s := needStack(t)
	files := seed(t, s, "sched-src", 8)
	body := fmt.Sprintf(`{"id":"e2e-nightly","cron":"0 * * * * *","request":%s}`, requestInto(extraContainers[1].ID, s, "sched-src", ""))
	code, h, resp := call(t, "POST", s.FunctionsURL+"/api/schedules", []byte(body))
	if code != http.StatusCreated || h.Get("Location") != "/api/schedules/e2e-nightly" {
		t.Fatalf("POST schedule: %d %s", code, resp)
	}
	var sc api.Schedule
	if err := json.Unmarshal(resp, &sc); err != nil {
		t.Fatal(err)
	}
	// The schedules timer fires every minute; the first slot after the
	// schedule's creation starts one migration with a deterministic id.
	id := request.IDForSchedule("e2e-nightly", sc.NextRun)
	deadline := time.Now().Add(sc.NextRun.Sub(time.Now()) + 90*time.Second)
	for {
		code, _, _ := call(t, "GET", s.FunctionsURL+"/api/migrations/"+id, nil)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no migration %s by %v", id, deadline)
		}
		time.Sleep(500 * time.Millisecond) // polling interval; the loop checks the API
	}
	// Two more timer runs for the same slot start nothing.
	for range 2 {
		code, _, body := call(t, "POST", s.FunctionsURL+"/admin/functions/schedules", []byte(`{"input":""}`))
		if code != http.StatusAccepted {
			t.Fatalf("admin invoke: %d %s", code, body)
		}
	}
	m := waitDone(t, s, id, 2*time.Minute)
	if m.Status != api.StatusCompleted {
		t.Fatalf("scheduled migration ended %s: %s", m.Status, m.Reason)
	}
	verify(t, s, extraContainers[1].ID, "e2e-sched-src", files, itemsOf(t, s, id))
	_, _, list := call(t, "GET", s.FunctionsURL+"/api/migrations?limit=200", nil)
	var page struct {
		Migrations []api.Migration `json:"migrations"`
	}
	if err := json.Unmarshal(list, &page); err != nil {
		t.Fatal(err)
	}
	var started []string
	for _, m := range page.Migrations {
		if strings.HasPrefix(m.ID, "s-e2e-nightly-") {
			started = append(started, m.ID)
		}
	}
	if len(started) != 1 {
		t.Errorf("scheduled migrations %v, want exactly %s", started, id)
	}
	if code, _, _ := call(t, "DELETE", s.FunctionsURL+"/api/schedules/e2e-nightly", nil); code != http.StatusNoContent {
		t.Errorf("DELETE schedule: %d", code)
	}
}

func TestE2ECancelQueuedJob(t *testing.T) {
	s := needStack(t)
	seed(t, s, "cancel-src", 5)
	// The next job waits in the queue long enough to be cancelled there.
	s.Graph.AddJobFaults(graphemu.JobFaults{QueueDelay: time.Minute})
	defer s.Graph.ClearFaults()
	code, _, body := call(t, "POST", s.FunctionsURL+"/api/migrations", requestInto(extraContainers[2].ID, s, "cancel-src", "e2e-cancel"))
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	// Wait until the batch's job exists (queued), then cancel.
	deadline := time.Now().Add(time.Minute)
	var jobID string
	for jobID == "" {
		_, _, body := call(t, "GET", s.FunctionsURL+"/api/migrations/e2e-cancel", nil)
		var m api.Migration
		_ = json.Unmarshal(body, &m)
		for _, b := range m.Batches {
			if b.JobID != "" {
				jobID = b.JobID
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no job submitted: %s", body)
		}
		time.Sleep(200 * time.Millisecond) // polling interval; the loop checks the API
	}
	code, _, body = call(t, "DELETE", s.FunctionsURL+"/api/migrations/e2e-cancel", nil)
	if code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	m := waitDone(t, s, "e2e-cancel", time.Minute)
	if m.Status != api.StatusCancelled {
		t.Fatalf("cancelled migration ended %s: %+v", m.Status, m.Batches)
	}
	for _, b := range m.Batches {
		if b.Status != "cancelled" {
			t.Errorf("batch %s is %s after cancel", b.ID, b.Status)
		}
	}
	// The queued job was deleted in Graph, before it started: no job is
	// left running.
	code, body = graphEvents(t, s.Graph.HTTPClient(), s.GraphURL+"/v1.0/storage/fileStorage/containers/"+extraContainers[2].ID+"/migrationJobs/"+jobID+"/progressEvents")
	if code != http.StatusOK || !strings.Contains(string(body), "sharePointMigrationJobDeletedEvent") || strings.Contains(string(body), "JobStartEvent") {
		t.Errorf("job %s events after cancel: HTTP %d %s", jobID, code, body)
	}
}

func TestE2EPoisonMessageEndsFailedWithReason(t *testing.T) {
	s := needStack(t)
	// A source whose connection setting does not exist: the request is
	// well-formed, but every attempt to plan it fails. Service Bus gives up
	// after the queue's MaxDeliveryCount and dead-letters the message; the
	// drain timer records the failure on the migration.
	req := map[string]any{
		"v": 1, "id": "e2e-poison",
		"source": map[string]any{"kind": "azureBlob", "containerUrl": s.BlobEndpoint + "/nowhere",
			"credential": "connectionString", "connectionSetting": "NO_SUCH_SETTING"},
		"target": map[string]any{"containerId": extraContainers[3].ID},
	}
	b, _ := json.Marshal(req)
	if code, _, body := call(t, "POST", s.FunctionsURL+"/api/migrations", b); code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	m := waitDone(t, s, "e2e-poison", 2*time.Minute)
	if m.Status != api.StatusFailed || !strings.Contains(m.Reason, "dead-lettered") {
		t.Fatalf("poisoned migration: status %s, reason %q", m.Status, m.Reason)
	}
	t.Logf("reason shown by the API: %s", m.Reason)
}
