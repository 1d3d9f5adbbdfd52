package pipeline_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/shared/request"
)

// tableCounter is a Table Storage transport that counts requests by
// method and table ("POST Claims", "GET pipeline.Imports", "POST $batch").
type tableCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *tableCounter) Do(r *http.Request) (*http.Response, error) {
	seg := tableOf(r.URL.Path)
	if seg == "$batch" && r.Body != nil {
		// A transaction names its table in its first operation.
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if m := batchOpRe.FindSubmatch(body); m != nil {
			seg += " " + tableOf(string(m[1]))
		}
	}
	step, _ := r.Context().Value(stepKey{}).(string)
	if step == "" {
		step = "driver" // the test's own reads
	}
	c.mu.Lock()
	c.n[step+": "+r.Method+" "+seg]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

var batchOpRe = regexp.MustCompile(`(?m)^(?:POST|PUT|MERGE|PATCH|DELETE) \S*?(/[A-Za-z0-9]+(?:\(|\?|\s))`)

// tableOf returns the table a request path names, without the test's
// table prefix: "/devstoreaccount1/pl0a1b2c3dClaims(PartitionKey=…)" is "Claims".
func tableOf(p string) string {
	p = strings.TrimSpace(p)
	if i := strings.IndexAny(p, "(?"); i >= 0 {
		p = p[:i]
	}
	p = strings.Trim(p, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	if len(p) > 10 && strings.HasPrefix(p, "pl") {
		p = p[10:]
	}
	return p
}

// take returns the counts since the last take, their sums per step
// ("driver" for the test's own), and the sum of the engine's requests to
// the tables that hold a row per file or folder.
func (c *tableCounter) take() (kinds string, perStep map[string]int, perObject int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ks []string
	perStep = map[string]int{}
	for k, n := range c.n {
		ks = append(ks, fmt.Sprintf("%s %d", k, n))
		step, _, _ := strings.Cut(k, ": ")
		perStep[step] += n
		for _, tb := range perObjectTables {
			if step != "driver" && strings.HasSuffix(k, " "+tb) {
				perObject += n
			}
		}
	}
	sort.Strings(ks)
	c.n = map[string]int{}
	return strings.Join(ks, ", "), perStep, perObject
}

// perObjectTables hold rows per file or folder: naming and list-item id
// claims, import records, batch items and per-item results (and the
// Targets counter the id claims reserve from).
var perObjectTables = []string{"Claims", "pipeline.Imports", "Items", "Results", "Targets"}

// TestTableTransactionsPerFile keeps Table Storage's cost per file down:
// naming claims, list-item id claims, import lookups and records, batch
// items and results go in batches, so 2,000 files cost far less than one
// transaction per file on the tables that hold a row per file, on a first
// run and on an incremental re-run. The engine's bookkeeping per step
// (Migrations, Batches, InFlight, Events) does not grow with the files but
// with the batches; polls and drains grow with how long SharePoint takes,
// so they are bounded per poll, and the test driver's own reads not at all:
// a loaded machine then cannot fail the bound.
func TestTableTransactionsPerFile(t *testing.T) {
	if testing.Short() {
		t.Skip("migrates 2,000 files twice; run without -short")
	}
	tc := &tableCounter{n: map[string]int{}}
	cfg := itConfig()
	cfg.PageSize = 1000
	cfg.PollInterval = 2 * time.Second
	e := newITEnv(t, itOptions{cfg: cfg, tableTransport: tc})
	cid := itContainer(t, 14)
	dir := t.TempDir()
	const files = 2000
	genSource(t, dir, files, false)
	tc.take()

	for _, run := range []struct {
		id             string
		perObject, all float64
	}{
		// Per 200-file batch, about 20 requests to the per-file tables:
		// items, results and imports in transactions of 100, naming,
		// list-item id and folder-reference claims, the id block from
		// Targets, and conflict retries that vary with the load.
		{"cost-first", 0.125, 0.3},
		{"cost-rerun", 0.03, 0.05}, // everything unchanged: planning only
	} {
		polls := e.polls.Load()
		m := e.run(run.id, localRequest(dir, cid, request.Batch{}))
		polls = e.polls.Load() - polls
		kinds, perStep, perObject := tc.take()
		steps := perStep["provision"] + perStep["stage-batch"] + perStep["submit"]
		t.Logf("%s: %d Table requests of the provision, stage-batch and submit steps for %d files (%.3f per file), %d of the engine's to per-file tables (%.3f per file); %d polls (%d requests), drain %d, driver %d; planning took %s; counters %+v; %s",
			run.id, steps, files, float64(steps)/files, perObject, float64(perObject)/files, polls, perStep["poll"], perStep["drain"], perStep["driver"], e.planningTime(run.id), m.Counters, kinds)
		if got := float64(perObject) / files; got > run.perObject {
			t.Errorf("%s: %.3f requests per file to the per-file tables, want at most %.2f", run.id, got, run.perObject)
		}
		if got := float64(steps) / files; got > run.all {
			t.Errorf("%s: %.3f Table requests per file in the provision, stage-batch and submit steps, want at most %.2f", run.id, got, run.all)
		}
		// A poll reads the migration and the batch, stores a page of
		// events and writes the batch; finishing a batch adds its items,
		// results, imports and in-flight entry in a handful of
		// transactions each.
		if limit := 5*polls + 20*m.Counters.Batches; int64(perStep["poll"]) > limit {
			t.Errorf("%s: %d Table requests in %d polls of %d batches, want at most %d (5 per poll, 20 per batch)", run.id, perStep["poll"], polls, m.Counters.Batches, limit)
		}
	}
}

// planningTime is the time a migration's plan steps took, from the
// engine's logs.
func (e *itEnv) planningTime(migID string) time.Duration {
	var sum time.Duration
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var rec struct {
			Msg       string        `json:"msg"`
			Migration string        `json:"migration"`
			Took      time.Duration `json:"took"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Migration == migID && rec.Msg == "page planned" {
			sum += rec.Took
		}
	}
	return sum
}
