package devhost

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// Exit codes with a meaning to the host (spec §2.3).
const (
	exitClean   = 0   // closed, not restarted
	exitRestart = 200 // intentional restart, not counted as an error
)

// defaultCrashLimit and crashWindow: the host gives up after this many
// unexpected exits within the window (Config.CrashLimit overrides the count).
const (
	defaultCrashLimit = 3
	crashWindow       = 30 * time.Minute
)

// worker supervises the handler process: it starts it, waits until it
// answers GET /, restarts it when it exits or when the host asks (function
// timeout), and forwards its output to the log.
type worker struct {
	exe     string
	args    []string
	dir     string
	env     []string
	port    int // fixed port from host.json, 0 for a free one
	appRoot string
	timeout time.Duration // readiness deadline
	log     *slog.Logger
	active  func() (fn, id string, ok bool)
	// crashLimit is Config.CrashLimit (defaulted by New).
	crashLimit int

	mu       sync.Mutex
	cur      *workerProc
	changed  chan struct{} // closed and replaced when cur or err changes
	err      error         // set when the worker gave up
	crashes  []time.Time
	restarts int
	stderr   []string // last lines, quoted when the handler dies
	closing  bool
	wg       sync.WaitGroup
}

type workerProc struct {
	cmd     *exec.Cmd
	baseURL string
	ready   chan struct{}
	exited  chan struct{}
	killed  bool // the host killed it on purpose (timeout restart, Close)
}

func (w *worker) start(ctx context.Context) error {
	w.mu.Lock()
	w.changed = make(chan struct{})
	w.mu.Unlock()
	if err := w.spawn(); err != nil {
		return err
	}
	_, err := w.await(ctx)
	return err
}

// notifyLocked wakes everyone waiting in await.
func (w *worker) notifyLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// spawn starts a new process and the goroutines that supervise it.
func (w *worker) spawn() error {
	port := w.port
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("devhost: free port for the handler: %w", err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	id := uuid.NewString()
	cmd := exec.Command(w.exe, w.args...)
	cmd.Dir = w.dir
	cmd.Env = append(append([]string{}, w.env...),
		"FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(port),
		"FUNCTIONS_HTTPWORKER_PORT="+strconv.Itoa(port),
		"FUNCTIONS_CUSTOMHANDLER_WORKER_ID="+id,
		"FUNCTIONS_HTTPWORKER_ID="+id,
		"FUNCTIONS_APP_ROOT_PATH="+w.appRoot,
	)
	// Own process group, and killed with the host if the host dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("devhost: handler stdout: %w", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("devhost: handler stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("devhost: start handler %s: %w", w.exe, err)
	}
	p := &workerProc{
		cmd:     cmd,
		baseURL: "http://127.0.0.1:" + strconv.Itoa(port),
		ready:   make(chan struct{}),
		exited:  make(chan struct{}),
	}
	w.mu.Lock()
	if w.closing {
		// Close ran while this restart was starting: do not leave it behind.
		w.mu.Unlock()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		go func() { _, _ = io.Copy(io.Discard, stdout) }()
		go func() { _, _ = io.Copy(io.Discard, stderr) }()
		_ = cmd.Wait()
		return errors.New("devhost: host closed")
	}
	w.cur = p
	w.notifyLocked()
	w.mu.Unlock()
	w.log.Info("handler started", "pid", cmd.Process.Pid, "port", port, "exe", w.exe)

	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() { defer pipes.Done(); w.forward(stdout, false) }()
	go func() { defer pipes.Done(); w.forward(stderr, true) }()
	w.wg.Add(2)
	go func() {
		defer w.wg.Done()
		pipes.Wait()
		err := cmd.Wait()
		close(p.exited)
		w.exited(p, err)
	}()
	go func() {
		defer w.wg.Done()
		w.waitReady(p)
	}()
	return nil
}

// waitReady polls GET / every 25 ms: any HTTP response means ready.
func (w *worker) waitReady(p *workerProc) {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(w.timeout)
	for {
		resp, err := client.Get(p.baseURL + "/")
		if err == nil {
			resp.Body.Close()
			close(p.ready)
			w.log.Info("handler ready", "pid", p.cmd.Process.Pid)
			return
		}
		if time.Now().After(deadline) {
			// Counted like a crash: a handler that never gets ready must
			// not be restarted forever.
			w.log.Error("handler did not answer GET / in time; restarting it", "timeout", w.timeout)
			w.mu.Lock()
			w.stderr = append(w.stderr, fmt.Sprintf("(no answer to GET / within %s)", w.timeout))
			w.mu.Unlock()
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			return
		}
		select {
		case <-p.exited:
			return
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// exited applies the host's exit-code rules.
func (w *worker) exited(p *workerProc, err error) {
	code := p.cmd.ProcessState.ExitCode()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing || w.cur != p {
		return
	}
	switch {
	case p.killed:
		w.log.Warn("handler stopped by the host; restarting it", "pid", p.cmd.Process.Pid)
	case code == exitClean:
		w.err = errors.New("devhost: the handler exited with code 0; the host does not restart a cleanly exited handler")
		w.log.Error("handler exited with code 0 and is not restarted (as the host does)")
		w.notifyLocked()
		return
	case code == exitRestart:
		w.log.Info("handler exited with code 200 (restart request)")
	default:
		now := time.Now()
		w.crashes = append(w.crashes, now)
		for len(w.crashes) > 0 && now.Sub(w.crashes[0]) > crashWindow {
			w.crashes = w.crashes[1:]
		}
		w.log.Error("handler exited", "code", code, "err", err, "crashes_in_30m", len(w.crashes))
		if len(w.crashes) >= w.crashLimit {
			w.err = fmt.Errorf("devhost: the handler exited unexpectedly %d times within %s (last exit: %v); giving up as the host does (Config.CrashLimit); its last stderr lines: %q", w.crashLimit, crashWindow, err, w.stderr)
			w.log.Error(w.err.Error())
			w.notifyLocked()
			return
		}
	}
	w.restarts++
	w.mu.Unlock()
	err = w.spawn()
	w.mu.Lock()
	if err != nil {
		w.err = err
		w.notifyLocked()
	}
}

// await returns a ready, running process, waiting through restarts.
func (w *worker) await(ctx context.Context) (*workerProc, error) {
	for {
		w.mu.Lock()
		p, err, changed := w.cur, w.err, w.changed
		w.mu.Unlock()
		if err != nil {
			return nil, err
		}
		var ready, exited <-chan struct{}
		if p != nil {
			ready, exited = p.ready, p.exited
		}
		select {
		case <-ready:
			select {
			case <-exited:
				// Dead but not yet replaced: wait for its successor.
				select {
				case <-changed:
				case <-ctx.Done():
					return nil, fmt.Errorf("devhost: waiting for the handler to restart: %w", ctx.Err())
				}
			default:
				return p, nil
			}
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("devhost: waiting for the handler to be ready: %w", ctx.Err())
		}
	}
}

// kill stops p so the supervisor starts a new one; the host does this when
// an invocation exceeds functionTimeout.
func (w *worker) kill(p *workerProc) {
	w.mu.Lock()
	p.killed = true
	w.mu.Unlock()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

func (w *worker) close() {
	w.mu.Lock()
	w.closing = true
	if w.err == nil {
		w.err = errors.New("devhost: host closed")
	}
	if w.changed != nil {
		w.notifyLocked()
	}
	p := w.cur
	w.mu.Unlock()
	if p != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	w.wg.Wait()
}

// failed is the reason the worker gave up, or nil.
func (w *worker) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *worker) pid() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur == nil {
		return 0
	}
	select {
	case <-w.cur.exited:
		return 0
	default:
		return w.cur.cmd.Process.Pid
	}
}

func (w *worker) restartCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.restarts
}

// forward turns each output line into a log record. stdout is Information;
// stderr is Error, or Warning when the line mentions "warn" (the host's rule).
// A line is attributed to an invocation when exactly one is in flight.
func (w *worker) forward(r io.Reader, isErr bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		attrs := []any{"source", "handler"}
		if fn, id, ok := w.active(); ok {
			attrs = append(attrs, "function", fn, "invocation_id", id)
		}
		if isErr {
			w.mu.Lock()
			w.stderr = append(w.stderr, line)
			if len(w.stderr) > 3 {
				w.stderr = w.stderr[len(w.stderr)-3:]
			}
			w.mu.Unlock()
		}
		switch {
		case !isErr:
			w.log.Info(line, attrs...)
		case strings.Contains(strings.ToLower(line), "warn"):
			w.log.Warn(line, attrs...)
		default:
			w.log.Error(line, attrs...)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// handlerEnv builds the handler's environment: the host's own environment,
// then the app settings.
func handlerEnv(settings map[string]string) []string {
	env := os.Environ()
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	return env
}
