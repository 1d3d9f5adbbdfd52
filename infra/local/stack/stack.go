// Package stack starts and stops the local stand-ins for the Azure services
// spemigrate talks to: Azurite (Blob and Table), the Service Bus emulator, the
// Graph SPE emulator and the Functions dev host.
//
// Every server binds to 127.0.0.1 on a free port. Every child process is put
// in its own process group, is killed when the launching process dies
// (Pdeathsig), and is stopped by Close, so a killed test binary leaves no
// orphans behind. The same package serves `spemigrate dev` and the Go
// integration tests.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// AzuriteAccount and AzuriteKey are Azurite's published development account
// and key; they guard nothing.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Options says which services to start.
type Options struct {
	// Root is the repository root (it holds infra/local/package.json). Empty:
	// found by walking up from the working directory.
	Root string
	// Dir holds the services' data. Empty: a temporary directory removed by Close.
	Dir string

	Azurite bool
	// Graph starts the Graph SPE emulator in-process (implies Azurite).
	Graph        bool
	GraphOptions GraphOptions
	// ServiceBus starts the Service Bus emulator (infra/local/servicebus) with
	// the queues of the JSON file ServiceBusConfig (empty: the app's queues,
	// infra/local/servicebus/queues.json; relative to the working directory).
	ServiceBus       bool
	ServiceBusConfig string

	// Functions runs the Functions dev host in-process (devhost.go); it
	// starts after every other service. Nil: no dev host.
	Functions *FunctionsOptions

	// Logger receives the launcher's own messages; nil discards them.
	Logger *slog.Logger
	// Output receives the children's stdout and stderr; nil discards them.
	Output io.Writer
}

// Stack is a running local stack. Its fields describe how to reach each
// service that was started.
type Stack struct {
	Root string
	Dir  string

	// BlobEndpoint and TableEndpoint are http URLs ending in the account name.
	BlobEndpoint  string
	TableEndpoint string
	// StorageConnectionString is the explicit-endpoint form the Go SDKs need.
	StorageConnectionString string

	graphFields
	serviceBusFields
	azurite *azurite
	functionsFields

	opts    Options
	log     *slog.Logger
	tempDir bool

	mu      sync.Mutex
	procs   []*proc
	closers []func() error
	closed  bool
}

// Start launches the services opts asks for and waits until each accepts
// connections. On error everything already started is stopped.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	root := opts.Root
	if root == "" {
		var err error
		if root, err = FindRoot(); err != nil {
			return nil, err
		}
	}
	s := &Stack{Root: root, Dir: opts.Dir, opts: opts, log: log}
	if s.Dir == "" {
		d, err := os.MkdirTemp("", "spemigrate-stack-")
		if err != nil {
			return nil, fmt.Errorf("stack: data dir: %w", err)
		}
		s.Dir, s.tempDir = d, true
	}
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Stack) start(ctx context.Context) error {
	if s.opts.Azurite {
		if err := EnsureNodeTools(ctx, s.Root, s.log); err != nil {
			return err
		}
		if err := s.startAzurite(ctx); err != nil {
			return err
		}
	}
	if err := s.startGraph(ctx); err != nil {
		return err
	}
	if s.opts.ServiceBus {
		if err := s.startServiceBus(ctx); err != nil {
			return err
		}
	}
	return s.startFunctions(ctx) // last: it needs the other services' addresses
}

// Close stops every process the stack started and removes a temporary data
// directory. It is safe to call more than once.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	procs, closers := s.procs, s.closers
	s.mu.Unlock()

	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(procs) - 1; i >= 0; i-- {
		stopProcess(procs[i])
	}
	if s.tempDir {
		if err := os.RemoveAll(s.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// OnClose registers f to run when the stack closes, before child processes
// are stopped (in-process services use it).
func (s *Stack) OnClose(f func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closers = append(s.closers, f)
}

type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartProcess runs a child process that is tied to this stack's lifetime:
// its own process group, killed if this process dies, stopped by Close. The
// returned channel closes when the process exits.
func (s *Stack) StartProcess(name string, cmd *exec.Cmd) (<-chan struct{}, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.opts.Output != nil {
		w := &prefixWriter{prefix: "[" + name + "] ", w: s.opts.Output}
		cmd.Stdout, cmd.Stderr = w, w
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("stack: start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	s.log.Info("started", "service", name, "pid", cmd.Process.Pid)
	return p.exited, nil
}

// stopProcess asks the process group to stop, then kills it if it lingers.
func stopProcess(p *proc) {
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.exited
	}
	// Children of the leader (if any) share its group; make sure none survive.
	_ = syscall.Kill(pgid, syscall.SIGKILL)
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago (all held open together, so none is handed out twice).
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("stack: free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// WaitTCP polls addr until it accepts a connection, the process exits, or the
// deadline passes.
func WaitTCP(ctx context.Context, addr string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stack: %s not accepting connections after %s: %w", addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return fmt.Errorf("stack: process for %s exited before it was ready", addr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// FindRoot walks up from the working directory to the directory holding
// infra/local/package.json. SPEMIGRATE_ROOT overrides the search.
func FindRoot() (string, error) {
	if r := os.Getenv("SPEMIGRATE_ROOT"); r != "" {
		return r, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "infra", "local", "package.json")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("stack: cannot find the repository root (no infra/local/package.json above the working directory); set SPEMIGRATE_ROOT")
		}
		dir = parent
	}
}

// prefixWriter prefixes each line a child writes with its service name.
type prefixWriter struct {
	mu     sync.Mutex
	prefix string
	w      io.Writer
	midLn  bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		if !p.midLn {
			if _, err := io.WriteString(p.w, p.prefix); err != nil {
				return 0, err
			}
		}
		i := indexByte(b, '\n')
		if i < 0 {
			_, err := p.w.Write(b)
			p.midLn = true
			return n, err
		}
		if _, err := p.w.Write(b[:i+1]); err != nil {
			return 0, err
		}
		p.midLn = false
		b = b[i+1:]
	}
	return n, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
