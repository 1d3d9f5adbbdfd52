package handlers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spemigrate/spemigrate/shared/pipeline"
)

// MessageHandler handles one Service Bus message. Its error decides, through
// pipeline.Classify, whether the message is redelivered: a plain error is
// transient; one marked with pipeline.MarkPermanent, an invalid request or
// an unknown migration or batch is permanent (recorded where the user will
// see it, then the message is completed).
type MessageHandler func(ctx context.Context, body []byte, meta MessageMeta) error

// DataType is a Service Bus trigger's function.json "dataType": it says how
// the host encodes the body in the invocation.
type DataType string

// Data types.
const (
	// Binary: the body arrives as a base64 string (what our triggers use,
	// since the host would otherwise sniff and re-encode text bodies).
	Binary DataType = "binary"
	// Text: the body arrives as a JSON-encoded string (double-encoded, the
	// host's default).
	Text DataType = "string"
)

// ServiceBus adapts a MessageHandler to a Service Bus trigger named binding
// whose function.json declares dataType. A body that cannot be decoded, or a
// permanent failure, completes the message (2xx) and logs why: redelivering
// it ten times would fail ten times. Each invocation runs under deadline
// (see [Deadline]).
func ServiceBus(log *slog.Logger, binding string, dataType DataType, deadline time.Duration, h MessageHandler) Function {
	return serviceBus(log, binding, dataType, deadline, false, h)
}

// ServiceBusAnyBody is ServiceBus for a queue whose senders are outside the
// app (the provision queue takes requests from other systems): a body that
// is not a JSON object still reaches h, as the bytes that were sent, so h
// can record why it is refused instead of the message vanishing into a log
// line.
func ServiceBusAnyBody(log *slog.Logger, binding string, dataType DataType, deadline time.Duration, h MessageHandler) Function {
	return serviceBus(log, binding, dataType, deadline, true, h)
}

func serviceBus(log *slog.Logger, binding string, dataType DataType, deadline time.Duration, anyBody bool, h MessageHandler) Function {
	return FunctionFunc(func(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error) {
		meta := ServiceBusMeta(req.Metadata)
		log := log.With("messageId", meta.MessageID, "deliveryCount", meta.DeliveryCount)
		raw, ok := req.Data[binding]
		if !ok {
			return nil, fmt.Errorf("invocation has no Data.%s; check the binding name in function.json", binding)
		}
		body, err := MessageBody(raw, dataType)
		if err != nil && anyBody {
			if sent, ok := sentBytes(raw, dataType); ok {
				body, err = sent, nil
			}
		}
		if err != nil {
			log.Error("message dropped: undecodable body", "err", err)
			return &InvokeResponse{Logs: []string{"message dropped: " + err.Error()}}, nil
		}
		ctx, cancel := withDeadline(ctx, deadline)
		defer cancel()
		out := pipeline.Classify(h(ctx, body, meta), time.Now())
		switch out.Verdict {
		case pipeline.Done:
			return &InvokeResponse{}, nil
		case pipeline.Permanent:
			log.Warn("message completed after a permanent failure", "err", out.Reason)
			return &InvokeResponse{Logs: []string{"permanent failure: " + out.Reason}}, nil
		case pipeline.RetryAt:
			// The host cannot delay a redelivery; the lock's expiry and the
			// engine's own scheduled messages space the retries.
			log.Info("transient failure; redelivering", "err", out.Reason, "retryAfter", out.At)
		}
		return nil, errors.New(out.Reason)
	})
}

// withDeadline bounds an invocation below the host's functionTimeout, so a
// step that hangs ends (and its message is redelivered) while the host
// still holds the message lock, instead of the host killing the worker.
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// TimerHandler handles one timer run. now is the host's time of the run.
type TimerHandler func(ctx context.Context, info TimerInfo, now time.Time) error

// Timer adapts a TimerHandler to a timer trigger named binding.
func Timer(binding string, h TimerHandler) Function {
	return FunctionFunc(func(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error) {
		var info TimerInfo
		if raw, ok := req.Data[binding]; ok {
			if err := decodeTimerInfo(raw, &info); err != nil {
				return nil, fmt.Errorf("decode timer info: %w", err)
			}
		}
		now := time.Now().UTC()
		if raw, ok := req.Metadata["sys"]; ok {
			var sys struct {
				UtcNow string `json:"UtcNow"`
			}
			if json.Unmarshal(raw, &sys) == nil {
				if t, err := time.Parse(time.RFC3339Nano, sys.UtcNow); err == nil {
					now = t.UTC()
				}
			}
		}
		if err := h(ctx, info, now); err != nil {
			return nil, err
		}
		return &InvokeResponse{}, nil
	})
}

// decodeTimerInfo accepts the object the host sends and, defensively, the
// same object inside a JSON string.
func decodeTimerInfo(raw json.RawMessage, info *TimerInfo) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		s, err := HostString(raw)
		if err != nil {
			return err
		}
		if s == "" {
			return nil
		}
		raw = []byte(s)
	}
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	return json.Unmarshal(raw, info)
}

// HTTP adapts a net/http handler to an HTTP trigger in payload mode: the
// trigger value (binding trigger) becomes an *http.Request, and the handler's
// response becomes the http output (binding output). The same handler also
// serves forwarding mode unchanged.
func HTTP(trigger, output string, h http.Handler) Function {
	return FunctionFunc(func(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error) {
		raw, ok := req.Data[trigger]
		if !ok {
			return nil, fmt.Errorf("invocation has no Data.%s; check the binding name in function.json", trigger)
		}
		r, err := HTTPRequest(ctx, raw)
		if err != nil {
			return nil, err
		}
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		out := HTTPOutput{StatusCode: rec.status, Headers: map[string]string{}, Body: rec.body.String()}
		for k, vs := range rec.header {
			out.Headers[k] = strings.Join(vs, ", ")
		}
		return &InvokeResponse{Outputs: map[string]any{output: out}}, nil
	})
}

// HTTPRequest rebuilds the client's request from a payload-mode trigger value.
func HTTPRequest(ctx context.Context, raw json.RawMessage) (*http.Request, error) {
	var t struct {
		URL     string                     `json:"Url"`
		Method  string                     `json:"Method"`
		Query   json.RawMessage            `json:"Query"`
		Headers map[string]json.RawMessage `json:"Headers"`
		Body    json.RawMessage            `json:"Body"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("decode http trigger: %w", err)
	}
	u, err := url.Parse(t.URL)
	if err != nil || t.URL == "" {
		return nil, fmt.Errorf("http trigger has no usable Url")
	}
	header := http.Header{}
	for k, v := range t.Headers {
		var many []string
		if json.Unmarshal(v, &many) == nil {
			for _, s := range many {
				header.Add(k, s)
			}
			continue
		}
		var one string
		if json.Unmarshal(v, &one) == nil {
			header.Add(k, one)
		}
	}
	body, err := httpBody(t.Body, header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	method := strings.ToUpper(t.Method)
	if method == "" {
		method = http.MethodGet
	}
	r, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("rebuild http request: %w", err)
	}
	r.Header = header
	r.ContentLength = int64(len(body))
	r.Host = u.Host
	r.RequestURI = u.RequestURI()
	return r, nil
}

// httpBody decodes the trigger's Body: text, base64 for binary content types,
// or (tolerated) a JSON value the host parsed.
func httpBody(raw json.RawMessage, contentType string) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] != '"' {
		return raw, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("decode http body: %w", err)
	}
	ct := strings.ToLower(contentType)
	if strings.HasPrefix(ct, "application/octet-stream") || strings.HasPrefix(ct, "multipart/") {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("decode base64 http body: %w", err)
		}
		return b, nil
	}
	return []byte(s), nil
}

// recorder is a minimal http.ResponseWriter that keeps the response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
