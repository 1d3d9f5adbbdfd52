package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/handlers/api"
)

// Malformed requests through the real front door: each gets a 4xx whose
// message names the field, and none starts a migration or sends a message.
func TestMalformedRequestsAreRefused(t *testing.T) {
	needApp(t)
	ctx := testContext(t, time.Minute)
	sasURL, err := app.ContainerSASURL("e2e-malformed", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	good := func(edit func(r map[string]any)) []byte {
		r := map[string]any{
			"v":      1,
			"source": map[string]any{"kind": "azureBlob", "containerUrl": sasURL},
			"target": map[string]any{"containerId": target("http")},
		}
		if edit != nil {
			edit(r)
		}
		return mustJSON(t, r)
	}
	src := func(r map[string]any) map[string]any { return r["source"].(map[string]any) }
	tgt := func(r map[string]any) map[string]any { return r["target"].(map[string]any) }

	cases := []struct {
		name        string
		body        []byte
		contentType string
		status      int    // 0: any 4xx
		mention     string // the field (or subject) the message must name
	}{
		{name: "bad JSON", body: []byte(`{"v":1,"source":`), mention: "JSON"},
		{name: "empty body", body: []byte(``), mention: "empty"},
		{name: "not an object", body: []byte(`[1,2]`), mention: "object"},
		{name: "trailing data", body: []byte(`{"v":1} {"v":1}`), mention: "one JSON object"},
		{name: "missing version", body: good(func(r map[string]any) { delete(r, "v") }), mention: "v"},
		{name: "unsupported version", body: good(func(r map[string]any) { r["v"] = 2 }), mention: "v"},
		{name: "version of the wrong type", body: good(func(r map[string]any) { r["v"] = "1" }), mention: "v"},
		{name: "missing source", body: good(func(r map[string]any) { delete(r, "source") }), mention: "source"},
		{name: "missing target container", body: good(func(r map[string]any) { delete(tgt(r), "containerId") }), mention: "target.containerId"},
		{name: "malformed target container id", body: good(func(r map[string]any) { tgt(r)["containerId"] = "not-a-container" }), mention: "target.containerId"},
		{name: "unknown target container", body: good(func(r map[string]any) { tgt(r)["containerId"] = "b!bm8tc3VjaC1jb250YWluZXI" }), mention: "target.containerId"},
		{name: "unknown source kind", body: good(func(r map[string]any) { src(r)["kind"] = "ftp" }), mention: "source.kind"},
		{name: "container URL not a URL", body: good(func(r map[string]any) { src(r)["containerUrl"] = "::not a url" }), mention: "source.containerUrl"},
		{name: "container URL over plain http", body: good(func(r map[string]any) { src(r)["containerUrl"] = "http://files.example.invalid/docs" }), mention: "source.containerUrl"},
		{name: "container URL of another scheme", body: good(func(r map[string]any) { src(r)["containerUrl"] = "ftp://files.example.invalid/docs" }), mention: "source.containerUrl"},
		{name: "relative local folder", body: good(func(r map[string]any) { r["source"] = map[string]any{"kind": "localFolder", "path": "relative/dir"} }), mention: "source.path"},
		{name: "negative batch items", body: good(func(r map[string]any) { r["options"] = map[string]any{"batch": map[string]any{"maxItems": -5}} }), mention: "options.batch.maxItems"},
		{name: "negative batch bytes", body: good(func(r map[string]any) { r["options"] = map[string]any{"batch": map[string]any{"maxBytes": -1}} }), mention: "options.batch.maxBytes"},
		{name: "unknown option", body: good(func(r map[string]any) { r["options"] = map[string]any{"speed": "fast"} }), mention: "options.speed"},
		{name: "unknown top-level field", body: good(func(r map[string]any) { r["colour"] = "blue" }), mention: "colour"},
		{name: "bad naming policy", body: good(func(r map[string]any) {
			r["options"] = map[string]any{"naming": map[string]any{"invalidChars": "explode"}}
		}), mention: "options.naming.invalidChars"},
		{name: "bad conflict behaviour", body: good(func(r map[string]any) { r["options"] = map[string]any{"conflict": "merge"} }), mention: "options.conflict"},
		{name: "user map of the wrong type", body: good(func(r map[string]any) { r["options"] = map[string]any{"userMap": map[string]any{"alice": 7}} }), mention: "options.userMap"},
		{name: "oversized body", body: good(func(r map[string]any) { r["colour"] = strings.Repeat("x", 2<<20) }), status: http.StatusRequestEntityTooLarge, mention: "larger"},
		{name: "not JSON content", body: good(nil), contentType: "text/plain", status: http.StatusUnsupportedMediaType, mention: "Content-Type"},
	}

	before := queueCount(sbStats(t, ctx), "provision", "sent")
	listed := func() int {
		st, body := call(t, ctx, http.MethodGet, "/api/migrations?limit=100", nil, nil)
		if st != http.StatusOK {
			t.Fatalf("list migrations: %d %s", st, body)
		}
		var page struct {
			Migrations []api.Migration `json:"migrations"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		return len(page.Migrations)
	}
	migrations := listed()

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			if c.contentType != "" {
				h.Set("Content-Type", c.contentType)
			}
			st, body := call(t, ctx, http.MethodPost, "/api/migrations", c.body, h)
			if st < 400 || st >= 500 || (c.status != 0 && st != c.status) {
				t.Fatalf("status %d, want a 4xx (%d): %s", st, c.status, body)
			}
			var e api.ErrorBody
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Fatalf("body is not an error message: %s", body)
			}
			text := e.Error
			for _, f := range e.Errors {
				text += " | " + f.Field + ": " + f.Message
			}
			if !strings.Contains(text, c.mention) {
				t.Errorf("message does not name %q: %s", c.mention, text)
			}
			if strings.Contains(text, "sig=") {
				t.Errorf("message quotes the SAS signature: %s", text)
			}
			t.Logf("%d %s", st, text)
		})
	}

	if after := queueCount(sbStats(t, ctx), "provision", "sent"); after != before {
		t.Errorf("the provision queue received %d messages during the malformed requests", after-before)
	}
	if n := listed(); n != migrations {
		t.Errorf("%d migrations listed after the malformed requests, %d before", n, migrations)
	}
}
