package devhost_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/infra/local/devhost"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
)

// handlerBin is the test handler, built once for the package.
var handlerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "devhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	handlerBin = filepath.Join(dir, "testhandler")
	build := exec.Command("go", "build", "-o", handlerBin, "./testdata/testhandler")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the test handler:", err)
		os.Exit(1)
	}
	code := runWithStack(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// app is a function app written into a temporary directory.
type app struct {
	root   string
	record string
	logs   *syncBuffer
}

const defaultHostJSON = `{"version":"2.0",
  "customHandler":{"description":{"defaultExecutablePath":"handler"}},
  "functionTimeout":"00:00:30",
  "extensions":{"http":{"routePrefix":"api"},"serviceBus":{"maxConcurrentCalls":4,"maxAutoLockRenewalDuration":"00:01:00"}}}`

func newApp(t *testing.T, hostJSON string, functions map[string]string) *app {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "host.json"), []byte(hostJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, js := range functions {
		dir := filepath.Join(root, "handlers", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "function.json"), []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &app{root: root, record: filepath.Join(root, "requests.jsonl"), logs: &syncBuffer{}}
}

func (a *app) config(settings map[string]string) devhost.Config {
	s := map[string]string{"TESTHANDLER_RECORD": a.record}
	for k, v := range settings {
		s[k] = v
	}
	return devhost.Config{
		AppRoot:      a.root,
		FunctionsDir: "handlers",
		HandlerPath:  handlerBin,
		Settings:     s,
		HTTPAddr:     "127.0.0.1:0",
		Logger:       slog.New(slog.NewTextHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func (a *app) start(t *testing.T, cfg devhost.Config) *devhost.Host {
	t.Helper()
	h, err := devhost.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		if t.Failed() {
			t.Logf("dev host log:\n%s", a.logs.String())
		}
	})
	return h
}

// request is one request the test handler received, as it received it.
type request struct {
	Method string              `json:"method"`
	Path   string              `json:"path"`
	Header map[string][]string `json:"header"`
	Body   string              `json:"body"`
	PID    int                 `json:"pid"`
	// InFlight is how many requests the handler was serving when this one
	// arrived, itself included.
	InFlight int64 `json:"inFlight"`
}

func (r request) payload(t *testing.T) (data, meta map[string]json.RawMessage) {
	t.Helper()
	var p struct {
		Data     map[string]json.RawMessage
		Metadata map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
		t.Fatalf("request body %q: %v", r.Body, err)
	}
	return p.Data, p.Metadata
}

func (a *app) requests(t *testing.T, path string) []request {
	t.Helper()
	f, err := os.Open(a.record)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []request
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r request
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue // a line being written
		}
		if path == "" || r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// waitRequests polls until the handler has received n requests on path.
func (a *app) waitRequests(t *testing.T, path string, n int, timeout time.Duration) []request {
	t.Helper()
	var got []request
	eventually(t, timeout, func() bool {
		got = a.requests(t, path)
		return len(got) >= n
	}, func() string { return fmt.Sprintf("%d requests on %s, want %d", len(got), path, n) })
	return got
}

func eventually(t *testing.T, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	stacktest.Eventually(t, timeout, cond, msg)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func hostString(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var outer, inner string
	if err := json.Unmarshal(raw, &outer); err != nil {
		t.Fatalf("%s is not a JSON string: %v", raw, err)
	}
	if err := json.Unmarshal([]byte(outer), &inner); err != nil {
		t.Fatalf("%s is not double-encoded: %v", raw, err)
	}
	return inner
}

const httpFunctions = `{"bindings":[
  {"type":"httpTrigger","direction":"in","name":"req","authLevel":"function","methods":["get","post"],"route":"orders/{id:int}"},
  {"type":"http","direction":"out","name":"res"}]}`

func TestHTTPFrontDoor(t *testing.T) {
	a := newApp(t, defaultHostJSON, map[string]string{
		"HttpOrders": httpFunctions,
		"HttpFiles": `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","route":"files/{*rest}"},
		                {"type":"http","direction":"out","name":"res"}]}`,
		"HttpDefault": `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req"},{"type":"http","direction":"out","name":"res"}]}`,
	})
	h := a.start(t, a.config(nil))
	base := h.HTTPURL()

	cases := []struct {
		method, path, body string
		status             int
		params             map[string]string
	}{
		{"GET", "/api/orders/17?status=201", "", 201, map[string]string{"id": "17"}},
		{"POST", "/api/orders/18", `{"qty":2}`, 200, map[string]string{"id": "18"}},
		{"DELETE", "/api/orders/17", "", 404, nil}, // method filter
		{"GET", "/api/orders/abc", "", 404, nil},   // {id:int} constraint
		{"GET", "/orders/17", "", 404, nil},        // route prefix required
		{"GET", "/api/orders/17?fail=1", "", 500, nil},
		{"PUT", "/api/files/a/b%20c.txt", "x", 200, map[string]string{"rest": "a/b c.txt"}},
		{"GET", "/api/httpdefault", "", 200, nil}, // default route = function name, case-insensitive
		{"GET", "/api/nothing", "", 404, nil},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d (%s)", c.method, c.path, resp.StatusCode, c.status, b)
			continue
		}
		if c.params == nil || c.status >= 300 {
			continue
		}
		if got := resp.Header.Get("X-Method"); got != c.method {
			t.Errorf("%s %s: X-Method %q from the http output headers, want %q", c.method, c.path, got, c.method)
		}
		var out struct {
			Params map[string]string
			Body   string
		}
		if err := json.Unmarshal(b, &out); err != nil {
			t.Errorf("%s %s: body %s: %v", c.method, c.path, b, err)
		}
		for k, v := range c.params {
			if out.Params[k] != v {
				t.Errorf("%s %s: route parameter %s = %q, want %q", c.method, c.path, k, out.Params[k], v)
			}
		}
		if out.Body != c.body {
			t.Errorf("%s %s: handler saw body %q, want %q", c.method, c.path, out.Body, c.body)
		}
	}

	// The bytes of a payload-mode request (spec §3.5).
	reqs := a.requests(t, "/HttpOrders")
	if len(reqs) < 2 {
		t.Fatalf("handler saw %d requests on /HttpOrders", len(reqs))
	}
	r := reqs[1] // POST /api/orders/18
	if r.Method != "POST" || r.Header["Content-Type"][0] != "application/json; charset=utf-8" ||
		r.Header["User-Agent"][0] != "Azure-Functions-Host/"+devhost.HostVersion || len(r.Header["X-Azure-Functions-Invocationid"][0]) != 36 {
		t.Errorf("request line/headers: %s %v", r.Method, r.Header)
	}
	data, meta := r.payload(t)
	var req struct {
		Url, Method string
		Query       map[string]string
		Headers     map[string][]string
		Params      map[string]string
		Identities  []any
		Body        string
	}
	if err := json.Unmarshal(data["req"], &req); err != nil {
		t.Fatal(err)
	}
	if req.Method != "POST" || !strings.HasSuffix(req.Url, "/api/orders/18") || req.Params["id"] != "18" || req.Body != `{"qty":2}` || req.Identities == nil {
		t.Errorf("Data.req = %s", data["req"])
	}
	if hostString(t, meta["id"]) != "18" || hostString(t, meta["qty"]) != "2" {
		t.Errorf("Metadata route parameter / body property not double-encoded strings: id=%s qty=%s", meta["id"], meta["qty"])
	}
	if _, ok := meta["sys"]; !ok {
		t.Error("Metadata.sys missing")
	}
}

func TestHTTPForwardingMode(t *testing.T) {
	hostJSON := strings.Replace(defaultHostJSON, `"defaultExecutablePath":"handler"}`, `"defaultExecutablePath":"handler"},"enableForwardingHttpRequest":true`, 1)
	a := newApp(t, hostJSON, map[string]string{
		"HttpFwd": `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","route":"fwd/{x}"},{"type":"http","direction":"out","name":"res"}]}`,
	})
	h := a.start(t, a.config(nil))
	resp, err := http.Post(h.HTTPURL()+"/api/fwd/1?q=2", "text/plain", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || string(b) != "forwarded POST /api/fwd/1?q=2 hi" || resp.Header.Get("X-Forwarded-Path") != "/api/fwd/1" {
		t.Errorf("forwarded response %d %q %v; want the handler's own 418", resp.StatusCode, b, resp.Header)
	}
	reqs := a.requests(t, "/api/fwd/1?q=2")
	if len(reqs) != 1 || reqs[0].Header["X-Azure-Functions-Invocationid"] == nil {
		t.Errorf("handler saw %+v", reqs)
	}
}

// timerInfo is the TimerInfo object the handler receives.
type timerInfo struct {
	Schedule       struct{ AdjustForDST bool }
	ScheduleStatus *struct{ Last, Next, LastUpdated string }
	IsPastDue      bool
}

func TestTimerFiresOnSchedule(t *testing.T) {
	a := newApp(t, defaultHostJSON, map[string]string{
		"Tick": `{"bindings":[{"type":"timerTrigger","direction":"in","name":"tick","schedule":"*/1 * * * * *"}]}`,
	})
	a.start(t, a.config(nil))
	reqs := a.waitRequests(t, "/Tick", 2, 10*time.Second)
	data, meta := reqs[0].payload(t)
	var ti timerInfo
	if err := json.Unmarshal(data["tick"], &ti); err != nil {
		t.Fatalf("Data.tick %s: %v", data["tick"], err)
	}
	// Every second fires more than once a minute: no monitor, so
	// ScheduleStatus is null and nothing can be past due.
	if !ti.Schedule.AdjustForDST || ti.IsPastDue || ti.ScheduleStatus != nil {
		t.Errorf("Data.tick = %s", data["tick"])
	}
	if len(meta) != 1 || meta["sys"] == nil {
		t.Errorf("timer Metadata = %v, want only sys", meta)
	}
}

func TestTimerPastDueAndRunOnStartup(t *testing.T) {
	a := newApp(t, defaultHostJSON, map[string]string{
		"Hourly":  `{"bindings":[{"type":"timerTrigger","direction":"in","name":"tick","schedule":"0 0 * * * *"}]}`,
		"Startup": `{"bindings":[{"type":"timerTrigger","direction":"in","name":"tick","schedule":"0 0 0 1 1 *","runOnStartup":true}]}`,
	})
	cfg := a.config(nil)
	h1 := a.start(t, cfg)
	// runOnStartup fires at once, not past due.
	reqs := a.waitRequests(t, "/Startup", 1, 10*time.Second)
	data, _ := reqs[0].payload(t)
	var ti timerInfo
	json.Unmarshal(data["tick"], &ti)
	if ti.IsPastDue || ti.ScheduleStatus == nil || ti.ScheduleStatus.Last != "0001-01-01T00:00:00+00:00" {
		t.Errorf("runOnStartup Data.tick = %s", data["tick"])
	}
	status := filepath.Join(a.root, ".func-dev", "timers", "Hourly.json")
	eventually(t, 10*time.Second, func() bool { _, err := os.Stat(status); return err == nil }, func() string { return "no timer status file " + status })
	h1.Close()
	if n := len(a.requests(t, "/Hourly")); n != 0 {
		t.Fatalf("hourly timer ran %d times during a short first run", n)
	}
	recorded, _ := os.ReadFile(status)

	// The host was down while the recorded Next passed: the next start runs
	// the timer once, at once, with IsPastDue.
	later := cfg
	later.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	a.start(t, later)
	reqs = a.waitRequests(t, "/Hourly", 1, 10*time.Second)
	data, _ = reqs[0].payload(t)
	ti = timerInfo{}
	json.Unmarshal(data["tick"], &ti)
	var rec struct{ Next string }
	json.Unmarshal(recorded, &rec)
	if !ti.IsPastDue || ti.ScheduleStatus == nil || ti.ScheduleStatus.Next != rec.Next {
		t.Errorf("after a missed run Data.tick = %s; want IsPastDue true and Next %s", data["tick"], rec.Next)
	}
}

// echoFunctions are Service Bus functions disabled by app setting so they
// need no broker: the admin endpoint still invokes them, which exercises the
// process and response rules on their own.
var disabledSB = map[string]string{
	"Echo": `{"bindings":[{"type":"serviceBusTrigger","direction":"in","name":"msg","queueName":"echo","connection":"SB"}]}`,
}

var disabledSettings = map[string]string{"AzureWebJobs.Echo.Disabled": "true"}

func TestAdminInvokeAndStats(t *testing.T) {
	a := newApp(t, defaultHostJSON, disabledSB)
	h := a.start(t, a.config(disabledSettings))
	resp, err := http.Post(h.HTTPURL()+"/admin/functions/Echo", "application/json", strings.NewReader(`{"input":"hello \"world\""}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("admin invoke: %d, want 202", resp.StatusCode)
	}
	reqs := a.waitRequests(t, "/Echo", 1, 10*time.Second)
	data, _ := reqs[0].payload(t)
	// Double encoding, byte for byte.
	if want := `"\"hello \\\"world\\\"\""`; string(data["msg"]) != want {
		t.Errorf("Data.msg = %s, want %s", data["msg"], want)
	}
	for path, want := range map[string]int{"/admin/functions/Nope": 404, "/admin/functions/echo": 202} {
		resp, err := http.Post(h.HTTPURL()+path, "application/json", strings.NewReader(`{"input":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	a.waitRequests(t, "/Echo", 2, 10*time.Second)
	var st devhost.Stats
	eventually(t, 10*time.Second, func() bool {
		resp, err := http.Get(h.HTTPURL() + "/admin/stats")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&st)
		return st.Functions["Echo"].Invocations == 2 && st.Functions["Echo"].InFlight == 0
	}, func() string { return fmt.Sprintf("stats %+v", st) })
}

func TestResponseRules(t *testing.T) {
	a := newApp(t, defaultHostJSON, disabledSB)
	h := a.start(t, a.config(disabledSettings))
	ctx := context.Background()
	if err := h.Invoke(ctx, "Echo", "fine"); err != nil {
		t.Fatalf("a 2xx JSON answer failed: %v", err)
	}
	for input, want := range map[string]string{
		"fail":  "answered 500",
		"text":  `Content-Type "text/plain; charset=utf-8"`,
		"empty": "empty body",
	} {
		err := h.Invoke(ctx, "Echo", input)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("handler %q: error %v, want one saying %q", input, err, want)
		}
	}
	if st := h.Stats().Functions["Echo"]; st.Invocations != 4 || st.Failures != 3 {
		t.Errorf("stats %+v, want 4 invocations, 3 failures", st)
	}
	// Logs[] and the handler's stdout reach the log, attributed to the
	// invocation.
	eventually(t, 5*time.Second, func() bool {
		l := a.logs.String()
		return strings.Contains(l, `msg="ok fine"`) && regexpMatch(`msg="invoked Echo" component=handler-process source=handler function=Echo invocation_id=[0-9a-f-]{36}`, l)
	}, func() string { return "log lacks the Logs[] line or the attributed stdout line:\n" + a.logs.String() })
}

func TestHandlerCrashRestart(t *testing.T) {
	a := newApp(t, defaultHostJSON, disabledSB)
	h := a.start(t, a.config(disabledSettings))
	marker := filepath.Join(t.TempDir(), "crashed")
	err := h.Invoke(context.Background(), "Echo", "crash-once:"+marker)
	if err == nil {
		t.Fatal("the invocation in flight when the handler crashed succeeded")
	}
	eventually(t, 10*time.Second, func() bool { return h.Stats().HandlerRestarts == 1 }, func() string { return fmt.Sprint("restarts ", h.Stats().HandlerRestarts) })
	// The same input now finds the marker and succeeds on the new process.
	if err := h.Invoke(context.Background(), "Echo", "crash-once:"+marker); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	reqs := a.requests(t, "/Echo")
	if len(reqs) != 2 || reqs[0].PID == reqs[1].PID {
		t.Errorf("requests %+v; want two, from different processes", reqs)
	}
}

func TestFunctionTimeoutRestartsHandler(t *testing.T) {
	hostJSON := strings.Replace(defaultHostJSON, `"00:00:30"`, `"00:00:01"`, 1)
	a := newApp(t, hostJSON, disabledSB)
	h := a.start(t, a.config(disabledSettings))
	err := h.Invoke(context.Background(), "Echo", "sleep")
	if err == nil || !strings.Contains(err.Error(), "functionTimeout") {
		t.Fatalf("sleeping handler: %v, want a functionTimeout failure", err)
	}
	eventually(t, 10*time.Second, func() bool { return h.Stats().HandlerRestarts == 1 }, func() string { return "handler not restarted" })
	if err := h.Invoke(context.Background(), "Echo", "after"); err != nil {
		t.Fatalf("after the timeout restart: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	a := newApp(t, defaultHostJSON, map[string]string{
		"Bad": `{"bindings":[{"type":"cosmosDBTrigger","direction":"in","name":"docs"}]}`,
	})
	_, err := devhost.New(a.config(nil))
	if err == nil || !strings.Contains(err.Error(), filepath.Join("handlers", "Bad", "function.json")) || !strings.Contains(err.Error(), "cosmosDBTrigger") {
		t.Errorf("unknown binding: %v", err)
	}
	a = newApp(t, defaultHostJSON, map[string]string{
		"Echo": `{"bindings":[{"type":"serviceBusTrigger","direction":"in","name":"msg","queueName":"echo","connection":"SB"}]}`,
	})
	h, err := devhost.New(a.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err == nil || !strings.Contains(err.Error(), `"SB"`) {
		t.Errorf("missing connection setting: %v", err)
	}
	h.Close()
}

// TestStackLauncher runs the dev host through the local stack launcher, as
// integration tests and `spemigrate dev` do.
func TestStackLauncher(t *testing.T) {
	a := newApp(t, defaultHostJSON, map[string]string{"HttpOrders": httpFunctions})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, stack.Options{Functions: &stack.FunctionsOptions{
		AppRoot: a.root, HandlerPath: handlerBin, Settings: map[string]string{"TESTHANDLER_RECORD": a.record},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get(s.FunctionsURL + "/api/orders/5?status=202")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("GET /api/orders/5 through the launcher: %d, want 202", resp.StatusCode)
	}
	resp, err = http.Get(s.FunctionsURL + "/admin/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st devhost.Stats
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Functions["HttpOrders"].Invocations != 1 {
		t.Errorf("/admin/stats = %+v, want one HttpOrders invocation", st)
	}
}

// TestHandlerThatCannotStart: a handler that keeps exiting is restarted
// until three crashes, then Start fails quoting its stderr.
func TestHandlerThatCannotStart(t *testing.T) {
	a := newApp(t, defaultHostJSON, map[string]string{"HttpOrders": httpFunctions})
	script := filepath.Join(t.TempDir(), "broken.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'config missing: SPEMIGRATE_X' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := a.config(nil)
	cfg.HandlerPath = script
	h, err := devhost.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = h.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "3 times") || !strings.Contains(err.Error(), "config missing: SPEMIGRATE_X") {
		t.Errorf("Start with a crashing handler: %v", err)
	}
}

// TestCrashLimitSetting: Config.CrashLimit replaces the host's three
// crashes; the handler is started exactly that many times before the host
// gives up.
func TestCrashLimitSetting(t *testing.T) {
	a := newApp(t, defaultHostJSON, map[string]string{"HttpOrders": httpFunctions})
	dir := t.TempDir()
	starts := filepath.Join(dir, "starts")
	script := filepath.Join(dir, "broken.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho x >> "+starts+"\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := a.config(nil)
	cfg.HandlerPath = script
	cfg.CrashLimit = 5
	h, err := devhost.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Start(ctx); err == nil || !strings.Contains(err.Error(), "5 times") {
		t.Fatalf("Start with a crashing handler and CrashLimit 5: %v", err)
	}
	b, err := os.ReadFile(starts)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "x"); n != 5 {
		t.Errorf("handler started %d times, want 5", n)
	}
}

// BenchmarkInvoke measures one host→handler round trip: payload encoding,
// the HTTP call, response interpretation.
func BenchmarkInvoke(b *testing.B) {
	root := b.TempDir()
	os.WriteFile(filepath.Join(root, "host.json"), []byte(defaultHostJSON), 0o644)
	os.MkdirAll(filepath.Join(root, "handlers", "Echo"), 0o755)
	os.WriteFile(filepath.Join(root, "handlers", "Echo", "function.json"), []byte(disabledSB["Echo"]), 0o644)
	h, err := devhost.New(devhost.Config{
		AppRoot: root, FunctionsDir: "handlers", HandlerPath: handlerBin, HTTPAddr: "127.0.0.1:0",
		Settings: map[string]string{"AzureWebJobs.Echo.Disabled": "true"},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	input := `{"migrationId":"m-1","batchId":"b-0001","step":"submit"}`
	for b.Loop() {
		if err := h.Invoke(context.Background(), "Echo", input); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHandlerExitCodes: exit 200 asks for a restart; exit 0 is a clean
// stop that the host does not restart (spec §2.3).
func TestHandlerExitCodes(t *testing.T) {
	a := newApp(t, defaultHostJSON, disabledSB)
	h := a.start(t, a.config(disabledSettings))
	ctx := context.Background()
	if err := h.Invoke(ctx, "Echo", "exit:200"); err == nil {
		t.Fatal("invocation whose handler exited succeeded")
	}
	// The exit is noticed asynchronously (as in the real host): an invocation
	// sent before the old process is reaped can still reach its dying socket.
	var lastErr error
	eventually(t, 10*time.Second, func() bool {
		lastErr = h.Invoke(ctx, "Echo", "after 200")
		return lastErr == nil
	}, func() string { return fmt.Sprintf("after exit 200 the handler should be restarted: %v", lastErr) })
	if err := h.Invoke(ctx, "Echo", "exit:0"); err == nil {
		t.Fatal("invocation whose handler exited succeeded")
	}
	eventually(t, 10*time.Second, func() bool {
		err := h.Invoke(ctx, "Echo", "after 0")
		return err != nil && strings.Contains(err.Error(), "exited with code 0")
	}, func() string { return "after exit 0 the handler was restarted" })
	if n := h.Stats().HandlerRestarts; n != 1 {
		t.Errorf("%d restarts, want 1 (exit 200 only)", n)
	}
}
