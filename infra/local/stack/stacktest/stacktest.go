// Package stacktest runs a test package against the local stack: started
// once before the package's tests, stopped after them, whatever the tests
// do. It keeps every integration test package's TestMain to one call.
package stacktest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/infra/local/stack"
)

// Mode says whether the stack starts under -short.
type Mode int

const (
	// Always starts the stack, -short or not.
	Always Mode = iota
	// NotShort runs the tests without a stack under -short: the tests that
	// need it must skip themselves then (the stack they get is nil).
	NotShort
)

// Main starts the stack opts describes, gives it to started (nil under
// -short with NotShort), runs the tests, stops the stack and exits with
// the tests' code. A stack that does not start fails the package at once,
// naming what was asked for.
func Main(m *testing.M, opts stack.Options, mode Mode, started func(*stack.Stack)) {
	flag.Parse()
	if mode == NotShort && testing.Short() {
		started(nil)
		os.Exit(m.Run())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	s, err := stack.Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "start the local stack (%s): %v\n", describe(opts), err)
		os.Exit(1)
	}
	started(s)
	code := m.Run()
	s.Close()
	os.Exit(code)
}

func describe(o stack.Options) string {
	var what []string
	if o.Azurite {
		what = append(what, "Azurite")
	}
	if o.ServiceBus {
		what = append(what, "Service Bus emulator")
	}
	if o.Graph {
		what = append(what, "Graph emulator")
	}
	if o.Functions != nil {
		what = append(what, "dev host")
	}
	if len(what) == 0 {
		return "nothing"
	}
	out := what[0]
	for _, w := range what[1:] {
		out += ", " + w
	}
	return out
}

// Eventually polls cond until it holds, failing t with msg() once within
// has passed. The short pause between polls only spaces them out; cond is
// what the test waits for.
func Eventually(t testing.TB, within time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, msg())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
