package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
)

const submitUsage = `Usage: spemigrate submit [flags] [REQUEST.json | -]

Starts a migration. The request is a migration request file (see docs/api.md),
or is built from --source and --target. It is checked here first: nothing is
sent for an invalid request.

  spemigrate submit request.json
  spemigrate submit --source 'https://acct.blob.core.windows.net/docs?sv=…&sig=…' --target 'b!…' --watch
  spemigrate submit --queue request.json     # drop it on the provision queue instead of HTTP

Flags:
`

func runSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, submitUsage); fs.PrintDefaults() }
	base, key := apiFlags(fs)
	id := fs.String("id", "", "client-chosen migration `id` (makes the submission idempotent)")
	idemKey := fs.String("idempotency-key", "", "Idempotency-Key header: a retry with the same `key` starts nothing new")
	src := fs.String("source", "", "source: an Azure Blob container `URL` (with a SAS, or read by managed identity) or an absolute local folder")
	prefix := fs.String("prefix", "", "only names under this `prefix` of the source")
	target := fs.String("target", "", "target SharePoint Embedded container `id` (b!…)")
	folder := fs.String("folder", "", "destination `folder` inside the container")
	toQueue := fs.Bool("queue", false, "send the request to the provision queue with azservicebus instead of POSTing it")
	sbConn := fs.String("servicebus", firstEnv("SPEMIGRATE_SERVICEBUS", "ServiceBusConnection"), "Service Bus connection `string` for --queue (env SPEMIGRATE_SERVICEBUS or ServiceBusConnection)")
	sbNS := fs.String("namespace", os.Getenv("ServiceBusConnection__fullyQualifiedNamespace"), "Service Bus `namespace` for --queue with your Azure identity, e.g. mybus.servicebus.windows.net")
	watchToo := fs.Bool("watch", false, "watch the migration's progress after submitting (HTTP only)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	body, err := requestBody(fs.Args(), *src, *prefix, *target, *folder, *id)
	if err != nil {
		return err
	}
	req, err := request.DecodeBytes(body)
	if err != nil {
		return fmt.Errorf("%w\nNothing was sent.", err)
	}

	if *toQueue {
		if *watchToo {
			return errors.New("--watch needs the HTTP API; run `spemigrate watch ID` against the Function App")
		}
		return submitToQueue(ctx, req, *sbConn, *sbNS, stdout)
	}
	c, err := newAPIClient(*base, *key)
	if err != nil {
		return err
	}
	h := http.Header{}
	if *idemKey != "" {
		h.Set("Idempotency-Key", *idemKey)
	}
	var m api.Migration
	resp, err := c.do(ctx, http.MethodPost, "/api/migrations", body, h, &m)
	if err != nil {
		return err
	}
	verb := "started"
	if resp.StatusCode == http.StatusOK {
		verb = "already exists (nothing new started)"
	}
	fmt.Fprintf(stdout, "migration %s %s\n  status: %s%s\n", m.ID, verb, c.base, resp.Header.Get("Location"))
	if *watchToo {
		return watch(ctx, c, m.ID, 2*time.Second, stdout)
	}
	return nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// requestBody reads the request file, or builds a request from flags.
func requestBody(files []string, src, prefix, target, folder, id string) ([]byte, error) {
	if len(files) > 1 {
		return nil, fmt.Errorf("one request file at most, got %d", len(files))
	}
	if len(files) == 1 {
		if src != "" || target != "" {
			return nil, errors.New("give a request file or --source/--target, not both")
		}
		var data []byte
		var err error
		if files[0] == "-" {
			data, err = io.ReadAll(io.LimitReader(os.Stdin, request.MaxBodyBytes+1))
		} else {
			data, err = os.ReadFile(files[0])
		}
		if err != nil {
			return nil, fmt.Errorf("read request: %w", err)
		}
		if id == "" {
			return data, nil
		}
		// --id overrides the file's id.
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return data, nil // Decode reports the syntax error with its position
		}
		m["id"] = id
		return json.Marshal(m)
	}
	if src == "" || target == "" {
		return nil, errors.New("give a request file, or both --source and --target (see spemigrate submit -h)")
	}
	r := map[string]any{"v": request.Version, "target": map[string]any{"containerId": target}}
	if id != "" {
		r["id"] = id
	}
	s := map[string]any{}
	if filepath.IsAbs(src) {
		s["kind"], s["path"] = request.KindLocalFolder, src
	} else {
		s["kind"], s["containerUrl"] = request.KindAzureBlob, src
	}
	if prefix != "" {
		s["prefix"] = prefix
	}
	r["source"] = s
	if folder != "" {
		r["target"].(map[string]any)["folder"] = folder
	}
	return json.Marshal(r)
}

// submitToQueue drops the request on the provision queue, as another system
// would. The MessageId is the request id (or a fresh one), so a retried send
// within the queue's duplicate-detection window is dropped by Service Bus.
func submitToQueue(ctx context.Context, req request.Request, conn, ns string, stdout io.Writer) error {
	cfg := queue.Config{ConnectionString: conn}
	if conn == "" {
		if ns == "" {
			return errors.New("--queue needs --servicebus (a connection string) or --namespace (with your Azure identity)")
		}
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return fmt.Errorf("azure identity: %w", err)
		}
		cfg = queue.Config{Namespace: ns, Credential: cred}
	}
	client, err := queue.NewClient(cfg)
	if err != nil {
		return err
	}
	defer client.Close(context.WithoutCancel(ctx))
	name, _ := queue.DefaultQueues().For(queue.StepProvision)
	sender, err := client.NewSender(name, nil)
	if err != nil {
		return fmt.Errorf("provision queue: %w", err)
	}
	defer sender.Close(context.WithoutCancel(ctx))
	messageID := req.ID
	if messageID == "" {
		messageID = fmt.Sprintf("cli-%d", time.Now().UnixNano())
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ct := "application/json"
	if err := sender.SendMessage(ctx, &azservicebus.Message{Body: body, MessageID: &messageID, ContentType: &ct}, nil); err != nil {
		return fmt.Errorf("send to the %s queue: %w", name, err)
	}
	id := req.ID
	if id == "" {
		id = request.IDForMessage(messageID)
	}
	fmt.Fprintf(stdout, "request sent to the %s queue (message %s)\n  migration id: %s\n  follow it with: spemigrate watch %s\n", name, messageID, id, id)
	return nil
}

// shortErr keeps multi-line API errors readable on one screen.
func shortErr(err error) string { return strings.TrimSpace(err.Error()) }
