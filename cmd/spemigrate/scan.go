package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/scan"
	"github.com/spemigrate/spemigrate/shared/wiring"
)

const scanUsage = `Usage: spemigrate scan [flags] [REQUEST.json | -]

Readiness scan (dry run): lists the source the request names, from this
machine and with the request's own credentials, applies the naming policy and
plans the batches, and prints totals, renames and skips with their reasons,
the largest files, the longest paths, an extension histogram, the packages
and jobs to expect and an ingest time estimate. No app is needed and nothing
is created, enqueued or sent to Graph. POST /api/migrations?dryRun=true gives
the same report through the app.

  spemigrate scan request.json
  spemigrate scan --source /data/share --target 'b!…' --json

Flags:
`

// gbPerDay is a flag in decimal gigabytes a day, stored as bytes a day.
type gbPerDay struct{ bytes *int64 }

func (g gbPerDay) String() string {
	if g.bytes == nil {
		return ""
	}
	return fmt.Sprint(float64(*g.bytes) / 1e9)
}

func (g gbPerDay) Set(s string) error {
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil || f <= 0 {
		return fmt.Errorf("%q is not a positive number of GB a day", s)
	}
	*g.bytes = int64(f * 1e9)
	return nil
}

func runScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, scanUsage); fs.PrintDefaults() }
	src := fs.String("source", "", "source: an Azure Blob container `URL` (with a SAS) or an absolute local folder")
	prefix := fs.String("prefix", "", "only names under this `prefix` of the source")
	target := fs.String("target", "", "target SharePoint Embedded container `id` (b!…)")
	folder := fs.String("folder", "", "destination `folder` inside the container")
	asJSON := fs.Bool("json", false, "print the report as JSON (the API's dry-run body)")
	list := fs.Int("list", 50, "list at most `n` renames, skips and extensions in the text report")
	o := scan.Options{Rates: scan.DefaultRates}
	fs.IntVar(&o.Top, "top", 10, "how many largest files and longest paths to list")
	fs.IntVar(&o.PageSize, "page-size", 1000, "listing page planned at once, as the app's SPEMIGRATE_PAGE_SIZE")
	fs.IntVar(&o.MaxVersions, "max-versions", 500, "versions kept per file, as SPEMIGRATE_MAX_VERSIONS (-1: all)")
	fs.StringVar(&o.LibraryURL, "library-url", scan.TypicalLibraryURL, "target library's server-relative `URL`, counted toward the 400-character path limit")
	fs.Var(gbPerDay{&o.Rates.Light}, "rate-light", "ingest rate in GB a day for files of 10 MiB and more (published: 2000)")
	fs.Var(gbPerDay{&o.Rates.Medium}, "rate-medium", "ingest rate in GB a day for files of 100 KiB to 10 MiB (published: 1000)")
	fs.Var(gbPerDay{&o.Rates.Heavy}, "rate-heavy", "ingest rate in GB a day for files under 100 KiB (published: 250)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body, err := requestBody(fs.Args(), *src, *prefix, *target, *folder, "")
	if err != nil {
		return err
	}
	req, err := request.DecodeBytes(body)
	if err != nil {
		return err
	}
	rs := &wiring.RequestSources{Getenv: os.Getenv}
	s, err := rs.Open(req)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	rep, err := scan.Run(ctx, req, s, o)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout, *list)
}
