package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spemigrate/spemigrate/handlers/api"
)

// defaultURL is the local dev host's front door (Core Tools' port too).
const defaultURL = "http://127.0.0.1:7071"

// apiClient talks to a Function App's HTTP API.
type apiClient struct {
	base string // scheme://host[:port], no /api
	key  string // function key, sent as x-functions-key
	http *http.Client
}

// apiFlags registers the flags every API command takes.
func apiFlags(fs *flag.FlagSet) (base, key *string) {
	base = fs.String("url", envOr("SPEMIGRATE_URL", defaultURL), "the Function App's `URL` (env SPEMIGRATE_URL)")
	key = fs.String("key", os.Getenv("SPEMIGRATE_KEY"), "function `key` for the API (env SPEMIGRATE_KEY; not needed locally)")
	return base, key
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newAPIClient(base, key string) (*apiClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q: expected the Function App's URL, e.g. https://myapp.azurewebsites.net", base)
	}
	b := strings.TrimRight(u.String(), "/")
	b = strings.TrimSuffix(b, "/api")
	return &apiClient{base: b, key: key, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// apiError is an error response of the API.
type apiError struct {
	Status int
	Body   api.ErrorBody
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d: %s", e.Status, e.Body.Error)
	if len(e.Body.Errors) > 1 {
		for _, f := range e.Body.Errors {
			fmt.Fprintf(&b, "\n  %s", f.Error())
		}
	}
	return b.String()
}

// do sends a request and decodes a JSON answer into out (if not nil). It
// returns the response for its headers; the body is consumed.
func (c *apiClient) do(ctx context.Context, method, path string, body []byte, header http.Header, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("x-functions-key", c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.Body) != nil || e.Body.Error == "" {
			e.Body.Error = strings.TrimSpace(string(data))
			if e.Body.Error == "" {
				e.Body.Error = http.StatusText(resp.StatusCode)
			}
		}
		return resp, e
	}
	if out != nil {
		if w, ok := out.(io.Writer); ok {
			_, err = w.Write(data)
			return resp, err
		}
		if err := json.Unmarshal(data, out); err != nil {
			return resp, fmt.Errorf("%s %s: unexpected response: %w", method, path, err)
		}
	}
	return resp, nil
}

func (c *apiClient) migration(ctx context.Context, id string) (api.Migration, error) {
	var m api.Migration
	_, err := c.do(ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(id), nil, nil, &m)
	return m, err
}
