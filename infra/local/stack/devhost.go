package stack

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/spemigrate/spemigrate/infra/local/devhost"
)

// FunctionsOptions runs the Functions dev host (infra/local/devhost)
// in-process, in front of an already built handler binary.
type FunctionsOptions struct {
	// AppRoot holds host.json. Empty: the repository root.
	AppRoot string
	// FunctionsDir holds the function folders, relative to AppRoot. Empty:
	// "handlers", this repository's layout. "." is the layout Azure reads
	// (and a deployment package unzipped somewhere has): the function
	// folders beside host.json.
	FunctionsDir string
	// HandlerPath is the handler executable (go build -o <path>
	// ./cmd/handler). Empty with an AppRoot: the path host.json names under
	// it, as the real host starts it. Required for the repository root.
	HandlerPath string
	// Settings are app settings laid over the launcher's own: the storage
	// connection (AzureWebJobsStorage), the Service Bus connection
	// (ServiceBusConnection) and, when the Graph emulator runs,
	// SPEMIGRATE_GRAPH_URL, SPEMIGRATE_GRAPH_CA_FILE (its certificate) and
	// SPEMIGRATE_GRAPH_TOKEN ([GraphToken], which the emulator's strict
	// profile accepts) and, with Azurite, SPEMIGRATE_ALLOWED_BLOB_HOSTS (its blob
	// endpoint, so blob sources there are accepted). Local folder sources stay
	// refused unless SPEMIGRATE_LOCAL_SOURCE_ROOTS is set here.
	Settings map[string]string
	// HTTPAddr is the front door's address. Empty: a free loopback port.
	HTTPAddr string
	// CrashLimit is devhost.Config.CrashLimit: unexpected handler exits
	// within 30 minutes before the host gives up. Zero: the real host's 3.
	CrashLimit int
	// DuplicateDelivery is devhost.Config.DuplicateDelivery: every Service
	// Bus message delivered twice, concurrently (the chaos suite turns it on).
	DuplicateDelivery bool
}

// functionsFields are the Stack fields describing the dev host.
type functionsFields struct {
	// FunctionsURL is the dev host's front door (http://127.0.0.1:N); HTTP
	// functions live under /api, the admin endpoints under /admin
	// (GET /admin/stats counts handler invocations per function).
	FunctionsURL string
	// FunctionsHost is the running dev host (its Stats, the handler's pid).
	FunctionsHost *devhost.Host
}

func (s *Stack) startFunctions(ctx context.Context) error {
	o := s.opts.Functions
	if o == nil {
		return nil
	}
	root, fdir := o.AppRoot, o.FunctionsDir
	if root == "" {
		if o.HandlerPath == "" {
			return fmt.Errorf("stack: Options.Functions.HandlerPath is empty; build the handler (go build -o bin/handler ./cmd/handler) and pass its path, or set AppRoot to a packaged app")
		}
		root = s.Root
	}
	if fdir == "" {
		fdir = "handlers"
	}
	addr := o.HTTPAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	settings := map[string]string{}
	if s.StorageConnectionString != "" {
		settings["AzureWebJobsStorage"] = s.StorageConnectionString
		// Sources on the local Azurite name this setting: a request may
		// never name the app's own settings (docs/security.md).
		settings["SOURCE_STORAGE"] = s.StorageConnectionString
		settings["SPEMIGRATE_ALLOWED_CONNECTION_SETTINGS"] = "SOURCE_STORAGE"
	}
	if u, err := url.Parse(s.BlobEndpoint); err == nil && u.Host != "" {
		// Azurite is a plain-http loopback endpoint: the app refuses blob
		// sources there unless it is allow-listed (docs/security.md).
		settings["SPEMIGRATE_ALLOWED_BLOB_HOSTS"] = u.Host + ",localhost:" + u.Port()
	}
	if s.ServiceBusConnectionString != "" {
		settings["ServiceBusConnection"] = s.ServiceBusConnectionString
	}
	if s.GraphURL != "" {
		settings["SPEMIGRATE_GRAPH_URL"] = s.GraphURL
		settings["SPEMIGRATE_GRAPH_CA_FILE"] = s.GraphCAFile
		settings["SPEMIGRATE_GRAPH_TOKEN"] = GraphToken
	}
	for k, v := range o.Settings {
		settings[k] = v
	}
	h, err := devhost.New(devhost.Config{
		AppRoot:      root,
		FunctionsDir: fdir,
		HandlerPath:  o.HandlerPath,
		Settings:     settings,
		HTTPAddr:     addr,
		StateDir:     filepath.Join(s.Dir, "devhost"),
		Logger:       s.log.With("service", "devhost"),

		CrashLimit:        o.CrashLimit,
		DuplicateDelivery: o.DuplicateDelivery,
	})
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		h.Close()
		return fmt.Errorf("stack: %w", err)
	}
	s.OnClose(h.Close)
	s.FunctionsURL = h.HTTPURL()
	s.FunctionsHost = h
	return nil
}
