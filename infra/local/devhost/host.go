// Package devhost runs an Azure Functions custom-handler app locally the way
// the Azure Functions host does: it reads host.json, local.settings.json and
// each function.json, starts and supervises the handler executable, and
// invokes it over the host's HTTP protocol (double-encoded strings, JSON
// content type, Outputs/Logs/ReturnValue) for Service Bus triggers (through
// azservicebus), NCRONTAB timers and an HTTP front door. It exists because
// Azure Functions Core Tools cannot be installed offline; see docs/devhost.md
// for where it differs from the real host.
package devhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/google/uuid"
)

// Config says which app to run and how.
type Config struct {
	// AppRoot holds host.json and (optionally) local.settings.json.
	AppRoot string
	// FunctionsDir holds one folder per function, each with a function.json.
	// Empty: AppRoot, where Azure looks. Relative paths are resolved against
	// AppRoot (this repository keeps its functions under "handlers").
	FunctionsDir string
	// HandlerPath overrides customHandler.description.defaultExecutablePath
	// (tests and the launcher build the binary elsewhere).
	HandlerPath string
	// Settings are app settings laid over local.settings.json's Values;
	// together they are the handler's environment and resolve %NAME%.
	Settings map[string]string
	// HTTPAddr is the front door's listen address. Empty: 127.0.0.1 with
	// local.settings.json's Host.LocalHttpPort, or 7071. Use "127.0.0.1:0"
	// for a free port and read HTTPURL.
	HTTPAddr string
	// StateDir holds the timer status files. Empty: <AppRoot>/.func-dev.
	StateDir string
	// ReadyTimeout bounds the wait for the handler to answer GET /.
	// Zero: 30 s, the host's default.
	ReadyTimeout time.Duration
	// Now is the clock for timers and payload timestamps. Nil: time.Now.
	Now func() time.Time
	// Logger receives the host's and the handler's log lines. Nil discards.
	Logger *slog.Logger
	// CrashLimit is how many unexpected handler exits within 30 minutes
	// make the host give up. Zero: 3, the real host's limit (which is not
	// configurable there); a chaos run that kills the handler on purpose
	// raises it.
	CrashLimit int
	// DuplicateDelivery delivers every Service Bus message twice,
	// concurrently, to the handler: at-least-once delivery when a lock is
	// lost and the message goes to a second receiver. Off by default; the
	// real host does this only when a lock expires (see docs/devhost.md).
	DuplicateDelivery bool
}

// Host is a running dev host.
type Host struct {
	cfg       Config
	hc        *hostConfig
	settings  map[string]string
	functions []*Function
	byName    map[string]*Function
	log       *slog.Logger
	now       func() time.Time
	loc       *time.Location
	stateDir  string

	worker *worker
	client *http.Client
	stats  *stats
	active *activeSet

	listener net.Listener
	server   *http.Server

	sbMu      sync.Mutex
	sbClients map[string]*azservicebus.Client
	sbSenders map[string]*azservicebus.Sender

	runCtx context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once
}

// New loads and validates the app's configuration. It starts nothing.
func New(cfg Config) (*Host, error) {
	if cfg.AppRoot == "" {
		return nil, errors.New("devhost: Config.AppRoot is empty; set it to the folder holding host.json")
	}
	root, err := filepath.Abs(cfg.AppRoot)
	if err != nil {
		return nil, fmt.Errorf("devhost: app root: %w", err)
	}
	cfg.AppRoot = root
	hc, err := loadHostJSON(filepath.Join(root, "host.json"))
	if err != nil {
		return nil, err
	}
	ls, err := loadLocalSettings(filepath.Join(root, "local.settings.json"))
	if err != nil {
		return nil, err
	}
	settings := mergeSettings(ls.Values, cfg.Settings)
	fdir := underRoot(root, cfg.FunctionsDir)
	fns, err := discoverFunctions(fdir, settings, hc.Allowlist)
	if err != nil {
		return nil, err
	}
	if len(fns) == 0 {
		return nil, fmt.Errorf("devhost: no function.json under %s/*/; set Config.FunctionsDir to the folder that holds the function folders", fdir)
	}
	cfg.setDefaults(ls.Host.LocalHTTPPort)
	loc, err := timeLocation(settings)
	if err != nil {
		return nil, err
	}
	h := newHost(cfg, hc, settings, fns, loc)
	exe, err := h.resolveExecutable()
	if err != nil {
		return nil, err
	}
	h.worker = &worker{
		exe: exe, args: handlerArgs(hc.Arguments, settings), dir: underRoot(root, hc.WorkingDirectory),
		env: handlerEnv(settings), port: hc.HandlerPort,
		appRoot: root, timeout: cfg.ReadyTimeout, log: h.log.With("component", "handler-process"),
		active: h.active.single, crashLimit: cfg.CrashLimit,
	}
	h.client = newHandlerClient(hc.FunctionTimeout)
	return h, nil
}

// mergeSettings lays the Config's settings over local.settings.json's
// Values, the way app settings override the file.
func mergeSettings(values, overrides map[string]string) map[string]string {
	settings := map[string]string{}
	for k, v := range values {
		settings[k] = v
	}
	for k, v := range overrides {
		settings[k] = v
	}
	return settings
}

// underRoot resolves a host.json or Config path against the app root: empty
// is the root itself, and relative paths are taken from it.
func underRoot(root, p string) string {
	if p == "" {
		return root
	}
	if !filepath.IsAbs(p) {
		return filepath.Join(root, p)
	}
	return p
}

// setDefaults fills HTTPAddr (127.0.0.1 with local.settings.json's
// Host.LocalHttpPort, or 7071) and ReadyTimeout (30 s) when they are unset.
func (cfg *Config) setDefaults(localHTTPPort int) {
	if cfg.HTTPAddr == "" {
		port := 7071
		if localHTTPPort != 0 {
			port = localHTTPPort
		}
		cfg.HTTPAddr = "127.0.0.1:" + strconv.Itoa(port)
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	if cfg.CrashLimit <= 0 {
		cfg.CrashLimit = defaultCrashLimit
	}
}

// timeLocation is the zone timers run in: WEBSITE_TIME_ZONE, or UTC.
func timeLocation(settings map[string]string) (*time.Location, error) {
	tz := lookupFold(settings, "WEBSITE_TIME_ZONE")
	if tz == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("devhost: WEBSITE_TIME_ZONE %q: %w (use a tz database name such as Europe/Paris)", tz, err)
	}
	return loc, nil
}

// newHost assembles a Host from the loaded configuration, defaulting the
// logger, clock and state directory. The worker and client are set by New.
func newHost(cfg Config, hc *hostConfig, settings map[string]string, fns []*Function, loc *time.Location) *Host {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	stateDir := cfg.StateDir
	if stateDir == "" {
		stateDir = filepath.Join(cfg.AppRoot, ".func-dev")
	}
	h := &Host{
		cfg: cfg, hc: hc, settings: settings, functions: fns, byName: map[string]*Function{},
		log: log, now: now, loc: loc, stateDir: stateDir,
		stats: newStats(), active: &activeSet{m: map[*invocation]struct{}{}},
		sbClients: map[string]*azservicebus.Client{}, sbSenders: map[string]*azservicebus.Sender{},
	}
	for _, f := range fns {
		h.byName[f.Name] = f
	}
	return h
}

// handlerArgs expands %NAME% in host.json's arguments from the app settings,
// then the environment (unknown names become empty), and drops arguments
// that end up empty.
func handlerArgs(arguments []string, settings map[string]string) []string {
	var args []string
	for _, a := range arguments {
		a = settingRE.ReplaceAllStringFunc(a, func(tok string) string {
			if v := lookupFold(settings, tok[1:len(tok)-1]); v != "" {
				return v
			}
			if v := os.Getenv(tok[1 : len(tok)-1]); v != "" {
				return v
			}
			return ""
		})
		if a != "" {
			args = append(args, a)
		}
	}
	return args
}

// newHandlerClient is the client for calls to the handler. Like the host's,
// it does not follow redirects and times out at functionTimeout + 1 minute;
// the invocation context enforces functionTimeout itself.
func newHandlerClient(functionTimeout time.Duration) *http.Client {
	c := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if functionTimeout > 0 {
		c.Timeout = functionTimeout + time.Minute
	}
	return c
}

func (h *Host) resolveExecutable() (string, error) {
	if h.cfg.HandlerPath != "" {
		p, err := filepath.Abs(h.cfg.HandlerPath)
		if err != nil {
			return "", fmt.Errorf("devhost: handler path: %w", err)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("devhost: Config.HandlerPath: %w", err)
		}
		return p, nil
	}
	p := h.hc.ExecutablePath
	if !filepath.IsAbs(p) {
		// Joined with the app root only if that file exists; otherwise a
		// command on PATH, as the host does.
		if joined := filepath.Join(h.cfg.AppRoot, p); fileExists(joined) {
			return joined, nil
		}
		return "", fmt.Errorf("devhost: %s: customHandler.description.defaultExecutablePath %q does not exist under %s; build the handler first (go build -o %s ./cmd/handler) or set Config.HandlerPath", filepath.Join(h.cfg.AppRoot, "host.json"), p, h.cfg.AppRoot, p)
	}
	if !fileExists(p) {
		return "", fmt.Errorf("devhost: handler executable %s does not exist", p)
	}
	return p, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Functions lists the discovered functions, sorted by name.
func (h *Host) Functions() []*Function { return h.functions }

// Start launches the handler, waits until it is ready, then starts the
// triggers and the HTTP front door. Close stops everything; ctx only bounds
// the start-up.
func (h *Host) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.Background())
	h.runCtx, h.cancel = runCtx, cancel
	l, err := net.Listen("tcp", h.cfg.HTTPAddr)
	if err != nil {
		cancel()
		return fmt.Errorf("devhost: HTTP front door on %s: %w", h.cfg.HTTPAddr, err)
	}
	h.listener = l
	// Resolve every Service Bus connection before anything runs, so a
	// missing setting is a start-up error.
	for _, fn := range h.functions {
		if fn.Disabled {
			continue
		}
		for _, b := range append([]Binding{fn.Trigger}, fn.Outputs...) {
			if b.Type == "serviceBusTrigger" || b.Type == "serviceBus" {
				if _, err := h.sbClient(fn, b); err != nil {
					l.Close()
					cancel()
					return err
				}
			}
		}
	}
	if err := h.worker.start(ctx); err != nil {
		h.worker.close()
		l.Close()
		cancel()
		return err
	}
	h.server = &http.Server{Handler: http.HandlerFunc(h.serveHTTP), ReadHeaderTimeout: 30 * time.Second}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		if err := h.server.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.Error("HTTP front door stopped", "err", err)
		}
	}()
	for _, fn := range h.functions {
		if fn.Disabled {
			h.log.Info("function disabled", "function", fn.Name)
			continue
		}
		switch fn.Trigger.Type {
		case "serviceBusTrigger":
			if err := h.startServiceBus(runCtx, fn); err != nil {
				h.Close()
				return err
			}
		case "timerTrigger":
			h.wg.Add(1)
			go func() { defer h.wg.Done(); h.runTimer(runCtx, fn) }()
		}
		h.log.Info("function loaded", "function", fn.Name, "trigger", fn.Trigger.Type)
	}
	h.log.Info("dev host started", "url", h.HTTPURL())
	return nil
}

// HTTPURL is the front door's base URL (without the route prefix).
func (h *Host) HTTPURL() string {
	if h.listener == nil {
		return ""
	}
	return "http://" + h.listener.Addr().String()
}

// RoutePrefix is host.json's extensions.http.routePrefix ("api" by default).
func (h *Host) RoutePrefix() string { return h.hc.RoutePrefix }

// Close stops the triggers, the front door and the handler.
func (h *Host) Close() error {
	h.closed.Do(func() {
		if h.cancel != nil {
			h.cancel()
		}
		if h.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = h.server.Shutdown(ctx)
			cancel()
		} else if h.listener != nil {
			h.listener.Close()
		}
		h.wg.Wait()
		h.closeServiceBus()
		if h.worker != nil {
			h.worker.close()
		}
	})
	return nil
}

// Invoke runs a non-HTTP function once with input as its trigger value, as
// the host's admin endpoint does (Service Bus: input is the message body;
// timer: a TimerInfo with IsPastDue false), and waits for the result.
func (h *Host) Invoke(ctx context.Context, name, input string) error {
	fn, ok := h.byName[name]
	if !ok {
		return fmt.Errorf("devhost: no function named %q", name)
	}
	if fn.IsHTTP() {
		return fmt.Errorf("devhost: %s is an HTTP function; call it through the front door", name)
	}
	inv := &invocation{fn: fn, id: uuid.NewString(), data: map[string]any{}, metadata: map[string]any{}}
	switch fn.Trigger.Type {
	case "timerTrigger":
		inv.data[fn.Trigger.Name] = h.timerInfo(fn, nil, false)
	default:
		if fn.Trigger.DataType == "binary" {
			inv.data[fn.Trigger.Name] = dotnetBytes(input)
		} else {
			inv.data[fn.Trigger.Name] = dotnetString(input)
			inv.triggerString = &input
		}
	}
	res, err := h.send(ctx, inv)
	if err != nil {
		return err
	}
	return h.writeOutputs(ctx, inv, res)
}

// FunctionStats counts one function's handler invocations.
type FunctionStats struct {
	Invocations int64 `json:"invocations"`
	Failures    int64 `json:"failures"`
	InFlight    int64 `json:"inFlight"`
}

// Stats is what GET /admin/stats returns.
type Stats struct {
	Functions       map[string]FunctionStats `json:"functions"`
	HandlerRestarts int                      `json:"handlerRestarts"`
	// DuplicateDeliveries counts the extra deliveries Config.DuplicateDelivery made.
	DuplicateDeliveries int64 `json:"duplicateDeliveries"`
}

// HandlerPID is the process id of the running handler, or 0 while none is
// running (between a crash and its restart).
func (h *Host) HandlerPID() int { return h.worker.pid() }

// Stats returns the invocation counters.
func (h *Host) Stats() Stats {
	h.stats.mu.Lock()
	dups := h.stats.duplicates
	h.stats.mu.Unlock()
	return Stats{Functions: h.stats.snapshot(), HandlerRestarts: h.worker.restartCount(), DuplicateDeliveries: dups}
}

type stats struct {
	mu         sync.Mutex
	m          map[string]*FunctionStats
	duplicates int64
}

func newStats() *stats { return &stats{m: map[string]*FunctionStats{}} }

func (s *stats) get(name string) *FunctionStats {
	fs := s.m[name]
	if fs == nil {
		fs = &FunctionStats{}
		s.m[name] = fs
	}
	return fs
}

func (s *stats) begin(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.get(name)
	fs.Invocations++
	fs.InFlight++
}

func (s *stats) end(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.get(name)
	fs.InFlight--
	if err != nil {
		fs.Failures++
	}
}

func (s *stats) snapshot() map[string]FunctionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]FunctionStats, len(s.m))
	for k, v := range s.m {
		out[k] = *v
	}
	return out
}

// activeSet tracks in-flight invocations so handler output can be
// attributed to one when it is the only one running.
type activeSet struct {
	mu sync.Mutex
	m  map[*invocation]struct{}
}

func (a *activeSet) add(inv *invocation) {
	a.mu.Lock()
	a.m[inv] = struct{}{}
	a.mu.Unlock()
}

func (a *activeSet) remove(inv *invocation) {
	a.mu.Lock()
	delete(a.m, inv)
	a.mu.Unlock()
}

func (a *activeSet) single() (string, string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.m) != 1 {
		return "", "", false
	}
	for inv := range a.m {
		return inv.fn.Name, inv.id, true
	}
	return "", "", false
}

// httpFunctions returns the enabled HTTP functions in route precedence order.
func (h *Host) httpFunctions() []*Function {
	var out []*Function
	for _, f := range h.functions {
		if f.IsHTTP() && !f.Disabled {
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return lessPrecedence(out[i].route.precedence(), out[j].route.precedence())
	})
	return out
}
