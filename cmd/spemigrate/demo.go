package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/infra/local/localapp"
	demosample "github.com/spemigrate/spemigrate/infra/local/sample"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/verify"
	"github.com/spemigrate/spemigrate/shared/request"
)

const demoUsage = `Usage: spemigrate demo [flags]

Runs a whole migration on the local stack and checks the result: builds the
handler, starts Azurite, the Service Bus emulator, the Graph SPE emulator and
the Functions dev host, uploads a sample source (nested folders, unicode
names, names SharePoint refuses, a case collision, an empty file, a 200 MiB
file), starts a migration with POST /api/migrations, shows its progress, then
reads every file back through Graph's drive endpoints and compares bytes
(SHA-256), timestamps and authors. Exits 0 only if everything matches.

Flags:
`

// errVerification makes the exit code non-zero when the check fails.
var errVerification = errors.New("verification failed")

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags, err := parseDemoFlags(args, stderr)
	if err != nil {
		return err
	}
	d := &demo{flags: flags, stdout: stdout, stderr: stderr, start: time.Now()}
	stop, err := d.startStack(ctx)
	if err != nil {
		return err
	}
	defer stop()
	if err := d.seedSource(ctx); err != nil {
		return err
	}
	if err := d.recordTarget(ctx); err != nil {
		return err
	}
	c, err := d.startMigration(ctx)
	if err != nil {
		return err
	}
	migStart := time.Now()
	watchErr := watch(ctx, c, d.id, time.Second, stdout)
	d.migTime = time.Since(migStart)
	if watchErr != nil && !errors.Is(watchErr, errNotSucceeded) {
		return watchErr
	}
	if err := d.verifyTarget(ctx, c); err != nil {
		return err
	}
	d.printSummary()
	return d.verdict(watchErr)
}

// demoFlags are the demo's command-line flags.
type demoFlags struct {
	files    int   // ordinary files in the sample
	largeMiB int64 // size of the large file (0: none)
	verbose  bool  // show the services' own output
}

func parseDemoFlags(args []string, stderr io.Writer) (demoFlags, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage); fs.PrintDefaults() }
	files := fs.Int("files", 520, "ordinary files in the sample (the naming cases and the large file come on top)")
	large := fs.Int64("large-mib", 200, "size of the large file in MiB (0: none)")
	verbose := fs.Bool("v", false, "show the services' and the handler's own output")
	if err := fs.Parse(args); err != nil {
		return demoFlags{}, err
	}
	if *files < 0 || *large < 0 {
		return demoFlags{}, errors.New("-files and -large-mib must not be negative")
	}
	return demoFlags{files: *files, largeMiB: *large, verbose: *verbose}, nil
}

// demo is one demo run: what each phase leaves for the later ones.
type demo struct {
	flags          demoFlags
	stdout, stderr io.Writer
	start          time.Time

	app *localapp.App

	// The uploaded source.
	blobs  []demosample.Blob
	total  int64 // source bytes
	sasURL string
	// before are the files the target held before the migration.
	before []string

	// The migration and its check.
	id      string
	migTime time.Duration
	report  []byte // report.csv
	rows    []verify.Row
	res     *verify.Result
}

// step prints a progress line with the time since the demo started.
func (d *demo) step(format string, a ...any) {
	fmt.Fprintf(d.stdout, "[%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, a...))
}

// startStack builds the handler into a temporary directory and starts the
// local stack with it. stop closes every service, then removes the
// handler's directory.
func (d *demo) startStack(ctx context.Context) (stop func(), err error) {
	root, err := stack.FindRoot()
	if err != nil {
		return nil, err
	}
	binDir, err := os.MkdirTemp("", "spemigrate-demo-")
	if err != nil {
		return nil, err
	}
	removeBin := func() { os.RemoveAll(binDir) }
	d.step("building the handler (go build ./cmd/handler)")
	handler := filepath.Join(binDir, "handler")
	if err := localapp.BuildHandler(ctx, root, handler); err != nil {
		removeBin()
		return nil, err
	}
	d.step("starting the local stack (Azurite, Service Bus emulator, Graph SPE emulator, Functions dev host + handler)")
	opts := localapp.Options{Root: root, HandlerPath: handler, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if d.flags.verbose {
		opts.Logger = slog.New(slog.NewTextHandler(d.stderr, nil))
		opts.Output = d.stderr
	}
	app, err := localapp.Start(ctx, opts)
	if err != nil {
		removeBin()
		return nil, err
	}
	d.app = app
	d.step("stack is up: API %s/api, Graph %s, SPE container %s", app.APIURL, app.GraphURL, app.SPEContainerID)
	return func() {
		d.step("stopping every service")
		app.Close()
		removeBin()
	}, nil
}

// seedSource generates the sample set, uploads it into a blob container
// and makes the SAS URL the migration reads it through.
func (d *demo) seedSource(ctx context.Context) error {
	set := demosample.Generate(demosample.Options{Files: d.flags.files, LargeSize: d.flags.largeMiB << 20, NamingCases: true})
	for _, f := range set {
		d.total += f.Size
	}
	const containerName = "demo-source"
	d.step("uploading the sample source: %d files, %s, into blob container %q", len(set), humanBytes(d.total), containerName)
	cc, err := d.app.Container(containerName)
	if err != nil {
		return err
	}
	d.blobs, err = demosample.Seed(ctx, cc, set, demosample.SeedOptions{})
	if err != nil {
		return err
	}
	d.sasURL, err = d.app.ContainerSASURL(containerName, 24*time.Hour)
	return err
}

// startMigration starts the migration of the source into the SPE container
// with POST /api/migrations and returns the API client it used.
func (d *demo) startMigration(ctx context.Context) (*apiClient, error) {
	body, err := json.Marshal(map[string]any{
		"v":      request.Version,
		"id":     "demo-" + time.Now().UTC().Format("20060102-150405"),
		"source": map[string]any{"kind": request.KindAzureBlob, "containerUrl": d.sasURL},
		"target": map[string]any{"containerId": d.app.SPEContainerID},
	})
	if err != nil {
		return nil, err
	}
	c, err := newAPIClient(d.app.APIURL, "")
	if err != nil {
		return nil, err
	}
	var m api.Migration
	resp, err := c.do(ctx, http.MethodPost, "/api/migrations", body, nil, &m)
	if err != nil {
		return nil, fmt.Errorf("start the migration: %w", err)
	}
	d.id = m.ID
	d.step("POST /api/migrations → %d, migration %s (Location %s)", resp.StatusCode, m.ID, resp.Header.Get("Location"))
	return c, nil
}

// verifyTarget reads the migration's report and checks the target against
// the source through Graph's drive endpoints.
func (d *demo) verifyTarget(ctx context.Context, c *apiClient) error {
	var csvBuf bytes.Buffer
	if _, err := c.do(ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(d.id)+"/report.csv", nil, nil, &csvBuf); err != nil {
		return fmt.Errorf("read the report: %w", err)
	}
	d.report = csvBuf.Bytes()
	rows, err := verify.ParseReport(d.report)
	if err != nil {
		return err
	}
	d.rows = rows
	d.step("verifying through Graph's drive endpoints: every file present, same bytes (SHA-256), timestamps and authors")
	g, err := d.app.GraphReader()
	if err != nil {
		return err
	}
	d.res, err = verify.Check(ctx, verify.Options{
		Graph: g, DriveID: d.app.SPEContainerID, Source: d.blobs, Report: rows,
		Times: true, Authors: true, Exclusive: true, Preexisting: d.before,
	})
	return err
}

// recordTarget lists the files the container holds before the migration
// (the local stack's emulator seeds a container in use), which the check
// then leaves out.
func (d *demo) recordTarget(ctx context.Context) error {
	g, err := d.app.GraphReader()
	if err != nil {
		return err
	}
	files, err := g.Walk(ctx, d.app.SPEContainerID, "")
	if err != nil {
		return fmt.Errorf("list the target before migrating: %w", err)
	}
	for p := range files {
		d.before = append(d.before, p)
	}
	if len(d.before) > 0 {
		d.step("the target container already holds %d files; they must stay and are left out of the check", len(d.before))
	}
	return nil
}

// printSummary prints the report's summary, the outcomes, throughput and
// what the check read back.
func (d *demo) printSummary() {
	stdout := d.stdout
	if rs, err := summarise(d.report); err == nil {
		fmt.Fprintln(stdout)
		rs.print(stdout, d.id, false)
	}
	sum := verify.Summarise(d.rows)
	fmt.Fprintf(stdout, "\nSummary of migration %s\n", d.id)
	revised := 0
	for _, b := range d.blobs {
		if b.Modified.Sub(b.Created) >= time.Second {
			revised++
		}
	}
	fmt.Fprintf(stdout, "  source:      %d files, %s (%d modified at least a second after creation)\n", len(d.blobs), humanBytes(d.total), revised)
	outcomes := make([]string, 0, len(sum.Outcomes))
	for o := range sum.Outcomes {
		outcomes = append(outcomes, o)
	}
	sort.Strings(outcomes)
	for _, o := range outcomes {
		fmt.Fprintf(stdout, "  %-12s %d\n", o+":", sum.Outcomes[o])
	}
	migTime := d.migTime
	fmt.Fprintf(stdout, "  migrated:    %s in %s (%s/s, %.0f files/s)\n", humanBytes(sum.Bytes), migTime.Round(100*time.Millisecond),
		humanBytes(int64(float64(sum.Bytes)/migTime.Seconds())), float64(sum.Outcomes["imported"]+sum.Outcomes["renamed"])/migTime.Seconds())
	fmt.Fprintf(stdout, "  verified:    %d files read back, %s, %d renamed and %d skipped with their reasons\n", d.res.Checked, humanBytes(d.res.Bytes), d.res.Renamed, d.res.Skipped)
	fmt.Fprintf(stdout, "  wall time:   %s\n", time.Since(d.start).Round(100*time.Millisecond))
}

// verdict prints the result line and returns the demo's error: the
// migration's own failure first, then a failed check.
func (d *demo) verdict(watchErr error) error {
	if watchErr != nil {
		return watchErr
	}
	if err := d.res.Err(); err != nil {
		fmt.Fprintln(d.stdout, "  result:      FAILED")
		fmt.Fprintln(d.stdout, err)
		return errVerification
	}
	fmt.Fprintln(d.stdout, "  result:      PASSED (every eligible file present and byte-identical, with its timestamps and author)")
	return nil
}
