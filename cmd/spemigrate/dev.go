package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/spemigrate/spemigrate/infra/local/localapp"
	"github.com/spemigrate/spemigrate/infra/local/stack"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "keep the services' data in `DIR` across restarts (default: a temporary directory, removed on exit)")
	addr := fs.String("addr", "127.0.0.1:7071", "the Function App's front door `ADDRESS` (loopback only)")
	verbose := fs.Bool("v", false, "show the services' and the handler's own output")
	localRoots := fs.String("local-roots", "", "accept localFolder sources under `FOLDERS` (a path list; sets SPEMIGRATE_LOCAL_SOURCE_ROOTS; default: refused)")
	graphFaults := fs.String("graph-faults", "", "inject the Graph emulator faults of JSON `FILE` (see docs/graph-emulator.md)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := localapp.Options{
		Dir:      *dir,
		HTTPAddr: *addr,
		Graph:    stack.GraphOptions{FaultsFile: *graphFaults},
		Logger:   slog.New(slog.NewTextHandler(stderr, nil)),
	}
	if *verbose {
		opts.Output = stderr
	}
	if *localRoots != "" {
		opts.Settings = map[string]string{"SPEMIGRATE_LOCAL_SOURCE_ROOTS": *localRoots}
	}
	fmt.Fprintln(stdout, "Building the handler and starting the local stack…")
	app, err := localapp.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer app.Close()
	s := app.Stack
	fmt.Fprintf(stdout, "Local stack is up (data in %s).\n", s.Dir)
	fmt.Fprintf(stdout, "  Function App (dev host + handler): %s/api  (admin %s/admin/stats)\n", app.APIURL, app.APIURL)
	fmt.Fprintf(stdout, "  Blob + Table (Azurite): AzureWebJobsStorage=%s\n", s.StorageConnectionString)
	fmt.Fprintf(stdout, "  Service Bus emulator: ServiceBusConnection=%s (stats %s/stats)\n", s.ServiceBusConnectionString, s.ServiceBusAdminURL)
	fmt.Fprintf(stdout, "  Graph SPE emulator: %s (trust %s; admin %s; strict profile, send -graph-token %s)\n", s.GraphURL, s.GraphCAFile, s.GraphAdminURL, stack.GraphToken)
	fmt.Fprintf(stdout, "  SPE container: %s (web %s, list %s, root folder %s)\n", s.SPEContainerID, s.SPEWebID, s.SPEListID, s.SPERootFolderID)
	fmt.Fprintf(stdout, "Try: spemigrate submit -url %s request.json   (docs/api.md has request examples)\n", app.APIURL)
	fmt.Fprintln(stdout, "Press Ctrl-C to stop every service.")
	<-ctx.Done()
	fmt.Fprintln(stdout, "Stopping.")
	return nil
}
