// Package localapp runs spemigrate's Functions app on the local stack: it
// builds the handler binary, starts Azurite, the Service Bus emulator, the
// Graph SPE emulator and the Functions dev host in front of the handler, and
// hands clients what they need: the HTTP front door, a source container with
// a SAS, and a Graph reader for verification. The demo and the end-to-end
// tests start the app through it.
package localapp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/verify"
)

// GraphToken is the bearer token local clients send to the Graph emulator
// (a JWT with the role its strict profile requires).
const GraphToken = stack.GraphToken

// Options tune the app.
type Options struct {
	// Root is the repository root; empty: found from the working directory.
	Root string
	// HandlerPath is a handler binary already built; empty: Start builds one
	// into the stack's data directory.
	HandlerPath string
	// AppRoot is a packaged app, such as an unzipped deployment package
	// (make package): the dev host runs it the way Azure does, with the
	// function folders beside host.json and the handler host.json names.
	// Nothing is built then, and HandlerPath is ignored. Empty: the
	// repository's layout (handlers/*/function.json).
	AppRoot string
	// Graph tunes the Graph emulator (faults, knobs).
	Graph stack.GraphOptions
	// ServiceBusConfig is a queue configuration file; empty: the app's queues.
	ServiceBusConfig string
	// Settings are extra app settings for the handler (they win over the
	// defaults: a fresh state key, a drain every 5 seconds and a poll every
	// 2 seconds).
	Settings map[string]string
	Logger   *slog.Logger
	// Output receives the services' and handler's own output; nil drops it.
	Output io.Writer
	// Dir keeps the services' data across runs; empty: a temporary directory.
	Dir string
	// HTTPAddr is the front door's address; empty: a free loopback port.
	HTTPAddr string
	// CrashLimit and DuplicateDelivery are the dev host's chaos settings
	// (stack.FunctionsOptions); zero values behave as the real host.
	CrashLimit        int
	DuplicateDelivery bool
}

// App is the running app and its stack.
type App struct {
	*stack.Stack
	// APIURL is the front door (http://127.0.0.1:N); the API is under /api.
	APIURL      string
	HandlerPath string
}

// BuildHandler compiles ./cmd/handler of the repository at root into out.
func BuildHandler(ctx context.Context, root, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/handler")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("localapp: go build ./cmd/handler: %w\n%s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Start builds the handler (unless given) and starts the whole stack with
// the app on it. Close the App to stop everything.
func Start(ctx context.Context, o Options) (*App, error) {
	root := o.Root
	if root == "" {
		var err error
		if root, err = stack.FindRoot(); err != nil {
			return nil, err
		}
	}
	handler := o.HandlerPath
	if o.AppRoot != "" {
		handler = ""
	}
	var buildDir string
	if handler == "" && o.AppRoot == "" {
		d, err := os.MkdirTemp("", "spemigrate-handler-")
		if err != nil {
			return nil, fmt.Errorf("localapp: %w", err)
		}
		buildDir = d
		handler = filepath.Join(d, "handler")
		if err := BuildHandler(ctx, root, handler); err != nil {
			os.RemoveAll(d)
			return nil, err
		}
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("localapp: state key: %w", err)
	}
	settings := map[string]string{
		"FUNCTIONS_WORKER_RUNTIME":  "custom",
		"SPEMIGRATE_STATE_KEY":      base64.StdEncoding.EncodeToString(key),
		"SPEMIGRATE_DRAIN_SCHEDULE": "*/5 * * * * *",
		// The emulator finishes jobs in seconds; Graph's own pace needs the
		// 60 s default.
		"SPEMIGRATE_POLL_INTERVAL": "2s",
	}
	for k, v := range o.Settings {
		settings[k] = v
	}
	functions := &stack.FunctionsOptions{HandlerPath: handler, Settings: settings, HTTPAddr: o.HTTPAddr,
		CrashLimit: o.CrashLimit, DuplicateDelivery: o.DuplicateDelivery}
	if o.AppRoot != "" {
		// Azure's layout: function folders at the root, the handler where
		// host.json says.
		functions.AppRoot, functions.FunctionsDir = o.AppRoot, "."
	}
	s, err := stack.Start(ctx, stack.Options{
		Root:             root,
		Dir:              o.Dir,
		Azurite:          true,
		Graph:            true,
		GraphOptions:     o.Graph,
		ServiceBus:       true,
		ServiceBusConfig: o.ServiceBusConfig,
		Functions:        functions,
		Logger:           o.Logger,
		Output:           o.Output,
	})
	if err != nil {
		if buildDir != "" {
			os.RemoveAll(buildDir)
		}
		return nil, err
	}
	if buildDir != "" {
		s.OnClose(func() error { return os.RemoveAll(buildDir) })
	}
	return &App{Stack: s, APIURL: s.FunctionsURL, HandlerPath: handler}, nil
}

// Container returns a client for a blob container in Azurite (created or
// not).
func (a *App) Container(name string) (*container.Client, error) {
	svc, err := service.NewClientFromConnectionString(a.StorageConnectionString, nil)
	if err != nil {
		return nil, fmt.Errorf("localapp: storage client: %w", err)
	}
	return svc.NewContainerClient(name), nil
}

// ContainerSASURL returns the container's URL with a read+list SAS valid for
// ttl, the way a user hands spemigrate an Azure Blob source.
func (a *App) ContainerSASURL(name string, ttl time.Duration) (string, error) {
	cred, err := service.NewSharedKeyCredential(stack.AzuriteAccount, stack.AzuriteKey)
	if err != nil {
		return "", fmt.Errorf("localapp: %w", err)
	}
	q, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		StartTime:     time.Now().Add(-5 * time.Minute).UTC(),
		ExpiryTime:    time.Now().Add(ttl).UTC(),
		Permissions:   (&sas.ContainerPermissions{Read: true, List: true}).String(),
		ContainerName: name,
	}.SignWithSharedKey(cred)
	if err != nil {
		return "", fmt.Errorf("localapp: sign SAS: %w", err)
	}
	return strings.TrimRight(a.BlobEndpoint, "/") + "/" + name + "?" + q.Encode(), nil
}

// GraphReader reads the emulator's drives the way a Graph client does.
func (a *App) GraphReader() (*verify.Graph, error) {
	return verify.NewGraph(a.GraphURL, a.GraphCAFile, GraphToken)
}
