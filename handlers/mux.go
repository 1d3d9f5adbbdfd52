package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// maxInvokeBytes bounds an invocation body. Service Bus messages are small
// (ids only); HTTP API requests are bounded by request.MaxBodyBytes, and the
// host wraps them in JSON (escaping can double their size).
const maxInvokeBytes = 8 << 20

// Function handles one invocation. Returning an error fails the invocation
// (non-2xx): the host abandons a Service Bus message, which is then
// redelivered, and logs a failed timer run. Outcomes that must not be retried
// are returned as a response, not an error.
type Function interface {
	Invoke(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error)
}

// FunctionFunc adapts a plain function to Function.
type FunctionFunc func(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error)

// Invoke calls f.
func (f FunctionFunc) Invoke(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error) {
	return f(ctx, req)
}

// NewMux serves the custom-handler protocol: POST /<name> for every function
// in fns, and a cheap GET / that the host polls for readiness and health.
// Every response carries Content-Type: application/json (the host refuses
// any other) and a non-empty JSON body.
func NewMux(log *slog.Logger, fns map[string]Function) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	for name, fn := range fns {
		mux.Handle("POST /"+name, invoker{name: name, fn: fn, log: log})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no function serves %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

type invoker struct {
	name string
	fn   Function
	log  *slog.Logger
}

func (h invoker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.log.With("function", h.name, "invocationId", r.Header.Get("X-Azure-Functions-InvocationId"))
	var req InvokeRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxInvokeBytes))
	if err := dec.Decode(&req); err != nil {
		// The host never sends this; answering non-2xx makes the failure
		// visible in the host's logs.
		log.Error("invocation body is not a host payload", "err", err)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invocation body is not a host payload: " + err.Error()})
		return
	}
	res, err := h.invoke(r.Context(), &req)
	if err != nil {
		log.Error("invocation failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if res == nil {
		res = &InvokeResponse{}
	}
	if res.Outputs == nil {
		res.Outputs = map[string]any{}
	}
	if res.Logs == nil {
		res.Logs = []string{}
	}
	writeJSON(w, http.StatusOK, res)
}

// invoke recovers a panic into a failed invocation: the process stays up for
// the other invocations in flight.
func (h invoker) invoke(ctx context.Context, req *InvokeRequest) (res *InvokeResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("invocation panicked", "function", h.name, "panic", p, "stack", string(debug.Stack()))
			res, err = nil, errors.New("internal error (panic); see the handler's log")
		}
	}()
	return h.fn.Invoke(ctx, req)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"response not serialisable"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
