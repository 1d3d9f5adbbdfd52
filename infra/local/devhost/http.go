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
	"net/url"
	"strings"

	"github.com/google/uuid"
)

func (h *Host) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/admin" || strings.HasPrefix(r.URL.Path, "/admin/") {
		h.serveAdmin(w, r)
		return
	}
	if r.URL.Path == "/" {
		// The real host serves a landing page here.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "Azure Functions dev host is running.")
		return
	}
	segs, ok := h.routeSegments(r.URL.EscapedPath())
	if !ok {
		http.NotFound(w, r)
		return
	}
	for _, fn := range h.httpFunctions() {
		params, ok := fn.route.match(segs)
		if !ok {
			continue
		}
		if len(fn.Trigger.Methods) > 0 && !containsFold(fn.Trigger.Methods, r.Method) {
			// The method list is a route constraint in the host: a
			// mismatch is no match, and the next route may still match.
			continue
		}
		if h.hc.EnableForwarding && len(fn.Outputs) == 1 && fn.Outputs[0].Type == "http" {
			h.forward(w, r, fn)
			return
		}
		h.invokeHTTP(w, r, fn, params)
		return
	}
	http.NotFound(w, r)
}

// routeSegments strips the route prefix and splits the rest into unescaped
// segments.
func (h *Host) routeSegments(escaped string) ([]string, bool) {
	p := strings.Trim(escaped, "/")
	if pre := h.hc.RoutePrefix; pre != "" {
		if !strings.EqualFold(p, pre) && !strings.HasPrefix(strings.ToLower(p), strings.ToLower(pre)+"/") {
			return nil, false
		}
		p = strings.TrimPrefix(p[len(pre):], "/")
	}
	if p == "" {
		return nil, true
	}
	parts := strings.Split(p, "/")
	for i, s := range parts {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}

// invokeHTTP is payload mode: the request becomes Data.<trigger name>.
func (h *Host) invokeHTTP(w http.ResponseWriter, r *http.Request, fn *Function, params map[string]string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	inv := newHTTPInvocation(r, fn, params, body)
	res, err := h.send(r.Context(), inv)
	if err == nil {
		err = h.writeOutputs(r.Context(), inv, res)
	}
	if err != nil {
		http.Error(w, "", http.StatusInternalServerError)
		return
	}
	h.writeHTTPResult(w, inv, res)
}

// newHTTPInvocation builds a payload-mode invocation: the request object is
// Data.<trigger name>; Query, Headers, each query parameter but "code" and
// each route parameter are metadata, and the body is the trigger string.
func newHTTPInvocation(r *http.Request, fn *Function, params map[string]string, body []byte) *invocation {
	query := map[string]string{}
	for k, v := range r.URL.Query() {
		query[k] = strings.Join(v, ",")
	}
	headers := map[string][]string{}
	flatHeaders := map[string]string{}
	for k, v := range r.Header {
		headers[k] = v
		flatHeaders[k] = strings.Join(v, ",")
	}
	if r.Host != "" {
		headers["Host"] = []string{r.Host}
		flatHeaders["Host"] = r.Host
	}
	reqJSON, _ := json.Marshal(httpRequestData(r, query, headers, params, body))
	qJSON, _ := json.Marshal(query)
	hJSON, _ := json.Marshal(flatHeaders)
	inv := &invocation{
		fn:   fn,
		id:   uuid.NewString(),
		data: map[string]any{fn.Trigger.Name: dotnetObject(reqJSON)},
		metadata: map[string]any{
			"Query":   dotnetObject(qJSON),
			"Headers": dotnetObject(hJSON),
		},
	}
	for k, v := range query {
		if !strings.EqualFold(k, "code") {
			inv.metadata[k] = dotnetString(v)
		}
	}
	for k, v := range params {
		inv.metadata[k] = dotnetString(v)
	}
	if len(body) > 0 {
		s := string(body)
		inv.triggerString = &s
	}
	return inv
}

// httpRequestData is the request object the host passes to the handler. A
// binary or multipart body is base64; any other body is text.
func httpRequestData(r *http.Request, query map[string]string, headers map[string][]string, params map[string]string, body []byte) map[string]any {
	req := map[string]any{
		"Url":        "http://" + r.Host + r.URL.RequestURI(),
		"Method":     r.Method,
		"Query":      query,
		"Headers":    headers,
		"Identities": []any{},
	}
	if len(params) > 0 {
		req["Params"] = params
	}
	// len(body), not ContentLength: a chunked request has no length (-1)
	// and the real host still passes its body on.
	if len(body) > 0 {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "application/octet-stream" || strings.HasPrefix(mt, "multipart/") {
			req["Body"] = base64.StdEncoding.EncodeToString(body)
		} else {
			req["Body"] = string(body)
		}
	}
	return req
}

// writeHTTPResult answers the request from the function's http output
// binding (the last one, if several), or with 204 No Content when it has
// none or the handler set no value for it.
func (h *Host) writeHTTPResult(w http.ResponseWriter, inv *invocation, res *result) {
	fn := inv.fn
	var out *Binding
	for i := range fn.Outputs {
		if fn.Outputs[i].Type == "http" {
			out = &fn.Outputs[i]
		}
	}
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	v, ok := outputValue(res, *out)
	if !ok {
		h.log.Warn("no value for the http output binding", "function", fn.Name, "invocation_id", inv.id, "binding", out.Name)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ho, err := parseHTTPOutput(v)
	if err != nil {
		h.log.Error("bad http output", "function", fn.Name, "invocation_id", inv.id, "err", err)
		http.Error(w, "", http.StatusInternalServerError)
		return
	}
	for k, v := range ho.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(ho.Status)
	_, _ = w.Write(ho.Body)
}

// forward is forwarding mode: the original request goes to the handler at
// its original path and the handler's response comes back untouched.
func (h *Host) forward(w http.ResponseWriter, r *http.Request, fn *Function) {
	id := uuid.NewString()
	inv := &invocation{fn: fn, id: id}
	h.stats.begin(fn.Name)
	err := h.forwardOnce(w, r, inv)
	h.stats.end(fn.Name, err)
	if err != nil {
		h.log.Error("forwarded invocation failed", "function", fn.Name, "invocation_id", id, "err", err)
	}
}

func (h *Host) forwardOnce(w http.ResponseWriter, r *http.Request, inv *invocation) error {
	ctx := r.Context()
	if h.hc.FunctionTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.hc.FunctionTimeout)
		defer cancel()
	}
	p, err := h.worker.await(ctx)
	if err != nil {
		http.Error(w, "", http.StatusInternalServerError)
		return err
	}
	var body io.Reader
	if r.ContentLength != 0 { // -1: chunked, length unknown
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "", http.StatusBadRequest)
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, p.baseURL+r.URL.RequestURI(), body)
	if err != nil {
		http.Error(w, "", http.StatusInternalServerError)
		return err
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	setHostHeaders(req.Header, inv.id)
	h.active.add(inv)
	defer h.active.remove(inv)
	resp, err := h.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			h.worker.kill(p)
		}
		http.Error(w, "", http.StatusInternalServerError)
		return err
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, err = io.Copy(w, resp.Body)
	return err
}

// serveAdmin implements the subset of the host's admin API that is useful
// locally: manual invocation, the function list, host status and the
// invocation counters.
func (h *Host) serveAdmin(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/admin/stats" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, h.Stats())
	case path == "/admin/host/status" && r.Method == http.MethodGet:
		state := "Running"
		if h.worker.failed() != nil {
			state = "Error"
		}
		writeJSON(w, http.StatusOK, map[string]string{"state": state, "version": HostVersion})
	case path == "/admin/functions" && r.Method == http.MethodGet:
		type fnInfo struct {
			Name     string `json:"name"`
			Trigger  string `json:"trigger"`
			Disabled bool   `json:"isDisabled"`
		}
		var list []fnInfo
		for _, f := range h.functions {
			list = append(list, fnInfo{f.Name, f.Trigger.Type, f.Disabled})
		}
		writeJSON(w, http.StatusOK, list)
	case strings.HasPrefix(path, "/admin/functions/") && r.Method == http.MethodPost:
		name := strings.TrimPrefix(path, "/admin/functions/")
		fn, ok := h.byName[name]
		if !ok {
			for n, f := range h.byName {
				if strings.EqualFold(n, name) {
					fn, ok = f, true
				}
			}
		}
		if !ok {
			http.Error(w, fmt.Sprintf("no function named %q", name), http.StatusNotFound)
			return
		}
		if fn.IsHTTP() {
			http.Error(w, fmt.Sprintf("%s is an HTTP function; call it at its route", fn.Name), http.StatusBadRequest)
			return
		}
		var body struct {
			Input *string `json:"input"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			http.Error(w, `body must be {"input": "<trigger value>"}: `+err.Error(), http.StatusBadRequest)
			return
		}
		input := ""
		if body.Input != nil {
			input = *body.Input
		}
		// Like the host: accepted now, run in the background.
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			if err := h.Invoke(h.runCtx, fn.Name, input); err != nil {
				h.log.Error("admin invocation failed", "function", fn.Name, "err", err)
			}
		}()
		w.WriteHeader(http.StatusAccepted)
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
