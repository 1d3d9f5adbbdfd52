// Command handler is the Azure Functions custom handler: the web server the
// Functions host starts (host.json customHandler.description, bin/handler)
// and invokes with POST /<FunctionName> for every function in handlers/.
// It reads its configuration from app settings (see handlers.LoadConfig),
// listens on FUNCTIONS_CUSTOMHANDLER_PORT on loopback, logs JSON lines to
// stdout, and stops cleanly on SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/handlers/drain"
	"github.com/spemigrate/spemigrate/handlers/migrations"
	"github.com/spemigrate/spemigrate/handlers/poll"
	"github.com/spemigrate/spemigrate/handlers/provision"
	"github.com/spemigrate/spemigrate/handlers/schedules"
	"github.com/spemigrate/spemigrate/handlers/stagebatch"
	"github.com/spemigrate/spemigrate/handlers/submit"
	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/staging"
	"github.com/spemigrate/spemigrate/shared/state"
)

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log); err != nil {
		log.Error("handler stopped", "err", err)
		fmt.Fprintln(os.Stderr, "handler:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger) error {
	cfg, err := handlers.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		return errors.New("FUNCTIONS_CUSTOMHANDLER_PORT is not set: the Functions host (or the dev host) starts this program")
	}
	app, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.close()

	mux := handlers.NewMux(log, app.functions)
	// Forwarding mode (host.json enableForwardingHttpRequest) sends HTTP
	// requests at their own path; the same API serves them.
	mux.Handle("/api/", app.api)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return fmt.Errorf("listen on FUNCTIONS_CUSTOMHANDLER_PORT %s: %w", port, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	log.Info("handler listening", "addr", ln.Addr().String(), "version", version, "functions", len(app.functions))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log.Info("handler stopping")
	return srv.Shutdown(shutdown)
}

// app is the wired handler.
type app struct {
	functions map[string]handlers.Function
	api       http.Handler
	closers   []func()
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// deps are the engine-facing pieces the functions need; split from build so
// a test can wire fakes and check the function table.
type deps struct {
	engine     *pipeline.Engine
	service    *migrations.Service
	schedules  *schedules.TableStore
	deadLetter drain.DeadLetters
}

// functionsFor maps every function folder under handlers/ to its code.
func functionsFor(d deps, log *slog.Logger) (map[string]handlers.Function, http.Handler) {
	apiHandler := (&api.Server{Backend: d.service, Schedules: d.schedules, Log: log}).Handler()
	httpFn := handlers.HTTP("req", "res", apiHandler)
	fns := map[string]handlers.Function{
		"provision":  provision.Function(&provision.Handler{Planner: d.engine, Starter: d.service, Rejecter: d.service, Log: log, IsConflict: migrations.IsConflict}),
		"stagebatch": stagebatch.Function(log, d.engine),
		"submit":     submit.Function(log, d.engine),
		"poll":       poll.Function(log, d.engine),
		"drain":      drain.Function(&drain.Handler{Drainer: d.engine, DeadLetters: d.deadLetter, Failer: d.service, Log: log}),
		"schedules":  schedules.Function(&schedules.Runner{Store: d.schedules, Starter: d.service, Log: log}),

		"api-migrations":       httpFn,
		"api-migration":        httpFn,
		"api-migration-items":  httpFn,
		"api-migration-report": httpFn,
		"api-schedules":        httpFn,
		"api-schedule":         httpFn,
	}
	return fns, apiHandler
}

func build(ctx context.Context, cfg handlers.Config, log *slog.Logger) (*app, error) {
	a := &app{}
	identity := func(clientID string) (azcore.TokenCredential, error) {
		if clientID != "" {
			return azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(clientID)})
		}
		return azidentity.NewDefaultAzureCredential(nil)
	}

	// State (and schedules) in Table Storage.
	var tables *aztables.ServiceClient
	var err error
	if cs := cfg.Storage.ConnectionString; cs != "" {
		tables, err = aztables.NewServiceClientFromConnectionString(cs, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: not a usable storage connection string", cfg.Storage.Setting)
		}
	} else {
		cred, err := identity(cfg.Storage.ClientID)
		if err != nil {
			return nil, fmt.Errorf("storage identity: %w", err)
		}
		if tables, err = aztables.NewServiceClient(cfg.Storage.Endpoint, cred, nil); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Storage.Setting, err)
		}
	}
	sealer, err := state.NewSealer(cfg.StateKey)
	if err != nil {
		return nil, fmt.Errorf("SPEMIGRATE_STATE_KEY: %w", err)
	}
	st, err := state.New(tables, state.Options{TablePrefix: cfg.TablePrefix, SealKey: cfg.StateKey})
	if err != nil {
		return nil, err
	}
	sched := schedules.NewTableStore(tables, cfg.TablePrefix, sealer)
	// Creating tables is idempotent; if storage is unreachable now, the
	// invocations fail and are retried, and the next start tries again.
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	if err := errors.Join(st.CreateTables(tctx), sched.CreateTable(tctx)); err != nil {
		log.Error("could not create the state tables; invocations will fail until storage is reachable", "err", err)
	}
	cancel()

	// Graph.
	gcred, err := graph.NewCredential(graph.CredentialConfig{
		Kind: cfg.Graph.Credential, TenantID: cfg.Graph.TenantID, ClientID: cfg.Graph.ClientID, ClientSecret: cfg.Graph.ClientSecret,
		CertificatePath: cfg.Graph.CertificatePath, CertificatePassword: cfg.Graph.CertificatePassword, StaticToken: cfg.Graph.StaticToken,
	})
	if err != nil {
		return nil, fmt.Errorf("SPEMIGRATE_GRAPH_CREDENTIAL: %w", err)
	}
	gopts := graph.Options{BaseURL: cfg.Graph.BaseURL, APIVersion: cfg.Graph.APIVersion, UserAgent: graph.UserAgent("spemigrate", "spemigrate", version)}
	if cfg.Graph.CAFile != "" {
		hc, err := trustingClient(cfg.Graph.CAFile)
		if err != nil {
			return nil, fmt.Errorf("SPEMIGRATE_GRAPH_CA_FILE: %w", err)
		}
		gopts.Transport = hc
	}
	gc, err := graph.New(gcred, gopts)
	if err != nil {
		return nil, err
	}
	if err := checkGraphPermission(ctx, cfg.Graph.PermissionCheck, gcred, gopts.Scopes, log); err != nil {
		return nil, err
	}

	// Service Bus.
	qcfg := queue.Config{ConnectionString: cfg.ServiceBus.ConnectionString}
	if qcfg.ConnectionString == "" {
		cred, err := identity(cfg.ServiceBus.ClientID)
		if err != nil {
			return nil, fmt.Errorf("service bus identity: %w", err)
		}
		qcfg = queue.Config{Namespace: cfg.ServiceBus.Endpoint, Credential: cred}
	}
	sb, err := queue.NewClient(qcfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.ServiceBus.Setting, err)
	}
	a.closers = append(a.closers, func() { _ = sb.Close(context.Background()) })
	sender := queue.NewSenderFromClient(sb, queue.Queues{})
	a.closers = append(a.closers, func() { _ = sender.Close(context.Background()) })
	dls := &drain.ServiceBusDeadLetters{Client: sb}
	a.closers = append(a.closers, func() { _ = dls.Close(context.Background()) })

	eng, err := pipeline.NewEngine(pipeline.Components{
		State: st, Sealer: sealer, Graph: gc, Queue: sender,
		Staging: staging.Options{Logger: log},
		Getenv:  os.Getenv,
		Logger:  log,
	}, pipeline.Config{PollInterval: cfg.PollInterval, PageSize: cfg.PageSize, MaxAttempts: cfg.MaxAttempts})
	if err != nil {
		return nil, err
	}
	svc := &migrations.Service{
		Engine: eng, Store: pipeline.NewTableStore(st, sealer), Lister: st,
		OpenRequest: func(m state.Migration) ([]byte, error) { return pipeline.OpenRequest(sealer, m) },
		Targets:     &pipeline.TargetCache{Graph: gc},
	}
	a.functions, a.api = functionsFor(deps{engine: eng, service: svc, schedules: sched, deadLetter: dls}, log)
	return a, nil
}

// trustingClient returns an HTTP client that also trusts the PEM roots in
// file (a Graph endpoint with a private certificate, e.g. a local emulator).
func trustingClient(file string) (*http.Client, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, nil
}
