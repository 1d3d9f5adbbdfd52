// Command benchreport measures spemigrate against the limits that matter for
// a migration tool (issue 7) and prints one table: for each figure the value,
// a baseline measured in the same run on the same machine, their ratio, the
// target and whether it was met. `make bench` runs it.
//
// Figures whose memory is judged run as child processes of this binary (it
// re-executes itself with -child), so the driver's own heap never pollutes a
// peak-RSS figure: the child's VmHWM and the kernel's rusage Maxrss are read
// after it exits.
//
// With -write, the table and a description of the machine replace the
// generated section of docs/benchmarks.md; the hand-written analysis around
// it is kept.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	var (
		child = flag.String("child", "", "internal: run one scenario and print its JSON result")
		arg   = flag.String("arg", "", "internal: the scenario's argument")
		write = flag.String("write", "", "also write the table into this markdown file (between its bench markers)")
		only  = flag.String("only", "", "comma-separated figures to run (1-6); empty runs all")
		short = flag.Bool("short", false, "smaller inputs (a quick check of the driver, not the reported figures)")
		vflag = flag.Bool("v", false, "log progress to stderr")
		eng   = flag.Bool("engine", false, "figures 4-5: drive the pipeline engine directly instead of running the Functions app")
	)
	flag.Parse()

	if *child == "sink" {
		if err := runSink(); err != nil {
			fmt.Fprintf(os.Stderr, "benchreport sink: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if *child != "" {
		if err := runChild(*child, *arg); err != nil {
			fmt.Fprintf(os.Stderr, "benchreport child %s: %v\n", *child, err)
			os.Exit(1)
		}
		return
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	lvl := slog.LevelWarn
	if *vflag {
		lvl = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	figs := map[string]bool{}
	for _, f := range strings.Split(*only, ",") {
		if f = strings.TrimSpace(f); f != "" {
			figs[f] = true
		}
	}
	d := &driver{log: log, short: *short, engineOnly: *eng, want: func(f string) bool { return len(figs) == 0 || figs[f] }}
	start := time.Now()
	machine := describeMachine()
	rows := d.run(ctx)
	machine.Elapsed = time.Since(start)
	machine.LoadEnd = loadAverage()

	var out strings.Builder
	writeReport(&out, machine, rows, d.notes)
	io.WriteString(os.Stdout, out.String())
	if *write != "" {
		if err := replaceSection(*write, out.String()); err != nil {
			fmt.Fprintf(os.Stderr, "benchreport: %v\n", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "benchreport: wrote %s\n", *write)
	}
}

// driver runs the figures in order; each returns rows, and a figure that
// cannot run says why in its rows instead of failing the whole report.
type driver struct {
	log        *slog.Logger
	short      bool
	engineOnly bool
	want       func(fig string) bool

	// notes are printed under the table.
	notes []string

	// The planning child of figure 2 also times figure 3.
	plan    *Result
	planErr error
}

func (d *driver) run(ctx context.Context) []Row {
	type fig struct {
		id  string
		run func(context.Context) []Row
	}
	var rows []Row
	for _, f := range []fig{
		{"1", d.figStaging},
		{"2", d.figMemory},
		{"3", d.figPlanning},
		{"4", nil}, // 4 and 5 share one end-to-end run
		{"6", d.figServiceBus},
	} {
		if f.id == "4" {
			if d.want("4") || d.want("5") {
				rows = append(rows, d.figEndToEnd(ctx)...)
			}
			continue
		}
		if !d.want(f.id) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		d.log.Info("figure", "id", f.id)
		t := time.Now()
		rows = append(rows, f.run(ctx)...)
		d.log.Info("figure done", "id", f.id, "took", time.Since(t).Round(time.Millisecond))
	}
	return rows
}
