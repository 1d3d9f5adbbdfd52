package graphemu_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
)

func (e *emu) eventsPage(path string) (vals []map[string]any, next string) {
	e.t.Helper()
	r := e.do("GET", path, nil)
	if r.status != 200 {
		e.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	m := r.json(e.t)
	for _, v := range m["value"].([]any) {
		vals = append(vals, v.(map[string]any))
	}
	next, _ = m["@odata.nextLink"].(string)
	return vals, next
}

// waitEvent polls until an event of the given type appears.
func (e *emu) waitEvent(jobID, suffix string) []map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var all []map[string]any
		next := e.containerPath(e.cid) + "/migrationJobs/" + jobID + "/progressEvents"
		for {
			vals, n := e.eventsPage(next)
			all = append(all, vals...)
			if len(vals) == 0 || n == "" {
				break
			}
			next = n
		}
		if len(ofType(all, suffix)) > 0 {
			return all
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no %s event: %v", suffix, all)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

func TestProgressEventsPaging(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) { c.Knobs.PageSize = 2; c.Knobs.ProgressEvery = 1 })
	ci := e.provision()
	examplePkg().upload(t, ci)
	jobID := e.mustCreateJob(ci)
	e.waitDone(jobID) // let it finish, then drain from the start page by page

	seen := map[string]bool{}
	var all []map[string]any
	next := e.containerPath(e.cid) + "/migrationJobs/" + jobID + "/progressEvents"
	pages := 0
	for {
		vals, n := e.eventsPage(next)
		if n == "" {
			t.Fatalf("page %d has no @odata.nextLink; the default always includes one", pages)
		}
		if !strings.Contains(n, "$skiptoken=") {
			t.Errorf("nextLink %s lacks $skiptoken", n)
		}
		if len(vals) == 0 {
			if n != next {
				t.Errorf("nothing new: nextLink %s, want the same link %s", n, next)
			}
			break
		}
		if len(vals) > 2 {
			t.Errorf("page of %d events, page size is 2", len(vals))
		}
		pages++
		for _, v := range vals {
			id := v["id"].(string)
			if seen[id] {
				t.Errorf("event %s seen twice", id)
			}
			seen[id] = true
		}
		all = append(all, vals...)
		next = n
	}
	if pages < 3 {
		t.Errorf("only %d pages; the test wants several", pages)
	}
	if !isFinal(all[len(all)-1]) {
		t.Errorf("last event is not the completion event: %v", all[len(all)-1])
	}
	for _, ev := range all[:len(all)-1] {
		if isFinal(ev) {
			t.Errorf("completion event before the end")
		}
	}
	// The same link again: still nothing, still the same link (idempotent).
	if vals, n := e.eventsPage(next); len(vals) != 0 || n != next {
		t.Errorf("repeat: %d events, link %s", len(vals), n)
	}
	// $skipToken in another casing selects the same position.
	first, _ := e.eventsPage(e.containerPath(e.cid) + "/migrationJobs/" + jobID + "/progressEvents?$SkipToken=" + encodeTok(2))
	if len(first) == 0 || first[0]["id"] != all[2]["id"] {
		t.Errorf("$SkipToken=%s did not select event 2", encodeTok(2))
	}
	// The same endpoint under /beta.
	if vals, _ := e.eventsPage("/beta/storage/fileStorage/containers/" + e.cid + "/migrationJobs/" + jobID + "/progressEvents"); len(vals) != 2 {
		t.Errorf("/beta page: %d events", len(vals))
	}
	// A bad token is a 400.
	if r := e.do("GET", e.containerPath(e.cid)+"/migrationJobs/"+jobID+"/progressEvents?$skiptoken=***", nil); r.status != 400 {
		t.Errorf("bad token: %d", r.status)
	}
}

func encodeTok(n int) string {
	b, _ := json.Marshal(n)
	return strings.TrimRight(base64URL(b), "=")
}

func TestProgressEventsNothingNewWhileQueued(t *testing.T) {
	e := newEmu(t, nil)
	e.srv.AddJobFaults(graphemu.JobFaults{QueueDelay: time.Hour})
	ci := e.provision()
	jobID := e.mustCreateJob(ci)
	vals, next := e.eventsPage(e.containerPath(e.cid) + "/migrationJobs/" + jobID + "/progressEvents")
	if len(vals) != 1 || !strings.HasSuffix(vals[0]["@odata.type"].(string), "JobQueuedEvent") {
		t.Fatalf("want the Queued event only, got %v", vals)
	}
	for range 2 {
		v, n := e.eventsPage(next)
		if len(v) != 0 || n != next {
			t.Fatalf("nothing new: got %d events and link %s, want none and %s", len(v), n, next)
		}
	}
}

func TestProgressEventsOmitNextLinkKnob(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) { c.Knobs.OmitNextLinkWhenExhausted = true })
	ci := e.provision()
	examplePkg().upload(t, ci)
	jobID := e.mustCreateJob(ci)
	e.waitDone(jobID)
	if _, n := e.eventsPage(e.containerPath(e.cid) + "/migrationJobs/" + jobID + "/progressEvents"); n != "" {
		t.Errorf("exhausted page still has nextLink %s", n)
	}
}

func TestProgressEventsRetention(t *testing.T) {
	e := newEmu(t, nil)
	ci := e.provision()
	examplePkg().upload(t, ci)
	jobID := e.mustCreateJob(ci)
	e.waitDone(jobID)
	path := e.containerPath(e.cid) + "/migrationJobs/" + jobID + "/progressEvents"
	e.clk.advance(95 * time.Hour)
	if r := e.do("GET", path, nil); r.status != 200 {
		t.Fatalf("within 4 days: %d", r.status)
	}
	e.clk.advance(2 * time.Hour)
	r := e.do("GET", path, nil)
	if code, inner := r.errCodes(t); r.status != 404 || code != "migrationNotFound" || inner != "jobProgressExpired" {
		t.Errorf("after 4 days: %d %s/%s", r.status, code, inner)
	}
	r = e.do("GET", e.containerPath(e.cid)+"/migrationJobs/00000000-0000-0000-0000-000000000000/progressEvents", nil)
	if code, inner := r.errCodes(t); r.status != 404 || code != "migrationNotFound" || inner != "jobNotFound" {
		t.Errorf("unknown job: %d %s/%s", r.status, code, inner)
	}
}

func TestDeleteJob(t *testing.T) {
	t.Run("queued: 204, Deleted event, never runs", func(t *testing.T) {
		e := newEmu(t, nil)
		e.srv.AddJobFaults(graphemu.JobFaults{QueueDelay: time.Hour})
		jobID := e.mustCreateJob(e.provision())
		path := e.containerPath(e.cid) + "/migrationJobs/" + jobID
		if r := e.do("DELETE", path, nil); r.status != 204 {
			t.Fatalf("delete queued: %d %s", r.status, r.body)
		}
		vals, _ := e.eventsPage(path + "/progressEvents")
		if len(vals) != 2 || !strings.HasSuffix(vals[1]["@odata.type"].(string), "JobDeletedEvent") {
			t.Errorf("events after delete: %v", vals)
		}
		r := e.do("DELETE", path, nil)
		if code, inner := r.errCodes(t); r.status != 404 || code != "migrationNotFound" || inner != "jobNotFound" {
			t.Errorf("second delete: %d %s/%s", r.status, code, inner)
		}
	})
	t.Run("processing (default cancel): Cancelled, fatal Operation canceled, final Progress", func(t *testing.T) {
		e := newEmu(t, nil)
		e.srv.AddJobFaults(graphemu.JobFaults{ProcessingDelay: time.Hour})
		ci := e.provision()
		examplePkg().upload(t, ci)
		jobID := e.mustCreateJob(ci)
		e.waitEvent(jobID, "sharePointMigrationJobStartEvent")
		if r := e.do("DELETE", e.containerPath(e.cid)+"/migrationJobs/"+jobID, nil); r.status != 204 {
			t.Fatalf("delete processing: %d %s", r.status, r.body)
		}
		evs := e.waitDone(jobID)
		n := len(evs)
		if n < 3 || !strings.HasSuffix(evs[n-3]["@odata.type"].(string), "JobCancelledEvent") || evs[n-3]["isCancelledByUser"] != true {
			t.Fatalf("want Cancelled, Error, Progress at the end: %v", evs)
		}
		errEv := evs[n-2]
		if errEv["errorLevel"] != "fatalError" || errEv["error"].(map[string]any)["code"] != "-2147213196" || errEv["error"].(map[string]any)["message"] != "Operation canceled." {
			t.Errorf("cancel error event = %v", errEv)
		}
	})
	t.Run("processing (knob notFound): 404", func(t *testing.T) {
		e := newEmu(t, func(c *graphemu.Config) { c.Knobs.DeleteProcessing = "notFound" })
		e.srv.AddJobFaults(graphemu.JobFaults{ProcessingDelay: time.Hour})
		jobID := e.mustCreateJob(e.provision())
		e.waitEvent(jobID, "sharePointMigrationJobStartEvent")
		r := e.do("DELETE", e.containerPath(e.cid)+"/migrationJobs/"+jobID, nil)
		if code, inner := r.errCodes(t); r.status != 404 || inner != "jobNotFound" {
			t.Errorf("got %d %s/%s", r.status, code, inner)
		}
	})
	t.Run("unknown job: 404 jobNotFound", func(t *testing.T) {
		e := newEmu(t, nil)
		r := e.do("DELETE", e.containerPath(e.cid)+"/migrationJobs/31090ce2-3b99-fa40-7ec5-46ebeeb5900b", nil)
		if code, inner := r.errCodes(t); r.status != 404 || code != "migrationNotFound" || inner != "jobNotFound" {
			t.Errorf("got %d %s/%s", r.status, code, inner)
		}
	})
}

func TestAuthAndErrorShape(t *testing.T) {
	e := newEmu(t, nil)
	r := e.do("POST", e.containerPath(e.cid)+"/provisionMigrationContainers", nil, "Authorization", "", "client-request-id", "abc-123")
	if r.status != 401 {
		t.Fatalf("without a token: %d", r.status)
	}
	m := r.json(t)["error"].(map[string]any)
	inner := m["innerError"].(map[string]any)
	if m["code"] != "InvalidAuthenticationToken" || inner["request-id"] == "" || inner["client-request-id"] != "abc-123" || inner["date"] == nil {
		t.Errorf("error body = %v", m)
	}
	if r.header.Get("request-id") == "" || r.header.Get("client-request-id") != "abc-123" {
		t.Errorf("headers = %v", r.header)
	}
	if r := e.do("POST", e.containerPath(e.cid)+"/provisionMigrationContainers", nil, "Authorization", "Basic dXNlcg=="); r.status != 401 {
		t.Errorf("basic auth: %d", r.status)
	}
	// Any bearer token is accepted, under both versions.
	if r := e.do("POST", "/beta/storage/fileStorage/containers/"+e.cid+"/provisionMigrationContainers", nil, "Authorization", "Bearer x"); r.status != 200 {
		t.Errorf("beta provision: %d %s", r.status, r.body)
	}
	// The SDK-only job listing is not a documented operation.
	if r := e.do("GET", e.containerPath(e.cid)+"/migrationJobs", nil); r.status != 501 {
		t.Errorf("list jobs: %d", r.status)
	}
	// Provisioned SAS grant read and write, not list.
	ci := e.provision()
	for _, u := range []string{ci.DataContainerURI, ci.MetadataContainerURI} {
		if !strings.Contains(u, "sp=rw&") {
			t.Errorf("SAS %s... does not grant exactly rw", u[:strings.Index(u, "?")])
		}
	}
	if k := ci.EncryptionKey; len(k) != 44 || !strings.HasSuffix(k, "=") {
		t.Errorf("key is not base64 of 32 bytes")
	}
}

func TestLauncherStartsGraph(t *testing.T) {
	if st.GraphURL == "" || st.GraphCAFile == "" || st.GraphAdminURL == "" || st.SPEContainerID == "" {
		t.Fatalf("stack fields not set: %+v", st)
	}
	pemBytes, err := os.ReadFile(st.GraphCAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("CA file holds no certificate")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", st.GraphURL+"/v1.0/drives/"+st.SPEContainerID+"/root?$select=sharepointIds,webUrl", nil)
	req.Header.Set("Authorization", "Bearer t")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	if res.StatusCode != 200 || m["sharepointIds"].(map[string]any)["webId"] != st.SPEWebID {
		t.Errorf("root: %d %v", res.StatusCode, m)
	}
	res2, err := c.Get(st.GraphAdminURL + "/counts")
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != 200 {
		t.Errorf("admin counts: %d", res2.StatusCode)
	}
}
