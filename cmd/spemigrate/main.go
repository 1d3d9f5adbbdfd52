// Command spemigrate is the user's tool: it runs the local stack, the demo
// migration, and talks to a deployed (or local) spemigrate Function App.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `spemigrate moves content from Azure Blob Storage into SharePoint Embedded containers.

Usage:
  spemigrate demo       run a sample migration end to end on the local stack and verify it
  spemigrate dev        start the local stack and print its connection settings; Ctrl-C stops it
  spemigrate scan       readiness scan (dry run) of a request's source: names, batches, estimate
  spemigrate submit     start a migration (over HTTP, or --queue onto the provision queue)
  spemigrate status     list recent migrations, or show one
  spemigrate watch      live progress of a migration until it ends
  spemigrate cancel     cancel a migration
  spemigrate report     per-item outcome summary (or --csv for the full report)
  spemigrate verify     check a finished migration's files in the target through Graph (size, times, author, hash)
  spemigrate help       this text
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "dev":
		err = runDev(ctx, args[1:], stdout, stderr)
	case "scan":
		err = runScan(ctx, args[1:], stdout, stderr)
	case "submit":
		err = runSubmit(ctx, args[1:], stdout, stderr)
	case "status":
		err = runStatus(ctx, args[1:], stdout, stderr)
	case "watch":
		err = runWatch(ctx, args[1:], stdout, stderr)
	case "cancel":
		err = runCancel(ctx, args[1:], stdout, stderr)
	case "report":
		err = runReport(ctx, args[1:], stdout, stderr)
	case "verify":
		err = runVerify(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "spemigrate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "spemigrate %s: %v\n", args[0], err)
		if end := (*migrationEnd)(nil); errors.As(err, &end) {
			return end.exitCode()
		}
		return 1
	}
	return 0
}
