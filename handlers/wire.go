// Package handlers is the Azure Functions custom-handler side of spemigrate:
// the host ↔ handler wire protocol (spec functions-custom-handlers §3), the
// mux that serves POST /<FunctionName> for every function, adapters from
// Service Bus, timer and HTTP invocations to plain Go functions, and the
// app-settings configuration.
//
// Each function lives in its own folder under handlers/ with its
// function.json (the folder name is the function name); the Go code for a
// function sits beside its function.json. The HTTP API functions share one
// net/http handler, in handlers/api.
package handlers

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// InvokeRequest is the body the host POSTs for an invocation. Values are kept
// raw: the host encodes strings twice, numbers as strings, objects as objects
// (§3.2), so each is decoded where its type is known.
type InvokeRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// InvokeResponse is the body the handler answers with (§3.6). Outputs is
// always present (an empty object at least): an empty 2xx body would leave the
// host waiting until the function timeout.
type InvokeResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// HostString decodes a scalar the host sent as a string. It unwraps the
// extra JSON-string layer the host adds ("\"A-17\"" → A-17) and also accepts
// the single-encoded form the docs show, and bare JSON numbers and booleans.
func HostString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	if raw[0] != '"' {
		// A number or boolean sent bare (the documented, not the actual,
		// encoding).
		if raw[0] == '{' || raw[0] == '[' {
			return "", fmt.Errorf("expected a string, got %s", jsonKind(raw[0]))
		}
		return string(raw), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("decode host string: %w", err)
	}
	if strings.HasPrefix(s, `"`) {
		var inner string
		if json.Unmarshal([]byte(s), &inner) == nil {
			return inner, nil
		}
	}
	return s, nil
}

// HostInt decodes a number the host sent as a string ("1") or bare.
func HostInt(raw json.RawMessage) (int64, error) {
	s, err := HostString(raw)
	if err != nil {
		return 0, err
	}
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("decode host number: %w", err)
	}
	return n, nil
}

// HostTime decodes a DateTime or DateTimeOffset the host sent: RFC 3339 with
// offset, or without one (then UTC, as the host drops the marker).
func HostTime(raw json.RawMessage) (time.Time, error) {
	s, err := HostString(raw)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("decode host time %q: not an ISO 8601 time", s)
}

// MessageBody decodes a Service Bus message body from its Data value in the
// encoding its trigger's dataType makes the host use: base64 for binary, a
// (double-)encoded string or a parsed object for string. Nothing is guessed.
// The body must be a JSON object, as every spemigrate message is.
func MessageBody(raw json.RawMessage, dataType DataType) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, fmt.Errorf("message body is missing")
	}
	var body []byte
	switch dataType {
	case Binary:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("message body: dataType binary wants a base64 string, got %s", jsonKind(raw[0]))
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("message body: dataType binary wants a base64 string: %w", err)
		}
		body = bytes.TrimSpace(b)
	case Text:
		if raw[0] == '{' {
			// The host hands a JSON body over parsed when it can.
			body = raw
			break
		}
		s, err := HostString(raw)
		if err != nil {
			return nil, err
		}
		body = []byte(strings.TrimSpace(s))
	default:
		return nil, fmt.Errorf("message body: unknown dataType %q", dataType)
	}
	if len(body) == 0 || body[0] != '{' {
		return nil, fmt.Errorf("message body is not a JSON object")
	}
	return body, nil
}

func jsonKind(first byte) string {
	switch first {
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "a scalar"
}

// MessageMeta is the Service Bus trigger metadata a handler uses.
type MessageMeta struct {
	MessageID      string
	DeliveryCount  int64
	EnqueuedTime   time.Time
	DeadLetterFrom string // DeadLetterSource, for messages read from a dead-letter queue
	// DeadLetterReason and DeadLetterDescription come from the message's
	// application properties when it was dead-lettered.
	DeadLetterReason      string
	DeadLetterDescription string
}

// ServiceBusMeta reads the trigger metadata of a Service Bus invocation
// (§3.3). Missing keys are left zero.
func ServiceBusMeta(md map[string]json.RawMessage) MessageMeta {
	var m MessageMeta
	m.MessageID, _ = HostString(md["MessageId"])
	m.DeliveryCount, _ = HostInt(md["DeliveryCount"])
	if t, err := HostTime(md["EnqueuedTime"]); err == nil && !t.IsZero() {
		m.EnqueuedTime = t
	} else {
		m.EnqueuedTime, _ = HostTime(md["EnqueuedTimeUtc"])
	}
	m.DeadLetterFrom, _ = HostString(md["DeadLetterSource"])
	var props map[string]any
	if raw, ok := md["ApplicationProperties"]; ok && json.Unmarshal(raw, &props) == nil {
		m.DeadLetterReason = propString(props, "DeadLetterReason")
		m.DeadLetterDescription = propString(props, "DeadLetterErrorDescription")
	}
	return m
}

func propString(props map[string]any, key string) string {
	for k, v := range props {
		if strings.EqualFold(k, key) {
			if s, ok := v.(string); ok {
				return s
			}
			return fmt.Sprint(v)
		}
	}
	return ""
}

// TimerInfo is a timer trigger's value (§3.4).
type TimerInfo struct {
	Schedule struct {
		AdjustForDST bool `json:"AdjustForDST"`
	} `json:"Schedule"`
	ScheduleStatus *struct {
		Last        time.Time `json:"Last"`
		Next        time.Time `json:"Next"`
		LastUpdated time.Time `json:"LastUpdated"`
	} `json:"ScheduleStatus"`
	IsPastDue bool `json:"IsPastDue"`
}

// HTTPTrigger is an HTTP trigger's value in payload mode (§3.5a).
type HTTPTrigger struct {
	URL    string `json:"Url"`
	Method string `json:"Method"`
	// Query is an object in the code and a string in the docs' example;
	// Params holds route parameters.
	Query   json.RawMessage     `json:"Query"`
	Headers map[string][]string `json:"Headers"`
	Params  map[string]string   `json:"Params"`
	Body    json.RawMessage     `json:"Body"`
}

// HTTPOutput is the value of an http output binding (§3.8).
type HTTPOutput struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}
