package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/spemigrate/spemigrate/infra/local/stack"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "keep the services' data in `DIR` across restarts (default: a temporary directory, removed on exit)")
	verbose := fs.Bool("v", false, "show the services' own output")
	graphFaults := fs.String("graph-faults", "", "inject the Graph emulator faults of JSON `FILE` (see docs/graph-emulator.md)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := stack.Options{
		Dir:          *dir,
		Azurite:      true,
		Graph:        true,
		GraphOptions: stack.GraphOptions{FaultsFile: *graphFaults},
		ServiceBus:   true,
		Logger:       slog.New(slog.NewTextHandler(stderr, nil)),
	}
	if *verbose {
		opts.Output = stderr
	}
	s, err := stack.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(stdout, "Local stack is up (data in %s).\n", s.Dir)
	fmt.Fprintf(stdout, "  Blob + Table (Azurite): AzureWebJobsStorage=%s\n", s.StorageConnectionString)
	fmt.Fprintf(stdout, "  Service Bus emulator: ServiceBusConnection=%s (stats %s/stats)\n", s.ServiceBusConnectionString, s.ServiceBusAdminURL)
	fmt.Fprintf(stdout, "  Graph SPE emulator: %s (trust %s; admin %s)\n", s.GraphURL, s.GraphCAFile, s.GraphAdminURL)
	fmt.Fprintf(stdout, "  SPE container: %s (web %s, list %s, root folder %s)\n", s.SPEContainerID, s.SPEWebID, s.SPEListID, s.SPERootFolderID)
	fmt.Fprintln(stdout, "Press Ctrl-C to stop every service.")
	<-ctx.Done()
	fmt.Fprintln(stdout, "Stopping.")
	return nil
}
