// Command funcpackage writes the Functions app's deployment zip (see
// infra/funcpackage): make package runs it, and azd deploys what it wrote.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/spemigrate/spemigrate/infra/funcpackage"
)

func main() {
	out := flag.String("o", "build/functionapp.zip", "the zip to write")
	root := flag.String("root", ".", "the repository root")
	version := flag.String("version", "dev", "version stamped into the handler")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	p, err := funcpackage.Build(ctx, funcpackage.Options{Root: *root, Out: *out, Version: *version})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s: host.json, %s (0755), %d functions: %v\n", *out, p.Handler, len(p.Functions), p.Functions)
}
