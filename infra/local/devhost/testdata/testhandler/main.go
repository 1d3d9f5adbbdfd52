// Command testhandler is a custom handler for the dev host's contract tests.
// It appends every request it receives, byte for byte, to
// $TESTHANDLER_RECORD (one JSON line each) and behaves according to the
// trigger value it is given, so a test can provoke each host rule.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type record struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Header  map[string][]string `json:"header"`
	Body    string              `json:"body"`
	Handler int                 `json:"pid"`
	// InFlight counts the requests being handled when this one arrived,
	// itself included.
	InFlight int64 `json:"inFlight"`
}

var inFlight atomic.Int64

var mu sync.Mutex

func save(r *http.Request, body []byte, n int64) {
	path := os.Getenv("TESTHANDLER_RECORD")
	if path == "" {
		return
	}
	b, _ := json.Marshal(record{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header, Body: string(body), Handler: os.Getpid(), InFlight: n})
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	f.Write(append(b, '\n'))
}

// hostString unwraps the host's double encoding of a string value.
func hostString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return string(raw)
	}
	var inner string
	if json.Unmarshal([]byte(s), &inner) == nil {
		return inner
	}
	return s
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func main() {
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		fmt.Fprintln(os.Stderr, "FUNCTIONS_CUSTOMHANDLER_PORT is not set")
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		// Forwarding mode: the original request arrives here.
		body, _ := io.ReadAll(r.Body)
		save(r, body, 0)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Forwarded-Path", r.URL.Path)
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprintf(w, "forwarded %s %s %s", r.Method, r.URL.RequestURI(), body)
	})
	mux.HandleFunc("POST /{function}", func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		body, _ := io.ReadAll(r.Body)
		save(r, body, n)
		var req struct {
			Data     map[string]json.RawMessage
			Metadata map[string]json.RawMessage
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fn := r.PathValue("function")
		fmt.Printf("invoked %s\n", fn)
		if strings.HasPrefix(fn, "Http") {
			httpFunction(w, req.Data["req"])
			return
		}
		var input string
		for _, v := range req.Data {
			input = hostString(v)
		}
		command, arg, _ := strings.Cut(input, ":")
		switch command {
		case "fail":
			fmt.Fprintln(os.Stderr, "failing on purpose")
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
		case "text":
			// A JSON body without a Content-Type: net/http sniffs text/plain.
			w.Write([]byte(`{"Outputs":{},"Logs":[],"ReturnValue":null}`))
		case "empty":
			w.WriteHeader(http.StatusOK)
		case "crash-once":
			if _, err := os.Stat(arg); err != nil {
				os.WriteFile(arg, nil, 0o644)
				fmt.Fprintln(os.Stderr, "crashing on purpose")
				os.Exit(3)
			}
			reply(w, map[string]any{"Outputs": map[string]any{}, "Logs": []string{"survived"}})
		case "exit":
			var code int
			fmt.Sscan(arg, &code)
			os.Exit(code)
		case "sleep":
			time.Sleep(time.Minute)
		case "hold":
			// Stay busy for arg milliseconds, then succeed.
			var ms int
			fmt.Sscan(arg, &ms)
			time.Sleep(time.Duration(ms) * time.Millisecond)
			reply(w, map[string]any{"Outputs": map[string]any{}})
		case "output":
			reply(w, map[string]any{"Outputs": map[string]json.RawMessage{"out": json.RawMessage(arg)}, "Logs": []string{"sent output"}})
		default:
			reply(w, map[string]any{"Outputs": map[string]any{}, "Logs": []string{"ok " + input}, "ReturnValue": nil})
		}
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, mux))
}

// httpFunction answers a payload-mode HTTP invocation: status from the
// "status" query parameter, the route parameters echoed back.
func httpFunction(w http.ResponseWriter, raw json.RawMessage) {
	var req struct {
		Method string
		Query  map[string]string
		Params map[string]string
		Body   string
	}
	json.Unmarshal(raw, &req)
	if req.Query["fail"] != "" {
		http.Error(w, "fail", http.StatusInternalServerError)
		return
	}
	status := 200
	if s := req.Query["status"]; s != "" {
		fmt.Sscan(s, &status)
	}
	reply(w, map[string]any{"Outputs": map[string]any{"res": map[string]any{
		"statusCode": status,
		"headers":    map[string]string{"Content-Type": "application/json", "X-Method": req.Method},
		"body":       map[string]any{"params": req.Params, "body": req.Body},
	}}})
}
