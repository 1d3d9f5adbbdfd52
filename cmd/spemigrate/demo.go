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
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage); fs.PrintDefaults() }
	files := fs.Int("files", 520, "ordinary files in the sample (the naming cases and the large file come on top)")
	large := fs.Int64("large-mib", 200, "size of the large file in MiB (0: none)")
	verbose := fs.Bool("v", false, "show the services' and the handler's own output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *files < 0 || *large < 0 {
		return errors.New("-files and -large-mib must not be negative")
	}
	start := time.Now()
	step := func(format string, a ...any) {
		fmt.Fprintf(stdout, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}

	root, err := stack.FindRoot()
	if err != nil {
		return err
	}
	binDir, err := os.MkdirTemp("", "spemigrate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(binDir)
	step("building the handler (go build ./cmd/handler)")
	handler := filepath.Join(binDir, "handler")
	if err := localapp.BuildHandler(ctx, root, handler); err != nil {
		return err
	}
	step("starting the local stack (Azurite, Service Bus emulator, Graph SPE emulator, Functions dev host + handler)")
	opts := localapp.Options{Root: root, HandlerPath: handler, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, nil))
		opts.Output = stderr
	}
	app, err := localapp.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		step("stopping every service")
		app.Close()
	}()
	step("stack is up: API %s/api, Graph %s, SPE container %s", app.APIURL, app.GraphURL, app.SPEContainerID)

	set := demosample.Generate(demosample.Options{Files: *files, LargeSize: *large << 20, NamingCases: true})
	var total int64
	for _, f := range set {
		total += f.Size
	}
	const containerName = "demo-source"
	step("uploading the sample source: %d files, %s, into blob container %q", len(set), humanBytes(total), containerName)
	cc, err := app.Container(containerName)
	if err != nil {
		return err
	}
	blobs, err := demosample.Seed(ctx, cc, set, demosample.SeedOptions{})
	if err != nil {
		return err
	}
	sasURL, err := app.ContainerSASURL(containerName, 24*time.Hour)
	if err != nil {
		return err
	}

	body, err := json.Marshal(map[string]any{
		"v":      request.Version,
		"id":     "demo-" + time.Now().UTC().Format("20060102-150405"),
		"source": map[string]any{"kind": request.KindAzureBlob, "containerUrl": sasURL},
		"target": map[string]any{"containerId": app.SPEContainerID},
	})
	if err != nil {
		return err
	}
	c, err := newAPIClient(app.APIURL, "")
	if err != nil {
		return err
	}
	var m api.Migration
	resp, err := c.do(ctx, http.MethodPost, "/api/migrations", body, nil, &m)
	if err != nil {
		return fmt.Errorf("start the migration: %w", err)
	}
	step("POST /api/migrations → %d, migration %s (Location %s)", resp.StatusCode, m.ID, resp.Header.Get("Location"))
	migStart := time.Now()
	watchErr := watch(ctx, c, m.ID, time.Second, stdout)
	migTime := time.Since(migStart)
	if watchErr != nil && !errors.Is(watchErr, errNotSucceeded) {
		return watchErr
	}

	var csvBuf bytes.Buffer
	if _, err := c.do(ctx, http.MethodGet, "/api/migrations/"+url.PathEscape(m.ID)+"/report.csv", nil, nil, &csvBuf); err != nil {
		return fmt.Errorf("read the report: %w", err)
	}
	rows, err := verify.ParseReport(csvBuf.Bytes())
	if err != nil {
		return err
	}
	step("verifying through Graph's drive endpoints: every file present, same bytes (SHA-256), timestamps and authors")
	g, err := app.GraphReader()
	if err != nil {
		return err
	}
	res, err := verify.Check(ctx, verify.Options{
		Graph: g, DriveID: app.SPEContainerID, Source: blobs, Report: rows,
		Times: true, Authors: true, Exclusive: true,
	})
	if err != nil {
		return err
	}

	if rs, err := summarise(csvBuf.Bytes()); err == nil {
		fmt.Fprintln(stdout)
		rs.print(stdout, m.ID, false)
	}
	sum := verify.Summarise(rows)
	fmt.Fprintf(stdout, "\nSummary of migration %s\n", m.ID)
	revised := 0
	for _, b := range blobs {
		if b.Modified.Sub(b.Created) >= time.Second {
			revised++
		}
	}
	fmt.Fprintf(stdout, "  source:      %d files, %s (%d modified at least a second after creation)\n", len(blobs), humanBytes(total), revised)
	outcomes := make([]string, 0, len(sum.Outcomes))
	for o := range sum.Outcomes {
		outcomes = append(outcomes, o)
	}
	sort.Strings(outcomes)
	for _, o := range outcomes {
		fmt.Fprintf(stdout, "  %-12s %d\n", o+":", sum.Outcomes[o])
	}
	fmt.Fprintf(stdout, "  migrated:    %s in %s (%s/s, %.0f files/s)\n", humanBytes(sum.Bytes), migTime.Round(100*time.Millisecond),
		humanBytes(int64(float64(sum.Bytes)/migTime.Seconds())), float64(sum.Outcomes["imported"]+sum.Outcomes["renamed"])/migTime.Seconds())
	fmt.Fprintf(stdout, "  verified:    %d files read back, %s, %d renamed and %d skipped with their reasons\n", res.Checked, humanBytes(res.Bytes), res.Renamed, res.Skipped)
	fmt.Fprintf(stdout, "  wall time:   %s\n", time.Since(start).Round(100*time.Millisecond))
	if watchErr != nil {
		return watchErr
	}
	if err := res.Err(); err != nil {
		fmt.Fprintln(stdout, "  result:      FAILED")
		fmt.Fprintln(stdout, err)
		return errVerification
	}
	fmt.Fprintln(stdout, "  result:      PASSED (every eligible file present and byte-identical, with its timestamps and author)")
	return nil
}
