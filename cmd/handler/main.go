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
	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/scan"
	"github.com/spemigrate/spemigrate/shared/schedule"
	"github.com/spemigrate/spemigrate/shared/spepackage"
	"github.com/spemigrate/spemigrate/shared/staging"
	"github.com/spemigrate/spemigrate/shared/state"
	"github.com/spemigrate/spemigrate/shared/wiring"
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

// identity is the managed identity clientID names (user-assigned), or the
// default credential chain.
func identity(clientID string) (azcore.TokenCredential, error) {
	if clientID != "" {
		return azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(clientID)})
	}
	return azidentity.NewDefaultAzureCredential(nil)
}

// tables is the Table Storage client for state and schedules.
func tables(cfg handlers.Config) (*aztables.ServiceClient, error) {
	if cs := cfg.Storage.ConnectionString; cs != "" {
		t, err := aztables.NewServiceClientFromConnectionString(cs, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: not a usable storage connection string", cfg.Storage.Setting)
		}
		return t, nil
	}
	cred, err := identity(cfg.Storage.ClientID)
	if err != nil {
		return nil, fmt.Errorf("storage identity: %w", err)
	}
	t, err := aztables.NewServiceClient(cfg.Storage.Endpoint, cred, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Storage.Setting, err)
	}
	return t, nil
}

// graphClient is the Graph client with the configured credential, and
// that credential and the client's options (for the permission check).
func graphClient(cfg handlers.Config) (*graph.Client, azcore.TokenCredential, graph.Options, error) {
	gcred, err := graph.NewCredential(graph.CredentialConfig{
		Kind: cfg.Graph.Credential, TenantID: cfg.Graph.TenantID, ClientID: cfg.Graph.ClientID, ClientSecret: cfg.Graph.ClientSecret,
		CertificatePath: cfg.Graph.CertificatePath, CertificatePassword: cfg.Graph.CertificatePassword, StaticToken: cfg.Graph.StaticToken,
		Cloud: cfg.Graph.Cloud,
	})
	if err != nil {
		return nil, nil, graph.Options{}, fmt.Errorf("SPEMIGRATE_GRAPH_CREDENTIAL: %w", err)
	}
	gopts := graph.Options{BaseURL: cfg.Graph.BaseURL, APIVersion: cfg.Graph.APIVersion, Company: cfg.Graph.Company, Version: version}
	if cfg.Graph.CAFile != "" {
		hc, err := trustingClient(cfg.Graph.CAFile)
		if err != nil {
			return nil, nil, graph.Options{}, fmt.Errorf("SPEMIGRATE_GRAPH_CA_FILE: %w", err)
		}
		gopts.Transport = hc
	}
	gc, err := graph.New(gcred, gopts)
	return gc, gcred, gopts, err
}

// serviceBus opens the Service Bus client the sender and the dead-letter
// reader share; a.close closes them.
func (a *app) serviceBus(cfg handlers.Config) (*queue.Sender, *queue.ServiceBusDeadLetters, error) {
	qcfg := queue.Config{ConnectionString: cfg.ServiceBus.ConnectionString}
	if qcfg.ConnectionString == "" {
		cred, err := identity(cfg.ServiceBus.ClientID)
		if err != nil {
			return nil, nil, fmt.Errorf("service bus identity: %w", err)
		}
		qcfg = queue.Config{Namespace: cfg.ServiceBus.Endpoint, Credential: cred}
	}
	sb, err := queue.NewClient(qcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cfg.ServiceBus.Setting, err)
	}
	a.closers = append(a.closers, func() { _ = sb.Close(context.Background()) })
	sender := queue.NewSenderFromClient(sb, queue.Queues{})
	a.closers = append(a.closers, func() { _ = sender.Close(context.Background()) })
	dls := &queue.ServiceBusDeadLetters{Client: sb}
	a.closers = append(a.closers, func() { _ = dls.Close(context.Background()) })
	return sender, dls, nil
}

// build wires the app: every dependency once per process.
func build(ctx context.Context, cfg handlers.Config, log *slog.Logger) (*app, error) {
	a := &app{}
	tc, err := tables(cfg)
	if err != nil {
		return nil, err
	}
	st, err := state.New(tc, state.Options{TablePrefix: cfg.TablePrefix, SealKey: cfg.StateKey})
	if err != nil {
		return nil, fmt.Errorf("SPEMIGRATE_STATE_KEY: %w", err)
	}
	sched := schedule.NewTableStore(tc, cfg.TablePrefix, st.Sealer())
	// Creating tables is idempotent; if storage is unreachable now, the
	// invocations fail and are retried, and the next start tries again.
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	if err := errors.Join(st.CreateTables(tctx), sched.CreateTable(tctx)); err != nil {
		log.Error("could not create the state tables; invocations will fail until storage is reachable", "err", err)
	}
	cancel()
	gc, gcred, gopts, err := graphClient(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkGraphPermission(ctx, cfg.Graph.PermissionCheck, gcred, gopts.Scopes, log); err != nil {
		return nil, err
	}

	sender, dls, err := a.serviceBus(cfg)
	if err != nil {
		return nil, err
	}

	// Every dependency once per process: one staging.Stager (its buffer
	// pool and MD5 lanes bound staging memory per process), one target
	// cache for the engine and its start checks.
	stager, err := staging.New(staging.Options{Logger: log, Package: spepackage.Options{MaxVersions: cfg.MaxVersions}})
	if err != nil {
		return nil, err
	}
	// A managedIdentity source without a clientId reads as the app's own
	// (user-assigned) identity, the one its storage connection uses.
	var sourceCred azcore.TokenCredential
	if id := cfg.Storage.ClientID; id != "" {
		if sourceCred, err = identity(id); err != nil {
			return nil, fmt.Errorf("source identity: %w", err)
		}
	}
	deps, err := wiring.Deps(wiring.Components{
		State: st, Graph: gc, Queue: sender, Stager: stager,
		Targets:    &wiring.TargetCache{Graph: gc},
		Getenv:     os.Getenv,
		Credential: sourceCred,
		Policy:     &cfg.Policy,
		IntIDBase:  cfg.IntIDBase,
		FirstIntID: cfg.FirstIntID,
		Logger:     log,
	})
	if err != nil {
		return nil, err
	}
	eng, err := pipeline.New(deps, pipeline.Config{
		PollInterval: cfg.PollInterval, PageSize: cfg.PageSize, MaxAttempts: cfg.MaxAttempts, MaxJobsPerContainer: cfg.MaxJobsPerContainer,
		ImportLogs: cfg.ImportLogs, ImportLogWait: cfg.ImportLogWait, InvalidPackageErrors: cfg.InvalidPackageErrors,
		SubmitLease: cfg.SubmitLease, StuckAfter: cfg.StuckAfter, PollGrace: cfg.PollGrace,
	})
	if err != nil {
		return nil, err
	}
	fa := &handlers.App{Engine: eng, DeadLetters: dls, Log: log, Deadline: cfg.StepDeadline, Policy: cfg.Policy}
	fa.Schedules = &schedule.Runner{Store: sched, Starter: fa, Log: log}
	dry := &api.DryRun{Sources: deps.Sources, Options: scan.Options{PageSize: cfg.PageSize, MaxVersions: cfg.MaxVersions}}
	dr, err := driveReader(cfg, gcred)
	if err != nil {
		return nil, err
	}
	ver := &api.EngineVerifier{Store: st, Sources: deps.Sources, Graph: dr}
	a.api = (&api.Server{Backend: &api.EngineBackend{Engine: eng, Store: st}, Schedules: sched, Scanner: dry, Verifier: ver, Log: log, Policy: cfg.Policy}).Handler()
	fa.API = a.api
	a.functions = fa.Functions()
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
