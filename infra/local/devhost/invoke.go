package devhost

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// HostVersion is the Functions host version the dev host claims in the
// X-Azure-Functions-HostVersion and User-Agent headers.
const HostVersion = "4.1037.0.0"

// Values in Data and Metadata are encoded the way the host encodes .NET
// values (spec §3.2). These types carry the .NET type across.
type (
	// dotnetString is a .NET string: JSON-serialized, then sent as a JSON
	// string (double encoding).
	dotnetString string
	// dotnetScalar is a number or bool: its JSON text sent as a string.
	dotnetScalar string
	// dotnetDateTime is a DateTime: whole seconds, no offset.
	dotnetDateTime time.Time
	// dotnetDateTimeOffset is a DateTimeOffset: whole seconds with offset.
	dotnetDateTimeOffset time.Time
	// dotnetBytes is a byte[]: base64.
	dotnetBytes []byte
	// dotnetObject is an object: sent as a real JSON object.
	dotnetObject json.RawMessage
)

func encodeValue(v any) (json.RawMessage, error) {
	switch x := v.(type) {
	case dotnetString:
		inner, _ := json.Marshal(string(x))
		return json.Marshal(string(inner))
	case dotnetScalar:
		return json.Marshal(string(x))
	case dotnetDateTime:
		return json.Marshal(time.Time(x).UTC().Format("2006-01-02T15:04:05"))
	case dotnetDateTimeOffset:
		return json.Marshal(time.Time(x).Format("2006-01-02T15:04:05-07:00"))
	case dotnetBytes:
		return json.Marshal(base64.StdEncoding.EncodeToString(x))
	case dotnetObject:
		return json.RawMessage(x), nil
	default:
		return nil, fmt.Errorf("devhost: cannot encode %T", v)
	}
}

// dotnetRoundTrip formats t like .NET's "o" format for UTC ("...0000000Z").
func dotnetRoundTrip(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.0000000Z")
}

// invocation is one call into the handler.
type invocation struct {
	fn       *Function
	id       string
	data     map[string]any // binding name -> value
	metadata map[string]any // trigger metadata (nil values are omitted)
	// triggerString is the trigger value when it is a string, for the
	// host's JSON-body promotion into Metadata.
	triggerString *string
}

// result is a handler's parsed answer.
type result struct {
	Outputs     map[string]json.RawMessage
	Logs        []string
	ReturnValue json.RawMessage
}

// buildPayload renders {"Data":…,"Metadata":…} as the host does.
func buildPayload(inv *invocation, now time.Time) ([]byte, error) {
	data := map[string]json.RawMessage{}
	for k, v := range inv.data {
		raw, err := encodeValue(v)
		if err != nil {
			return nil, err
		}
		data[k] = raw
	}
	meta := map[string]json.RawMessage{}
	for k, v := range inv.metadata {
		if v == nil || strings.HasSuffix(strings.ToLower(k), "trigger") {
			continue
		}
		raw, err := encodeValue(v)
		if err != nil {
			return nil, err
		}
		meta[k] = raw
	}
	if inv.triggerString != nil {
		promoteJSONProperties(*inv.triggerString, meta)
	}
	sys, _ := json.Marshal(map[string]string{
		"MethodName": inv.fn.Name,
		"UtcNow":     dotnetRoundTrip(now),
		"RandGuid":   uuid.NewString(),
	})
	meta["sys"] = sys
	return json.Marshal(map[string]any{"Data": data, "Metadata": meta})
}

// promoteJSONProperties copies the top-level properties of a trigger string
// holding a JSON object into Metadata, overwriting same-named keys
// (case-insensitively): nested objects as objects, arrays skipped, other
// values as their text, double-encoded like any string.
func promoteJSONProperties(s string, meta map[string]json.RawMessage) {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "{") {
		return
	}
	dec := json.NewDecoder(strings.NewReader(t))
	dec.UseNumber()
	var obj map[string]any
	if dec.Decode(&obj) != nil {
		return
	}
	for k, v := range obj {
		var raw json.RawMessage
		switch x := v.(type) {
		case nil, []any:
			continue
		case map[string]any:
			raw, _ = json.Marshal(x)
		case string:
			raw, _ = encodeValue(dotnetString(x))
		case bool:
			// Newtonsoft's JValue.ToString() capitalises booleans.
			raw, _ = encodeValue(dotnetString(map[bool]string{true: "True", false: "False"}[x]))
		case json.Number:
			raw, _ = encodeValue(dotnetString(x.String()))
		}
		for existing := range meta {
			if strings.EqualFold(existing, k) {
				delete(meta, existing)
			}
		}
		meta[k] = raw
	}
}

// invocationError is a failed invocation, with the reason the host would log.
type invocationError struct {
	Function string
	ID       string
	Reason   string
	Status   int // handler status, 0 when none
}

func (e *invocationError) Error() string {
	return fmt.Sprintf("function %s (invocation %s) failed: %s", e.Function, e.ID, e.Reason)
}

// interpretResponse applies the host's rules (spec §3.6) to the handler's
// HTTP response.
func interpretResponse(inv *invocation, resp *http.Response) (*result, error) {
	fail := func(status int, format string, a ...any) error {
		return &invocationError{Function: inv.fn.Name, ID: inv.id, Status: status, Reason: fmt.Sprintf(format, a...)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fail(resp.StatusCode, "reading the handler's response: %v", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fail(resp.StatusCode, "handler answered %d; the host treats any non-2xx as a failure and ignores its Outputs and Logs", resp.StatusCode)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fail(resp.StatusCode, "handler answered %d with an empty body; the real host would wait until functionTimeout (always send at least {})", resp.StatusCode)
	}
	ct := resp.Header.Get("Content-Type")
	if !isJSONMediaType(ct) {
		return nil, fail(resp.StatusCode, "handler answered with Content-Type %q; the host only reads a JSON media type (set Content-Type: application/json)", ct)
	}
	var res result
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fail(resp.StatusCode, "handler's response is not the {Outputs,Logs,ReturnValue} object: %v", err)
	}
	return &res, nil
}

func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// send posts the payload to the handler and interprets its answer. The
// caller's ctx bounds the invocation (functionTimeout).
func (h *Host) send(ctx context.Context, inv *invocation) (*result, error) {
	h.stats.begin(inv.fn.Name)
	res, err := h.sendOnce(ctx, inv)
	h.stats.end(inv.fn.Name, err)
	if err != nil {
		h.log.Error("invocation failed", "function", inv.fn.Name, "invocation_id", inv.id, "err", err)
		return nil, err
	}
	for _, line := range res.Logs {
		h.log.Info(line, "function", inv.fn.Name, "invocation_id", inv.id, "source", "Logs")
	}
	return res, nil
}

func (h *Host) sendOnce(ctx context.Context, inv *invocation) (*result, error) {
	fail := func(format string, a ...any) error {
		return &invocationError{Function: inv.fn.Name, ID: inv.id, Reason: fmt.Sprintf(format, a...)}
	}
	payload, err := buildPayload(inv, h.now())
	if err != nil {
		return nil, fail("building the request: %v", err)
	}
	if h.hc.FunctionTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.hc.FunctionTimeout)
		defer cancel()
	}
	p, err := h.worker.await(ctx)
	if err != nil {
		return nil, fail("%v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.baseURL+"/"+inv.fn.Name, bytes.NewReader(payload))
	if err != nil {
		return nil, fail("%v", err)
	}
	setHostHeaders(req.Header, inv.id)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	h.active.add(inv)
	defer h.active.remove(inv)
	h.log.Debug("invoking", "function", inv.fn.Name, "invocation_id", inv.id, "payload", string(payload))
	resp, err := h.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && h.hc.FunctionTimeout > 0 {
			h.log.Error("invocation exceeded functionTimeout; restarting the handler as the host does", "function", inv.fn.Name, "invocation_id", inv.id, "timeout", h.hc.FunctionTimeout)
			h.worker.kill(p)
			return nil, fail("timed out after %s (functionTimeout); the handler was restarted", h.hc.FunctionTimeout)
		}
		return nil, fail("calling the handler: %v", err)
	}
	defer resp.Body.Close()
	return interpretResponse(inv, resp)
}

func setHostHeaders(hd http.Header, invocationID string) {
	// Set directly to keep the host's spelling on the wire.
	hd["X-Azure-Functions-InvocationId"] = []string{invocationID}
	hd["X-Azure-Functions-HostVersion"] = []string{HostVersion}
	hd.Set("User-Agent", "Azure-Functions-Host/"+HostVersion)
}

// outputValue picks the handler's value for output binding b.
func outputValue(res *result, b Binding) (json.RawMessage, bool) {
	if b.Name == "$return" {
		if len(res.ReturnValue) == 0 || string(res.ReturnValue) == "null" {
			return nil, false
		}
		return res.ReturnValue, true
	}
	v, ok := res.Outputs[b.Name]
	if !ok || string(v) == "null" {
		return nil, false
	}
	return v, true
}

// messageBodies converts a Service Bus output value into message bodies the
// way the host does for function.json languages (spec §3.7): strings that
// look like base64 become bytes (and a byte[] sent through the string
// collector becomes the text "System.Byte[]"), JSON arrays fan out, JSON
// objects are re-serialised indented. binary skips the base64 sniff.
func messageBodies(v json.RawMessage, binary bool) ([]string, []string) {
	var warnings []string
	var s string
	if json.Unmarshal(v, &s) == nil {
		if !binary && looksLikeBase64(s) {
			warnings = append(warnings, fmt.Sprintf("output string %q decodes as base64, so the host turns it into bytes and sends the text \"System.Byte[]\"; send a JSON object instead", truncate(s, 40)))
			return []string{"System.Byte[]"}, warnings
		}
		t := strings.TrimSpace(s)
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") && json.Valid([]byte(t)) {
			return fanOut(json.RawMessage(t)), warnings
		}
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") && json.Valid([]byte(t)) {
			return []string{indentJSON([]byte(t))}, warnings
		}
		return []string{s}, warnings
	}
	t := bytes.TrimSpace(v)
	switch {
	case len(t) > 0 && t[0] == '[':
		return fanOut(t), warnings
	case len(t) > 0 && t[0] == '{':
		return []string{indentJSON(t)}, warnings
	default:
		return []string{string(t)}, warnings
	}
}

func fanOut(arr json.RawMessage) []string {
	var items []json.RawMessage
	_ = json.Unmarshal(arr, &items)
	out := make([]string, 0, len(items))
	for _, it := range items {
		var s string
		if json.Unmarshal(it, &s) == nil {
			out = append(out, s)
			continue
		}
		t := bytes.TrimSpace(it)
		if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
			out = append(out, indentJSON(t))
		} else {
			out = append(out, string(t))
		}
	}
	return out
}

func indentJSON(b []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		return string(b)
	}
	return buf.String()
}

// looksLikeBase64 mirrors the host's check: a non-empty string whose length
// is a multiple of 4, made of base64 characters with at most two trailing
// '=', that decodes.
func looksLikeBase64(s string) bool {
	if s == "" || len(s)%4 != 0 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '+', r == '/':
		case r == '=' && i >= len(s)-2:
		default:
			return false
		}
	}
	_, err := base64.StdEncoding.DecodeString(s)
	return err == nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// httpOutput is the {statusCode, headers, body} object of an http output.
type httpOutput struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

func parseHTTPOutput(v json.RawMessage) (*httpOutput, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(v, &obj); err != nil {
		return nil, fmt.Errorf("the http output must be an object {statusCode, headers, body}: %w", err)
	}
	out := &httpOutput{Status: http.StatusOK, Headers: map[string]string{}}
	for k, raw := range obj {
		switch strings.ToLower(k) {
		case "statuscode", "status":
			var n int
			var s string
			switch {
			case json.Unmarshal(raw, &n) == nil:
				out.Status = n
			case json.Unmarshal(raw, &s) == nil:
				n, err := strconv.Atoi(s)
				if err != nil {
					return nil, fmt.Errorf("http output statusCode %q is not a number", s)
				}
				out.Status = n
			default:
				return nil, fmt.Errorf("http output statusCode %s is not a number", raw)
			}
		case "headers":
			var hs map[string]any
			if err := json.Unmarshal(raw, &hs); err != nil {
				return nil, fmt.Errorf("http output headers must be an object: %w", err)
			}
			for hk, hv := range hs {
				out.Headers[hk] = fmt.Sprint(hv)
			}
		case "body":
			var s string
			if json.Unmarshal(raw, &s) == nil {
				out.Body = []byte(s)
			} else if string(raw) != "null" {
				out.Body = raw
			}
		}
	}
	if out.Status < 100 || out.Status > 999 {
		return nil, fmt.Errorf("http output statusCode %d is not an HTTP status", out.Status)
	}
	return out, nil
}
