package graphemu_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
)

func TestFaultThrottleScript(t *testing.T) {
	e := newEmu(t, nil)
	if err := e.srv.AddFault(graphemu.FaultRule{Route: graphemu.RouteProvision, Status: 429, RetryAfter: 7, Count: 3}); err != nil {
		t.Fatal(err)
	}
	path := e.containerPath(e.cid) + "/provisionMigrationContainers"
	for i := range 3 {
		r := e.do("POST", path, nil)
		code, inner := r.errCodes(t)
		if r.status != 429 || r.header.Get("Retry-After") != "7" || code != "activityLimitReached" || inner != "RetryAfterDelay" {
			t.Fatalf("call %d: %d Retry-After=%q %s/%s", i+1, r.status, r.header.Get("Retry-After"), code, inner)
		}
	}
	if r := e.do("POST", path, nil); r.status != 200 {
		t.Fatalf("call 4 after the script: %d", r.status)
	}
	if got := e.srv.Counts()[graphemu.RouteProvision]; got != 4 {
		t.Errorf("provision count = %d, want 4", got)
	}
}

func TestFault503WithProbability(t *testing.T) {
	e := newEmu(t, nil)
	ci := e.provision()
	examplePkg().upload(t, ci)
	jobID := e.mustCreateJob(ci)
	if err := e.srv.AddFault(graphemu.FaultRule{Route: graphemu.RouteProgressEvents, Status: 503, Probability: 1}); err != nil {
		t.Fatal(err)
	}
	path := e.containerPath(e.cid) + "/migrationJobs/" + jobID + "/progressEvents"
	for range 5 {
		r := e.do("GET", path, nil)
		if r.status != 503 || r.header.Get("Retry-After") != "1" {
			t.Fatalf("got %d Retry-After=%q", r.status, r.header.Get("Retry-After"))
		}
	}
	e.srv.ClearFaults()
	e.waitDone(jobID)
	if err := e.srv.AddFault(graphemu.FaultRule{Route: "x", Status: 418, Count: 1}); err == nil {
		t.Error("a 418 fault was accepted")
	}
}

func TestFault500OnCreateJob(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) {
		c.Faults = []graphemu.FaultRule{{Route: graphemu.RouteCreateJob, Status: 500, Count: 1}}
	})
	ci := e.provision()
	examplePkg().upload(t, ci)
	r := e.createJob(ci)
	if code, _ := r.errCodes(t); r.status != 500 || code != "generalException" {
		t.Fatalf("first create: %d %s", r.status, code)
	}
	e.waitDone(e.mustCreateJob(ci))
}

func TestFaultsThroughAdminEndpoint(t *testing.T) {
	e := newEmu(t, nil)
	post := func(path string, v any) int {
		b, _ := json.Marshal(v)
		res, err := e.http.Post(e.srv.AdminURL()+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := post("/faults", graphemu.FaultRule{Route: "*", Status: 503, RetryAfter: 2, Count: 2}); s != 204 {
		t.Fatalf("add fault: %d", s)
	}
	if s := post("/faults", map[string]any{"route": "*", "status": 503}); s != 400 {
		t.Errorf("a rule with neither count nor probability: %d, want 400", s)
	}
	root := "/v1.0/drives/" + e.cid + "/root"
	for range 2 {
		if r := e.do("GET", root, nil); r.status != 503 || r.header.Get("Retry-After") != "2" {
			t.Fatalf("got %d", r.status)
		}
	}
	if r := e.do("GET", root, nil); r.status != 200 {
		t.Fatalf("after the script: %d", r.status)
	}
	res, err := e.http.Get(e.srv.AdminURL() + "/counts")
	if err != nil {
		t.Fatal(err)
	}
	var counts struct {
		Counts map[string]int64 `json:"counts"`
		Total  int64            `json:"total"`
	}
	_ = json.NewDecoder(res.Body).Decode(&counts)
	res.Body.Close()
	if counts.Counts[graphemu.RouteDriveRoot] != 3 || counts.Total != 3 {
		t.Errorf("counts = %+v", counts)
	}
	if s := post("/counts/reset", nil); s != 204 {
		t.Errorf("reset: %d", s)
	}
	if len(e.srv.Counts()) != 0 {
		t.Errorf("counts after reset: %v", e.srv.Counts())
	}
	if s := post("/jobfaults", graphemu.JobFaults{Fatal: "injected via admin"}); s != 204 {
		t.Fatalf("jobfaults: %d", s)
	}
	ci := e.provision()
	examplePkg().upload(t, ci)
	evs := e.waitDone(e.mustCreateJob(ci))
	assertOutcome(t, evs, rule{level: fatal, msg: "injected via admin"})
	req, _ := http.NewRequest("DELETE", e.srv.AdminURL()+"/faults", nil)
	if res, err := e.http.Do(req); err != nil || res.StatusCode != 204 {
		t.Errorf("clear faults: %v %v", err, res)
	}
}

func TestFaultPostponedJob(t *testing.T) {
	e := newEmu(t, nil)
	e.srv.AddJobFaults(graphemu.JobFaults{Postpone: 2, PostponeDelay: 50 * time.Millisecond})
	ci := e.provision()
	examplePkg().upload(t, ci)
	evs := e.waitDone(e.mustCreateJob(ci))
	var seq []string
	for _, ev := range evs[:4] {
		seq = append(seq, strings.TrimPrefix(ev["@odata.type"].(string), "#microsoft.graph.sharePointMigrationJob"))
	}
	if strings.Join(seq, ",") != "QueuedEvent,PostponedEvent,PostponedEvent,StartEvent" {
		t.Fatalf("sequence %v", seq)
	}
	p := evs[1]
	if p["nextPickupDateTime"] == nil || p["jobsInQueue"] == nil || p["reason"] == nil {
		t.Errorf("postponed event = %v", p)
	}
	assertOutcome(t, evs, rule{level: ""})
}

func TestFaultRestart(t *testing.T) {
	e := newEmu(t, nil)
	e.srv.AddJobFaults(graphemu.JobFaults{Restart: true})
	ci := e.provision()
	examplePkg().upload(t, ci)
	jobID := e.mustCreateJob(ci)
	evs := e.waitDone(jobID)
	starts := ofType(evs, "sharePointMigrationJobStartEvent")
	if len(starts) != 2 || starts[0]["isRestarted"] != false || starts[1]["isRestarted"] != true || starts[1]["totalRetryCount"] != float64(1) {
		t.Fatalf("start events = %v", starts)
	}
	final := evs[len(evs)-1]
	if final["totalRetryCount"] != float64(1) || final["filesProcessed"] != float64(2) {
		t.Errorf("final = %v", final)
	}
	if log := readLog(t, ci, "Import-"+jobID+"-2.log"); !strings.Contains(log, "Job restarted") {
		t.Errorf("attempt-2 log lacks the restart:\n%s", log)
	}
}

func TestFaultJobFatal(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) {
		c.JobFaults = graphemu.JobFaults{Fatal: "The content database is unavailable."}
	})
	ci := e.provision()
	examplePkg().upload(t, ci)
	evs := e.waitDone(e.mustCreateJob(ci))
	assertOutcome(t, evs, rule{level: fatal, msg: "The content database is unavailable."})
	if r := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts", nil); r.status != 404 {
		t.Errorf("a fatal job imported the folder: %d", r.status)
	}
	errLog := readLog(t, ci, "Import-"+evs[0]["jobId"].(string)+"-1.err")
	if !strings.Contains(errLog, "FatalError") {
		t.Errorf(".err log lacks the fatal error:\n%s", errLog)
	}
}

func TestFaultSlowQueue(t *testing.T) {
	e := newEmu(t, nil)
	const delay = time.Second
	e.srv.AddJobFaults(graphemu.JobFaults{QueueDelay: delay})
	ci := e.provision()
	examplePkg().upload(t, ci)
	evs := e.waitDone(e.mustCreateJob(ci))
	q, _ := time.Parse(time.RFC3339, evs[0]["eventDateTime"].(string))
	s, _ := time.Parse(time.RFC3339, ofType(evs, "sharePointMigrationJobStartEvent")[0]["eventDateTime"].(string))
	if s.Sub(q) < delay {
		t.Errorf("job started %s after it was queued; the queue delay is %s", s.Sub(q), delay)
	}
}

func TestFaultsFile(t *testing.T) {
	path := t.TempDir() + "/faults.json"
	body := `{"rules": [{"route": "driveRoot", "status": 503, "retryAfter": 4, "count": 1}],
	          "jobFaults": {"postpone": 1, "postponeDelay": 1000000}}`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEmu(t, func(c *graphemu.Config) { c.FaultsFile = path })
	if r := e.do("GET", "/v1.0/drives/"+e.cid+"/root", nil); r.status != 503 || r.header.Get("Retry-After") != "4" {
		t.Errorf("first root call: %d", r.status)
	}
	if r := e.do("GET", "/v1.0/drives/"+e.cid+"/root", nil); r.status != 200 {
		t.Errorf("second root call: %d", r.status)
	}
	ci := e.provision()
	examplePkg().upload(t, ci)
	if evs := e.waitDone(e.mustCreateJob(ci)); len(ofType(evs, "sharePointMigrationJobPostponedEvent")) != 1 {
		t.Errorf("want one Postponed event from the file's jobFaults")
	}
	bad := t.TempDir() + "/bad.json"
	_ = os.WriteFile(bad, []byte(`{"rulez": []}`), 0o644)
	cfg := graphemu.Config{Containers: []graphemu.Container{graphemu.DefaultContainer()}, DataDir: t.TempDir(), FaultsFile: bad,
		Storage: graphemu.Storage{BlobEndpoint: st.BlobEndpoint, Account: "a", Key: "a2V5"}}
	if _, err := graphemu.New(cfg); err == nil || !strings.Contains(err.Error(), "FaultsFile") {
		t.Errorf("bad faults file: %v", err)
	}
}
