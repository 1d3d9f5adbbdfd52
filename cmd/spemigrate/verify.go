package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/verify"
	"github.com/spemigrate/spemigrate/shared/wiring"
)

const verifyUsage = `Usage: spemigrate verify [flags] ID

Checks a finished migration against its target, read-only through Graph's
drive endpoints: every file the report (from the app's API) says was
imported or renamed is in the container at its reported path with its size,
the source's times and author, and the same content (Graph's quickXorHash
against the source bytes; -sample also compares the downloaded bytes).
The source is read with the request given by -request, or with the stored
request when it holds no secret (a local folder, managed identity). It
prints the problems per file, records the results in the app (the report's
verification columns; -record=false does not) and fails when any file did
not pass.

  spemigrate verify m-20261202T130000-1a2b3c4d
  spemigrate verify -request request.json -sample 0.1 ID
`

type verifyFlags struct {
	reqFile, graphURL, caFile, token string
	noSource, asJSON, record         bool
	opts                             verify.Options
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f verifyFlags
	c, fs, err := apiCommand("verify", args, stderr, verifyUsage, func(fs *flag.FlagSet) {
		fs.StringVar(&f.reqFile, "request", "", "the migration's request `file`, with the source credentials (default: the stored, redacted request)")
		fs.BoolVar(&f.noSource, "no-source", false, "do not read the source: check presence and size only")
		fs.StringVar(&f.graphURL, "graph-url", envOr("SPEMIGRATE_GRAPH_URL", "https://graph.microsoft.com"), "Graph root `URL` (env SPEMIGRATE_GRAPH_URL)")
		fs.StringVar(&f.caFile, "graph-ca-file", os.Getenv("SPEMIGRATE_GRAPH_CA_FILE"), "extra trusted root certificates for Graph, PEM `file` (local emulator)")
		fs.StringVar(&f.token, "graph-token", os.Getenv("SPEMIGRATE_GRAPH_TOKEN"), "fixed bearer `token` for Graph (local emulator; default: your Azure identity)")
		fs.Float64Var(&f.opts.Sample, "sample", 0, "`fraction` (0-1) of files whose bytes are downloaded and compared too")
		fs.IntVar(&f.opts.Concurrency, "concurrency", 4, "files checked at once")
		fs.BoolVar(&f.asJSON, "json", false, "print the per-item results as JSON")
		fs.BoolVar(&f.record, "record", true, "record the per-item results in the app (PUT /api/migrations/{id}/verification)")
	})
	if err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	m, err := c.migration(ctx, id)
	if err != nil {
		return err
	}
	if !m.Terminal() {
		return fmt.Errorf("migration %s is %s: verify it when it has finished", id, m.Status)
	}
	at := time.Now().UTC()
	var buf bytes.Buffer
	if _, err := c.do(ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(id)+"/report.csv", nil, nil, &buf); err != nil {
		return err
	}
	rows, err := verify.ParseReport(buf.Bytes())
	if err != nil {
		return err
	}
	res, gone, err := f.check(ctx, m, rows)
	if err != nil {
		return err
	}
	if f.record {
		if err := upload(ctx, c, id, at, res, gone); err != nil {
			return fmt.Errorf("record the results in the app (-record=false skips it): %w", err)
		}
	}
	return printVerify(stdout, id, res, gone, f.asJSON)
}

// upload records a run's results in the app, api.UploadItems at a time;
// the last part carries the totals, which make it the migration's last
// run.
func upload(ctx context.Context, c *apiClient, id string, at time.Time, res *verify.Result, gone []string) error {
	items := res.Items
	for first := true; first || len(items) > 0; first = false {
		n := min(len(items), api.UploadItems)
		up := api.VerificationUpload{At: at, Items: items[:n]}
		if first {
			up.Gone = gone
		}
		if items = items[n:]; len(items) == 0 {
			up.Summary = &api.VerifiedSummary{At: at, Passed: int64(res.Passed), Failed: int64(res.Failed), Missing: int64(res.Missing), NotCompared: int64(len(gone))}
		}
		body, err := json.Marshal(up)
		if err != nil {
			return err
		}
		if _, err := c.do(ctx, http.MethodPut, "/api/migrations/"+url.PathEscape(id)+"/verification", body, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// check builds the expectations and reads the target.
func (f *verifyFlags) check(ctx context.Context, m api.Migration, rows []verify.Row) (*verify.Result, []string, error) {
	req, src, err := f.source(m)
	if err != nil {
		return nil, nil, err
	}
	want, gone, err := verify.FromReport(ctx, req, rows, src)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (give the request with its source credentials: -request FILE, or -no-source)", err)
	}
	g, err := verify.NewGraph(f.graphURL, f.caFile, f.token)
	if err != nil {
		return nil, nil, err
	}
	if f.token == "" {
		cred, err := graph.NewCredential(graph.CredentialConfig{Kind: graph.CredentialDefault})
		if err != nil {
			return nil, nil, fmt.Errorf("graph credential: %w", err)
		}
		g.Credential = cred
	}
	f.opts.DriveID = req.Target.ContainerID
	res, err := verify.Check(ctx, g, want, f.opts)
	return res, gone, err
}

// source picks the request to read the source with and opens it.
func (f *verifyFlags) source(m api.Migration) (request.Request, source.Source, error) {
	if m.Request == nil {
		return request.Request{}, nil, errors.New("the API returned the migration without its request")
	}
	req := *m.Request
	if f.reqFile != "" {
		data, err := os.ReadFile(f.reqFile)
		if err != nil {
			return req, nil, fmt.Errorf("read request: %w", err)
		}
		if req, err = request.DecodeBytes(data); err != nil {
			return req, nil, err
		}
		if req.Target.ContainerID != m.Request.Target.ContainerID {
			return req, nil, fmt.Errorf("-request targets %s, the migration %s", req.Target.ContainerID, m.Request.Target.ContainerID)
		}
	}
	if f.noSource {
		return req, nil, nil
	}
	src, err := (&wiring.RequestSources{Getenv: os.Getenv}).Open(req)
	if err != nil {
		return req, nil, fmt.Errorf("open source: %w", err)
	}
	return req, src, nil
}

func printVerify(w io.Writer, id string, res *verify.Result, gone []string, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			*verify.Result
			Gone []string `json:"goneFromSource,omitempty"`
		}{res, gone}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "Verification of migration %s\n", id)
		fmt.Fprintf(w, "  files:    %d checked, %d passed, %d failed, %d missing\n", len(res.Items), res.Passed, res.Failed, res.Missing)
		fmt.Fprintf(w, "  content:  %d by quickXorHash, %d byte by byte\n", res.HashChecked, res.BytesCompared)
		for _, it := range res.Failures() {
			fmt.Fprintf(w, "  %s %s (source %s):\n", it.Status, it.Target, it.Source)
			for _, p := range it.Problems {
				fmt.Fprintf(w, "      %s\n", p)
			}
		}
		for _, p := range gone {
			fmt.Fprintf(w, "  not compared, no longer in the source: %s\n", p)
		}
	}
	if !res.OK() {
		fmt.Fprintln(w, "  result:   FAILED")
		return fmt.Errorf("%d of %d files did not pass", res.Failed+res.Missing, len(res.Items))
	}
	fmt.Fprintln(w, "  result:   PASSED")
	return nil
}
