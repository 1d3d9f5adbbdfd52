package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/sample"
)

func TestStartedByHTTP(t *testing.T) {
	needApp(t)
	ctx := testContext(t, 2*time.Minute)
	blobs := seed(t, ctx, "e2e-http", sample.Small("", 40))
	m := startHTTP(t, ctx, migrationRequest(t, "e2e-http-1", "e2e-http", target("http"), "e2e/http"))
	m = waitMigration(t, ctx, m.ID)
	res := verifyMigration(t, ctx, m, target("http"), "e2e/http", blobs)
	if res.Renamed == 0 || res.Skipped == 0 {
		t.Errorf("renamed %d, skipped %d: the sample's naming cases were not exercised", res.Renamed, res.Skipped)
	}
}

func TestStartedByQueueMessage(t *testing.T) {
	needApp(t)
	ctx := testContext(t, 2*time.Minute)
	blobs := seed(t, ctx, "e2e-queue", sample.Small("", 30))
	body := mustJSON(t, migrationRequest(t, "e2e-queue-1", "e2e-queue", target("queue"), "e2e/queue"))

	// Another system drops the request on the provision queue.
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
	msgID, ct := "e2e-queue-message-1", "application/json"
	if err := sender.SendMessage(ctx, &azservicebus.Message{Body: body, MessageID: &msgID, ContentType: &ct}, nil); err != nil {
		t.Fatal(err)
	}
	m := waitMigration(t, ctx, "e2e-queue-1")
	verifyMigration(t, ctx, m, target("queue"), "e2e/queue", blobs)
}

func TestStartedBySchedule(t *testing.T) {
	needApp(t)
	ctx := testContext(t, 2*time.Minute)
	blobs := seed(t, ctx, "e2e-schedule", sample.Small("", 20))
	sched := map[string]any{
		"id":      "e2e-schedule",
		"cron":    "0 * * * * *",
		"request": migrationRequest(t, "", "e2e-schedule", target("schedule"), "e2e/schedule"),
	}
	delete(sched["request"].(map[string]any), "id")
	st, body := call(t, ctx, http.MethodPost, "/api/schedules", mustJSON(t, sched), nil)
	if st != http.StatusCreated {
		t.Fatalf("POST /api/schedules: %d %s", st, body)
	}
	var s api.Schedule
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		call(t, testContext(t, 10*time.Second), http.MethodDelete, "/api/schedules/e2e-schedule", nil, nil)
	})
	if s.NextRun.IsZero() {
		t.Fatalf("schedule has no next run: %s", body)
	}

	// The schedules timer runs every minute (at second 0) and starts the
	// slot that fell due since the schedule was created.
	var id string
	waitFor(t, ctx, "the schedules timer to start a migration", 250*time.Millisecond, func() bool {
		st, body := call(t, ctx, http.MethodGet, "/api/schedules/e2e-schedule", nil, nil)
		if st != http.StatusOK {
			t.Fatalf("GET schedule: %d %s", st, body)
		}
		var s api.Schedule
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatal(err)
		}
		id = s.LastMigrationID
		return id != ""
	})
	if time.Since(s.NextRun) < 0 {
		t.Errorf("a migration started before the schedule's first slot %s", s.NextRun)
	}
	// No further slots: the test checks one run.
	if st, body := call(t, ctx, http.MethodDelete, "/api/schedules/e2e-schedule", nil, nil); st >= 300 {
		t.Fatalf("DELETE schedule: %d %s", st, body)
	}
	m := waitMigration(t, ctx, id)
	verifyMigration(t, ctx, m, target("schedule"), "e2e/schedule", blobs)
}

func TestCancelDeletesQueuedJobs(t *testing.T) {
	needApp(t)
	ctx := testContext(t, 2*time.Minute)
	files := sample.Generate(sample.Options{Files: 24, MaxSmall: 8 << 10})
	seed(t, ctx, "e2e-cancel", files)
	// Every job of this migration sits in Graph's queue (a slow queue).
	// The folders a package creates count towards maxItems, so the batch
	// count follows the sample's tree: enough faults for any of them.
	const maxJobs = 24
	t.Cleanup(app.Graph.ClearFaults)
	for range maxJobs {
		app.Graph.AddJobFaults(graphemu.JobFaults{QueueDelay: 10 * time.Minute})
	}
	batches := 0
	jobs0 := app.Graph.Counts()[graphemu.RouteCreateJob]

	req := migrationRequest(t, "e2e-cancel-1", "e2e-cancel", target("cancel"), "e2e/cancel")
	req["options"] = map[string]any{"batch": map[string]any{"maxItems": 8}}
	m := startHTTP(t, ctx, req)
	waitFor(t, ctx, "every batch to have a queued Graph job", 100*time.Millisecond, func() bool {
		m = getMigration(t, ctx, m.ID)
		if m.Terminal() {
			t.Fatalf("migration ended %s before the cancel", m.Status)
		}
		if !m.Counters.PlanDone || len(m.Batches) == 0 || int64(len(m.Batches)) != m.Counters.Batches {
			return false
		}
		for _, b := range m.Batches {
			if b.JobID == "" {
				return false
			}
		}
		batches = len(m.Batches)
		return true
	})
	if batches < 2 || batches > maxJobs {
		t.Fatalf("%d batches; the test needs 2 to %d", batches, maxJobs)
	}

	st, body := call(t, ctx, http.MethodDelete, "/api/migrations/"+m.ID, nil, nil)
	if st != http.StatusOK && st != http.StatusAccepted {
		t.Fatalf("DELETE migration: %d %s", st, body)
	}
	m = waitMigration(t, ctx, m.ID)
	if m.Status != api.StatusCancelled {
		t.Fatalf("status %s (%s), want cancelled", m.Status, m.Reason)
	}
	if m.Counters.BatchesCancelled != int64(batches) || m.Counters.FilesMigrated != 0 {
		t.Errorf("counters %+v: want %d batches cancelled and nothing migrated", m.Counters, batches)
	}
	for _, b := range m.Batches {
		if b.Status != "cancelled" {
			t.Errorf("batch %s: status %s (%s), want cancelled", b.ID, b.Status, b.Reason)
		}
	}

	// Graph agrees: every job was deleted while queued, none ran.
	g, err := app.GraphReader()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range m.Batches {
		evs, err := g.JobEvents(ctx, target("cancel"), b.JobID)
		if err != nil {
			t.Fatal(err)
		}
		var deleted, started bool
		for _, e := range evs {
			switch typ, _ := e["@odata.type"].(string); {
			case strings.HasSuffix(typ, "DeletedEvent"):
				deleted = true
			case strings.HasSuffix(typ, "StartEvent"):
				started = true
			}
		}
		if !deleted || started {
			t.Errorf("job %s of batch %s: deleted %v, started %v; want deleted and never started", b.JobID, b.ID, deleted, started)
		}
	}
	if n := app.Graph.Counts()[graphemu.RouteCreateJob] - jobs0; n != int64(batches) {
		t.Errorf("%d jobs created, want %d", n, batches)
	}
	if _, err := g.ItemByPath(ctx, target("cancel"), "e2e/cancel"); err == nil {
		t.Errorf("the cancelled migration's folder exists in the target")
	}
}

func TestHandlerKilledDuringStageBatch(t *testing.T) {
	needApp(t)
	ctx := testContext(t, 3*time.Minute)
	files := sample.Generate(sample.Options{Files: 36, MaxSmall: 32 << 10, LargeSize: 24 << 20})
	blobs := seed(t, ctx, "e2e-kill", files)
	jobs0 := app.Graph.Counts()[graphemu.RouteCreateJob]
	restarts0 := hostStats(t).HandlerRestarts

	req := migrationRequest(t, "e2e-kill-1", "e2e-kill", target("kill"), "e2e/kill")
	req["options"] = map[string]any{"batch": map[string]any{"maxItems": 10}}
	m := startHTTP(t, ctx, req)

	waitFor(t, ctx, "a stage-batch invocation in flight", 5*time.Millisecond, func() bool {
		return hostStats(t).Functions["stage-batch"].InFlight > 0
	})
	pid := handlerPID(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill handler %d: %v", pid, err)
	}
	t.Logf("killed handler pid %d in the middle of stage-batch", pid)
	waitFor(t, ctx, "the dev host to restart the handler", 50*time.Millisecond, func() bool {
		return hostStats(t).HandlerRestarts > restarts0
	})

	m = waitMigration(t, ctx, m.ID)
	verifyMigration(t, ctx, m, target("kill"), "e2e/kill", blobs)
	jobs := map[string]bool{}
	for _, b := range m.Batches {
		if b.JobID == "" || jobs[b.JobID] {
			t.Errorf("batch %s: job %q (missing or shared)", b.ID, b.JobID)
		}
		jobs[b.JobID] = true
	}
	if n := app.Graph.Counts()[graphemu.RouteCreateJob] - jobs0; int(n) != len(m.Batches) {
		t.Errorf("Graph saw %d jobs created for %d batches, want one per batch", n, len(m.Batches))
	}
}

func TestPoisonMessageFailsMigration(t *testing.T) {
	needApp(t)
	ctx := testContext(t, 2*time.Minute)
	dead0 := queueCount(sbStats(t, ctx), "provision", "deadLettered")
	// The source container does not exist: planning fails on every
	// delivery until Service Bus dead-letters the message.
	m := startHTTP(t, ctx, migrationRequest(t, "e2e-poison-1", "e2e-no-such-container", target("poison"), "e2e/poison"))
	m = waitMigration(t, ctx, m.ID)
	if m.Status != api.StatusFailed {
		t.Fatalf("status %s, want failed", m.Status)
	}
	if m.Reason == "" {
		t.Fatalf("failed without a reason")
	}
	t.Logf("reason: %s", m.Reason)
	if !strings.Contains(strings.ToLower(m.Reason), "dead-letter") {
		t.Errorf("reason %q does not say the message was dead-lettered", m.Reason)
	}
	if strings.Contains(m.Reason, "sig=") {
		t.Errorf("reason carries a SAS signature: %q", m.Reason)
	}
	if n := queueCount(sbStats(t, ctx), "provision", "deadLettered") - dead0; n < 1 {
		t.Errorf("provision queue dead-lettered %d messages, want at least 1", n)
	}
}

// ---- dev host ----

type devhostStats struct {
	Functions map[string]struct {
		Invocations int `json:"invocations"`
		Failures    int `json:"failures"`
		InFlight    int `json:"inFlight"`
	} `json:"functions"`
	HandlerRestarts int `json:"handlerRestarts"`
}

func hostStats(t *testing.T) devhostStats {
	t.Helper()
	st, body := call(t, testContext(t, 10*time.Second), http.MethodGet, "/admin/stats", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("GET /admin/stats: %d %s", st, body)
	}
	var s devhostStats
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// handlerPID finds the handler process the dev host (in this process)
// started: a child of this process running the handler binary.
func handlerPID(t *testing.T) int {
	t.Helper()
	want, err := filepath.EvalSymlinks(app.HandlerPath)
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so split after ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(self) {
			continue
		}
		dir := filepath.Dir(p)
		exe, err := os.Readlink(filepath.Join(dir, "exe"))
		if err != nil || exe != want {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err == nil {
			return pid
		}
	}
	t.Fatalf("no handler process (%s) among this process's children", want)
	return 0
}
