package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/shared/pipeline"
)

// sbPayload is the host's Service Bus invocation of spec §3.3, verbatim
// (double-encoded body and scalars), with the binding renamed to "msg".
const sbPayload = `{
  "Data": {
    "msg": "\"{\\\"orderId\\\":\\\"A-17\\\",\\\"qty\\\":2}\""
  },
  "Metadata": {
    "MessageReceiver": {},
    "MessageSession": {},
    "MessageActions": {},
    "SessionActions": {},
    "ReceiveActions": {},
    "Client": { "FullyQualifiedNamespace": "mybus.servicebus.windows.net", "IsClosed": false, "TransportType": 0, "Identifier": "mybus-1f2e" },
    "DeliveryCount": "1",
    "LockToken": "\"f1c9a6de-2a7b-4d59-9c1e-5b8f7c2d9e01\"",
    "ExpiresAtUtc": "2025-01-15T10:14:03",
    "ExpiresAt": "2025-01-15T10:14:03+00:00",
    "EnqueuedTimeUtc": "2025-01-01T10:14:03",
    "EnqueuedTime": "2025-01-01T10:14:03+00:00",
    "MessageId": "\"7d3c2b1a9f8e4d6c\"",
    "ContentType": "\"application/json\"",
    "SequenceNumber": "118",
    "ApplicationProperties": { "tenant": "contoso" },
    "UserProperties": { "tenant": "contoso" },
    "orderId": "\"A-17\"",
    "qty": "\"2\"",
    "sys": { "MethodName": "provision", "UtcNow": "2025-01-01T10:14:03.5123456Z", "RandGuid": "0a8c1f5e-93b4-4d2e-8f67-2b1d3c4e5f60" }
  }
}`

// timerPayload is the host's timer invocation of spec §3.4, verbatim.
const timerPayload = `{
  "Data": {
    "tick": {
      "Schedule": { "AdjustForDST": true },
      "ScheduleStatus": {
        "Last": "2025-01-01T09:55:00.0041122+00:00",
        "Next": "2025-01-01T10:00:00+00:00",
        "LastUpdated": "2025-01-01T09:55:00.0041122+00:00"
      },
      "IsPastDue": false
    }
  },
  "Metadata": {
    "sys": { "MethodName": "drain", "UtcNow": "2025-01-01T10:00:00.0123456Z", "RandGuid": "4b7d2c1e-0f9a-4c3b-8e2d-6a5f4e3d2c1b" }
  }
}`

// httpPayload is the host's HTTP payload-mode invocation of spec §3.5.
const httpPayload = `{
  "Data": {
    "req": {
      "Url": "http://localhost:7071/api/orders/A-17?verbose=1",
      "Method": "POST",
      "Query": { "verbose": "1" },
      "Headers": { "Content-Type": ["application/json"], "Content-Length": ["9"] },
      "Params": { "id": "A-17" },
      "Identities": [],
      "Body": "{\"qty\":2}"
    }
  },
  "Metadata": {
    "verbose": "\"1\"",
    "id": "\"A-17\"",
    "qty": "\"2\"",
    "Query": { "verbose": "1" },
    "Headers": { "Content-Type": "application/json", "Content-Length": "9" },
    "sys": { "MethodName": "HttpIngest", "UtcNow": "2025-01-01T10:00:00Z", "RandGuid": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b" }
  }
}`

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// post sends body to the mux the way the host does and checks the parts of
// the response the host insists on.
func post(t *testing.T, h http.Handler, path, body string) (int, map[string]json.RawMessage) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", "3b0e6f3e-6a52-4d3c-9d0e-1c2a9d7a5f10")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type = %q, want application/json (the host refuses anything else)", path, ct)
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: response body %q is not a JSON object: %v", path, rec.Body.String(), err)
	}
	return rec.Code, out
}

func TestServiceBusInvocationDoubleEncoded(t *testing.T) {
	var gotBody string
	var gotMeta MessageMeta
	mux := NewMux(discard(), map[string]Function{
		"provision": ServiceBus(discard(), "msg", Text, time.Minute, func(ctx context.Context, body []byte, meta MessageMeta) error {
			gotBody, gotMeta = string(body), meta
			return nil
		}),
	})
	code, out := post(t, mux, "/provision", sbPayload)
	if code != http.StatusOK {
		t.Fatalf("status = %d", code)
	}
	if gotBody != `{"orderId":"A-17","qty":2}` {
		t.Errorf("body = %q", gotBody)
	}
	want := MessageMeta{MessageID: "7d3c2b1a9f8e4d6c", DeliveryCount: 1, EnqueuedTime: time.Date(2025, 1, 1, 10, 14, 3, 0, time.UTC)}
	if gotMeta != want {
		t.Errorf("meta = %+v, want %+v", gotMeta, want)
	}
	if string(out["Outputs"]) != "{}" {
		t.Errorf("Outputs = %s, want {} (never null)", out["Outputs"])
	}
}

func TestMessageBodyEncodings(t *testing.T) {
	const body = `{"v":1,"migrationId":"m1"}`
	quoted, _ := json.Marshal(body)
	double, _ := json.Marshal(string(quoted))
	const b64 = `"eyJ2IjoxLCJtaWdyYXRpb25JZCI6Im0xIn0="`
	tests := []struct {
		name     string
		dataType DataType
		raw      string
	}{
		{"double-encoded (string, the host's default)", Text, string(double)},
		{"single-encoded (string, the docs)", Text, string(quoted)},
		{"object (string, parsed by the host)", Text, body},
		{"base64 (binary)", Binary, b64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MessageBody(json.RawMessage(tt.raw), tt.dataType)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != body {
				t.Errorf("body = %q", got)
			}
		})
	}
	// Each dataType reads its own encoding only: nothing is guessed.
	for _, bad := range []struct {
		dt  DataType
		raw string
	}{
		{Text, `null`}, {Text, `"hello"`}, {Text, `"\"hello\""`}, {Text, `[1]`}, {Text, b64},
		{Binary, `"W10="`}, {Binary, string(double)}, {Binary, body}, {Binary, `"not base64!"`}, {"", body},
	} {
		if _, err := MessageBody(json.RawMessage(bad.raw), bad.dt); err == nil {
			t.Errorf("MessageBody(%s, %q) accepted it", bad.raw, bad.dt)
		}
	}
}

func TestHostScalars(t *testing.T) {
	for raw, want := range map[string]string{`"\"A-17\""`: "A-17", `"A-17"`: "A-17", `"1"`: "1", `1`: "1", `true`: "true", `null`: "", `"\"\""`: ""} {
		got, err := HostString(json.RawMessage(raw))
		if err != nil || got != want {
			t.Errorf("HostString(%s) = %q, %v; want %q", raw, got, err, want)
		}
	}
	if _, err := HostString(json.RawMessage(`{"a":1}`)); err == nil {
		t.Error("HostString accepted an object")
	}
	if n, err := HostInt(json.RawMessage(`"118"`)); n != 118 || err != nil {
		t.Errorf("HostInt = %d, %v", n, err)
	}
	if _, err := HostInt(json.RawMessage(`"many"`)); err == nil {
		t.Error("HostInt accepted a word")
	}
	for _, raw := range []string{`"2025-01-15T10:14:03"`, `"2025-01-15T10:14:03+00:00"`, `"2025-01-15T11:14:03+01:00"`} {
		got, err := HostTime(json.RawMessage(raw))
		if err != nil || !got.Equal(time.Date(2025, 1, 15, 10, 14, 3, 0, time.UTC)) {
			t.Errorf("HostTime(%s) = %v, %v", raw, got, err)
		}
	}
}

func TestServiceBusFailureSemantics(t *testing.T) {
	transient := errors.New("table storage unavailable")
	var calls int
	var mu sync.Mutex
	fn := func(err error) MessageHandler {
		return func(context.Context, []byte, MessageMeta) error {
			mu.Lock()
			calls++
			mu.Unlock()
			return err
		}
	}
	mux := NewMux(discard(), map[string]Function{
		"transient": ServiceBus(discard(), "msg", Text, time.Minute, fn(transient)),
		"permanent": ServiceBus(discard(), "msg", Text, time.Minute, fn(pipeline.MarkPermanent(errors.New("unknown migration m1")))),
		"ok":        ServiceBus(discard(), "msg", Text, time.Minute, fn(nil)),
		"slow": ServiceBus(discard(), "msg", Text, 50*time.Millisecond, func(ctx context.Context, _ []byte, _ MessageMeta) error {
			<-ctx.Done() // a step that would hang until the host killed it
			return ctx.Err()
		}),
		"panics": ServiceBus(discard(), "msg", Text, time.Minute, func(context.Context, []byte, MessageMeta) error {
			panic("boom")
		}),
	})
	if code, _ := post(t, mux, "/transient", sbPayload); code < 300 {
		t.Errorf("transient failure: status %d, want non-2xx so Service Bus redelivers", code)
	}
	code, out := post(t, mux, "/permanent", sbPayload)
	if code != http.StatusOK {
		t.Errorf("permanent failure: status %d, want 2xx so the message is completed", code)
	}
	if !strings.Contains(string(out["Logs"]), "unknown migration m1") {
		t.Errorf("permanent failure not logged to the host: %s", out["Logs"])
	}
	// The deadline wrapper ends a hanging step below functionTimeout, and
	// the message is redelivered.
	if code, _ := post(t, mux, "/slow", sbPayload); code < 300 {
		t.Errorf("step past its deadline: status %d, want non-2xx so Service Bus redelivers", code)
	}
	if code, _ := post(t, mux, "/panics", sbPayload); code != http.StatusInternalServerError {
		t.Errorf("panic: status %d, want 500", code)
	}
	// A body that is not a JSON object is dropped (completed) without
	// calling the step: redelivery cannot fix it.
	before := calls
	code, _ = post(t, mux, "/ok", strings.Replace(sbPayload, `"\"{\\\"orderId\\\":\\\"A-17\\\",\\\"qty\\\":2}\""`, `"\"not json\""`, 1))
	if code != http.StatusOK || calls != before {
		t.Errorf("undecodable body: status %d, calls %d→%d; want 200 and no call", code, before, calls)
	}
}

func TestTimerInvocation(t *testing.T) {
	var got TimerInfo
	var gotNow time.Time
	mux := NewMux(discard(), map[string]Function{
		"drain": Timer("tick", func(ctx context.Context, info TimerInfo, now time.Time) error {
			got, gotNow = info, now
			return nil
		}),
		"failing": Timer("tick", func(context.Context, TimerInfo, time.Time) error { return errors.New("nope") }),
	})
	if code, _ := post(t, mux, "/drain", timerPayload); code != http.StatusOK {
		t.Fatalf("status = %d", code)
	}
	if got.ScheduleStatus == nil || !got.ScheduleStatus.Next.Equal(time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)) || got.IsPastDue || !got.Schedule.AdjustForDST {
		t.Errorf("timer info = %+v", got)
	}
	if !gotNow.Equal(time.Date(2025, 1, 1, 10, 0, 0, 12345600, time.UTC)) {
		t.Errorf("now = %v, want sys.UtcNow", gotNow)
	}
	if code, _ := post(t, mux, "/failing", timerPayload); code < 300 {
		t.Errorf("failing timer: status %d, want non-2xx", code)
	}
}

func TestHTTPInvocation(t *testing.T) {
	api := http.NewServeMux()
	api.HandleFunc("POST /api/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "/api/orders/"+r.PathValue("id"))
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]string{"id": r.PathValue("id"), "body": string(b), "verbose": r.URL.Query().Get("verbose"), "ct": r.Header.Get("Content-Type")})
	})
	mux := NewMux(discard(), map[string]Function{"api-orders": HTTP("req", "res", api)})
	code, out := post(t, mux, "/api-orders", httpPayload)
	if code != http.StatusOK {
		t.Fatalf("status = %d", code)
	}
	var outputs struct {
		Res HTTPOutput `json:"res"`
	}
	if err := json.Unmarshal(out["Outputs"], &outputs); err != nil {
		t.Fatal(err)
	}
	res := outputs.Res
	if res.StatusCode != http.StatusAccepted || res.Headers["Location"] != "/api/orders/A-17" || res.Headers["Content-Type"] != "application/json" {
		t.Errorf("http output = %+v", res)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(res.Body), &body); err != nil {
		t.Fatalf("body %q: %v", res.Body, err)
	}
	if body["id"] != "A-17" || body["body"] != `{"qty":2}` || body["verbose"] != "1" || body["ct"] != "application/json" {
		t.Errorf("request as the API saw it = %v", body)
	}
}

func TestMuxHealthAndUnknown(t *testing.T) {
	mux := NewMux(discard(), map[string]Function{})
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("GET / = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if code, _ := post(t, mux, "/nosuch", sbPayload); code != http.StatusNotFound {
		t.Errorf("unknown function: %d", code)
	}
	if code, _ := post(t, NewMux(discard(), map[string]Function{"f": Timer("tick", nil)}), "/f", "not json"); code != http.StatusBadRequest {
		t.Errorf("garbage invocation: %d", code)
	}
}

func TestLoadConfig(t *testing.T) {
	key := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	c, err := LoadConfig(env(map[string]string{
		"AzureWebJobsStorage__accountName":              "acct",
		"ServiceBusConnection__fullyQualifiedNamespace": "bus.servicebus.windows.net",
		"ServiceBusConnection__clientId":                "00000000-0000-0000-0000-000000000001",
		"SPEMIGRATE_STATE_KEY":                          key,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Endpoint != "https://acct.table.core.windows.net" || c.ServiceBus.Endpoint != "bus.servicebus.windows.net" ||
		c.ServiceBus.ClientID == "" || c.Graph.BaseURL != "https://graph.microsoft.com" || c.Graph.APIVersion != "v1.0" {
		t.Errorf("identity config = %+v", c)
	}

	c, err = LoadConfig(env(map[string]string{
		"AzureWebJobsStorage":  "UseDevelopmentStorage=true",
		"SPEMIGRATE_STORAGE":   "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=k",
		"ServiceBusConnection": "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=x;SharedAccessKey=y",
		"SPEMIGRATE_GRAPH_URL": "https://127.0.0.1:8443", "SPEMIGRATE_GRAPH_TOKEN": "t",
		"SPEMIGRATE_STATE_KEY": key,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Setting != "SPEMIGRATE_STORAGE" || c.ServiceBus.ConnectionString == "" || c.Graph.Credential != "static" {
		t.Errorf("connection-string config = %+v", c)
	}

	_, err = LoadConfig(env(map[string]string{"SPEMIGRATE_STATE_KEY": "c2hvcnQ=", "SPEMIGRATE_GRAPH_URL": "http://graph"}))
	for _, want := range []string{"AzureWebJobsStorage", "ServiceBusConnection", "SPEMIGRATE_STATE_KEY: must be base64 of exactly 32 bytes", "SPEMIGRATE_GRAPH_URL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// TestLoadConfigImportLogs: the import-log and invalid-package settings are
// read, and a bad value names the setting and what it takes.
func TestLoadConfigImportLogs(t *testing.T) {
	base := map[string]string{
		"AzureWebJobsStorage__accountName":              "acct",
		"ServiceBusConnection__fullyQualifiedNamespace": "bus.servicebus.windows.net",
		"SPEMIGRATE_STATE_KEY":                          "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	}
	load := func(extra map[string]string) (Config, error) {
		return LoadConfig(func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		})
	}
	c, err := load(map[string]string{"SPEMIGRATE_IMPORT_LOGS": "always", "SPEMIGRATE_IMPORT_LOG_WAIT": "90s",
		"SPEMIGRATE_INVALID_PACKAGE_ERRORS": " schema ; ;Bad package "})
	if err != nil {
		t.Fatal(err)
	}
	if c.ImportLogs != "always" || c.ImportLogWait != 90*time.Second || strings.Join(c.InvalidPackageErrors, "|") != "schema|Bad package" {
		t.Errorf("config %q %v %q", c.ImportLogs, c.ImportLogWait, c.InvalidPackageErrors)
	}
	if c, err := load(map[string]string{"SPEMIGRATE_INVALID_PACKAGE_ERRORS": "none"}); err != nil || c.InvalidPackageErrors == nil || len(c.InvalidPackageErrors) != 0 {
		t.Errorf("none: %q %v, want an empty, non-nil list (retry every fatal error)", c.InvalidPackageErrors, err)
	}
	if c, err := load(nil); err != nil || c.InvalidPackageErrors != nil || c.ImportLogs != "" {
		t.Errorf("unset: %q %q %v, want the engine's defaults", c.ImportLogs, c.InvalidPackageErrors, err)
	}
	_, err = load(map[string]string{"SPEMIGRATE_IMPORT_LOGS": "sometimes", "SPEMIGRATE_IMPORT_LOG_WAIT": "soon", "SPEMIGRATE_INVALID_PACKAGE_ERRORS": ";"})
	for _, want := range []string{"SPEMIGRATE_IMPORT_LOGS: must be auto", "SPEMIGRATE_IMPORT_LOG_WAIT: must be a duration", `SPEMIGRATE_INVALID_PACKAGE_ERRORS: give ";"-separated`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
