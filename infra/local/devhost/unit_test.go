package devhost

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCronNext(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		expr, from, want string
	}{
		{"0 */5 * * * *", "2025-01-01T09:57:13Z", "2025-01-01T10:00:00Z"},
		{"*/1 * * * * *", "2025-01-01T09:57:13Z", "2025-01-01T09:57:14Z"},
		{"0 0 2 * * *", "2025-01-01T02:00:00Z", "2025-01-02T02:00:00Z"},
		{"*/15 * * * *", "2025-01-01T09:57:13Z", "2025-01-01T10:00:00Z"}, // five fields: second 0
		{"0 30 9 * * mon-fri", "2025-01-03T10:00:00Z", "2025-01-06T09:30:00Z"},
		{"0 0 0 1 Jan *", "2025-03-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		// NCrontab ANDs day-of-month and day-of-week: the 13th that is a
		// Friday, not every 13th and every Friday (Vixie cron would give
		// 2025-01-03, a Friday).
		{"0 0 0 13 * 5", "2025-01-01T00:00:00Z", "2025-06-13T00:00:00Z"},
		{"0 0 12 1-7/3 * *", "2025-01-02T00:00:00Z", "2025-01-04T12:00:00Z"},
	}
	for _, c := range cases {
		cs, err := parseCron(c.expr)
		if err != nil {
			t.Fatalf("parseCron(%q): %v", c.expr, err)
		}
		if got := cs.next(at(c.from)); !got.Equal(at(c.want)) {
			t.Errorf("%q next after %s = %s, want %s", c.expr, c.from, got.Format(time.RFC3339), c.want)
		}
	}
	if cs, _ := parseCron("0 0 0 31 2 *"); !cs.next(at("2025-01-01T00:00:00Z")).IsZero() {
		t.Error("31 February should never occur")
	}
	for _, bad := range []string{"* * * *", "61 * * * * *", "0 0 25 * * *", "0 0 0 * * 7", "0 0 0 * * 5-1", "00:05:00", "0 */0 * * * *"} {
		if _, err := parseCron(bad); err == nil {
			t.Errorf("parseCron(%q) succeeded, want an error", bad)
		}
	}
}

func TestUseMonitorDefault(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	every, _ := parseCron("*/10 * * * * *")
	minute, _ := parseCron("0 * * * * *")
	if !every.firesMoreThanOncePerMinute(now) || minute.firesMoreThanOncePerMinute(now) {
		t.Error("monitor default: every-10-seconds should disable it, every-minute should not")
	}
}

func TestParseTimeSpan(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"00:10:00": 10 * time.Minute, "1.02:00:00": 26 * time.Hour, "00:00:00.80": 800 * time.Millisecond,
		"-00:00:00.0010000": -time.Millisecond,
	} {
		got, err := parseTimeSpan(in)
		if err != nil || got != want {
			t.Errorf("parseTimeSpan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"10m", "00:61:00", "1:2"} {
		if _, err := parseTimeSpan(bad); err == nil {
			t.Errorf("parseTimeSpan(%q) succeeded", bad)
		}
	}
}

// TestPayloadEncoding pins the host's value encoding (spec §3.2): strings
// double-encoded, numbers as strings, DateTime without offset, objects as
// objects, nulls and *Trigger keys dropped, sys present, JSON body
// properties promoted over same-named metadata.
func TestPayloadEncoding(t *testing.T) {
	fn := &Function{Name: "ProcessOrder", Trigger: Binding{Type: "serviceBusTrigger", Name: "order"}}
	body := `{"orderId":"A-17","qty":2,"rush":true,"nested":{"a":1},"list":[1],"MessageId":"from-body"}`
	enq := time.Date(2025, 1, 1, 10, 14, 3, 512000000, time.UTC)
	inv := &invocation{
		fn:            fn,
		data:          map[string]any{"order": dotnetString(body)},
		metadata:      map[string]any{"DeliveryCount": dotnetScalar("1"), "MessageId": dotnetString("7d3c"), "EnqueuedTimeUtc": dotnetDateTime(enq), "EnqueuedTime": dotnetDateTimeOffset(enq), "ReplyTo": nil, "QueueTrigger": dotnetString("x"), "ApplicationProperties": dotnetObject(`{"tenant":"contoso"}`)},
		triggerString: &body,
	}
	b, err := buildPayload(inv, enq)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Data     map[string]json.RawMessage
		Metadata map[string]json.RawMessage
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	wantData := `"{\"orderId\":\"A-17\",\"qty\":2,\"rush\":true,\"nested\":{\"a\":1},\"list\":[1],\"MessageId\":\"from-body\"}"`
	var inner string
	_ = json.Unmarshal(got.Data["order"], &inner)
	if inner != wantData {
		t.Errorf("Data.order inner = %s\nwant %s", inner, wantData)
	}
	want := map[string]string{
		"DeliveryCount":         `"1"`,
		"EnqueuedTimeUtc":       `"2025-01-01T10:14:03"`,
		"EnqueuedTime":          `"2025-01-01T10:14:03+00:00"`,
		"ApplicationProperties": `{"tenant":"contoso"}`,
		"orderId":               `"\"A-17\""`,
		"qty":                   `"\"2\""`,
		"rush":                  `"\"True\""`,
		"nested":                `{"a":1}`,
		"MessageId":             `"\"from-body\""`,
	}
	for k, v := range want {
		if string(got.Metadata[k]) != v {
			t.Errorf("Metadata.%s = %s, want %s", k, got.Metadata[k], v)
		}
	}
	for _, absent := range []string{"ReplyTo", "QueueTrigger", "list"} {
		if _, ok := got.Metadata[absent]; ok {
			t.Errorf("Metadata.%s present, want it dropped", absent)
		}
	}
	var sys map[string]string
	if err := json.Unmarshal(got.Metadata["sys"], &sys); err != nil || sys["MethodName"] != "ProcessOrder" || sys["UtcNow"] != "2025-01-01T10:14:03.5120000Z" || len(sys["RandGuid"]) != 36 {
		t.Errorf("Metadata.sys = %s", got.Metadata["sys"])
	}
	raw, _ := encodeValue(dotnetBytes("hi"))
	if string(raw) != `"aGk="` {
		t.Errorf("bytes encode as %s, want base64", raw)
	}
}

func TestMessageBodies(t *testing.T) {
	cases := []struct {
		in     string
		binary bool
		want   []string
		warn   bool
	}{
		{`{"a":1,"b":[2]}`, false, []string{"{\n  \"a\": 1,\n  \"b\": [\n    2\n  ]\n}"}, false},
		{`"{\"a\":1}"`, false, []string{"{\n  \"a\": 1\n}"}, false},
		{`"test"`, false, []string{"System.Byte[]"}, true}, // decodes as base64
		{`"test"`, true, []string{"test"}, false},
		{`"hello world"`, false, []string{"hello world"}, false},
		{`["x y",{"a":1}]`, false, []string{"x y", "{\n  \"a\": 1\n}"}, false},
		{`"[\"one\",\"two\"]"`, false, []string{"one", "two"}, false},
		{`42`, false, []string{"42"}, false},
	}
	for _, c := range cases {
		got, warns := messageBodies(json.RawMessage(c.in), c.binary)
		if strings.Join(got, "|") != strings.Join(c.want, "|") || (len(warns) > 0) != c.warn {
			t.Errorf("messageBodies(%s, binary=%v) = %q (warnings %v), want %q", c.in, c.binary, got, warns, c.want)
		}
	}
}

func TestRoutes(t *testing.T) {
	cases := []struct {
		tmpl, path string
		ok         bool
		params     map[string]string
	}{
		{"orders/{id}", "orders/A-17", true, map[string]string{"id": "A-17"}},
		{"orders/{id:int}", "orders/A-17", false, nil},
		{"orders/{id:int}", "orders/17", true, map[string]string{"id": "17"}},
		{"orders/{id?}", "orders", true, map[string]string{}},
		{"files/{*rest}", "files/a/b/c.txt", true, map[string]string{"rest": "a/b/c.txt"}},
		{"Orders", "orders", true, map[string]string{}},
		{"orders/{id}", "orders/1/x", false, nil},
	}
	for _, c := range cases {
		rt, err := parseRoute(c.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		params, ok := rt.match(strings.Split(c.path, "/"))
		if ok != c.ok || (ok && len(params) != len(c.params)) {
			t.Errorf("%q match %q = %v %v, want %v %v", c.tmpl, c.path, params, ok, c.ok, c.params)
		}
		for k, v := range c.params {
			if params[k] != v {
				t.Errorf("%q match %q: %s = %q, want %q", c.tmpl, c.path, k, params[k], v)
			}
		}
	}
	if _, err := parseRoute("x/{a}.{b}"); err == nil {
		t.Error("complex segment accepted")
	}
}

func writeApp(t *testing.T, fnJSON string) string {
	t.Helper()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "host.json"), []byte(`{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"handler"}}}`), 0o644)
	os.MkdirAll(filepath.Join(root, "Fn"), 0o755)
	os.WriteFile(filepath.Join(root, "Fn", "function.json"), []byte(fnJSON), 0o644)
	return root
}

// TestConfigErrors: a bad function.json is a start-up error naming the file
// and the problem.
func TestConfigErrors(t *testing.T) {
	cases := map[string]string{
		`{"bindings":[{"type":"blobTrigger","direction":"in","name":"b","path":"x/{n}"}]}`:        `unknown binding type "blobTrigger"`,
		`{"bindings":[{"type":"timerTrigger","direction":"in","name":"t","schedule":"0 0 * *"}]}`: `schedule "0 0 * *"`,
		`{"bindings":[`: `malformed JSON`,
		`{"bindings":[{"type":"serviceBusTrigger","direction":"in","name":"m","queueName":"%MISSING%"}]}`:                `app setting "MISSING"`,
		`{"bindings":[{"type":"serviceBus","direction":"out","name":"o","queueName":"q"}]}`:                              `0 trigger bindings`,
		`{"bindings":[{"type":"httpTrigger","direction":"in","name":"r"},{"type":"http","direction":"out","name":"R"}]}`: `used twice`,
		`{"bindings":[{"type":"timerTrigger","direction":"out","name":"t","schedule":"* * * * * *"}]}`:                   `"direction": "in"`,
	}
	for js, want := range cases {
		root := writeApp(t, js)
		_, err := New(Config{AppRoot: root, HandlerPath: "/bin/true"})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), filepath.Join("Fn", "function.json")) {
			t.Errorf("function.json %s: error %v, want it to name the file and say %q", js, err, want)
		}
	}
}

func TestSettingsAndDisabled(t *testing.T) {
	root := writeApp(t, `{"bindings":[{"type":"serviceBusTrigger","direction":"in","name":"m","queueName":"%Q%-in","connection":"SB"}]}`)
	os.WriteFile(filepath.Join(root, "local.settings.json"), []byte(`{"Values":{"Q":"orders","AzureWebJobs.Fn.Disabled":"true"}}`), 0o644)
	h, err := New(Config{AppRoot: root, HandlerPath: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	fn := h.Functions()[0]
	if fn.Trigger.QueueName != "orders-in" || !fn.Disabled {
		t.Errorf("queueName %q disabled %v; want orders-in, true", fn.Trigger.QueueName, fn.Disabled)
	}
	// Config.Settings override local.settings.json.
	h, err = New(Config{AppRoot: root, HandlerPath: "/bin/true", Settings: map[string]string{"Q": "jobs", "AzureWebJobs.Fn.Disabled": "false"}})
	if err != nil {
		t.Fatal(err)
	}
	if fn := h.Functions()[0]; fn.Trigger.QueueName != "jobs-in" || fn.Disabled {
		t.Errorf("with Config.Settings: queueName %q disabled %v; want jobs-in, false", fn.Trigger.QueueName, fn.Disabled)
	}
}

func TestHostJSON(t *testing.T) {
	root := writeApp(t, `{"bindings":[{"type":"timerTrigger","direction":"in","name":"t","schedule":"0 0 * * * *"}]}`)
	os.WriteFile(filepath.Join(root, "host.json"), []byte(`{"version":"2.0","functionTimeout":"00:00:05",
		"customHandler":{"description":{"defaultExecutablePath":"handler"},"enableForwardingHttpRequest":true},
		"extensions":{"http":{"routePrefix":""},"serviceBus":{"maxConcurrentCalls":3,"maxAutoLockRenewalDuration":"00:01:00","messageHandlerOptions":{"maxConcurrentCalls":9}}}}`), 0o644)
	hc, err := loadHostJSON(filepath.Join(root, "host.json"))
	if err != nil {
		t.Fatal(err)
	}
	if hc.FunctionTimeout != 5*time.Second || !hc.EnableForwarding || hc.RoutePrefix != "" || hc.MaxConcurrentCalls != 3 || hc.MaxLockRenewal != time.Minute {
		t.Errorf("host.json parsed as %+v", hc)
	}
	os.WriteFile(filepath.Join(root, "host.json"), []byte(`{"version":"2.0"}`), 0o644)
	if _, err := loadHostJSON(filepath.Join(root, "host.json")); err == nil || !strings.Contains(err.Error(), "customHandler.description") {
		t.Errorf("host.json without customHandler: %v", err)
	}
}
