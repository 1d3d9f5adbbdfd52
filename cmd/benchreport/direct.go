package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/staging"
	"github.com/spemigrate/spemigrate/shared/state"
	"github.com/spemigrate/spemigrate/shared/wiring"
)

// directEngine runs the pipeline engine with its production components
// and delivers its Service Bus messages itself, as the Functions host would
// (4 concurrent calls per queue, as host.json sets), counting every
// delivery as one handler invocation. It is the basis of figures 4–5 when
// the Functions app cannot run.
type directEngine struct {
	basis     string
	pollEvery time.Duration
	eng       *pipeline.Engine
	sender    *queue.Sender
	client    *azservicebus.Client
	log       *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	count  map[string]int64
}

const directPollInterval = 2 * time.Second

func newDirectEngine(ctx context.Context, s *stack.Stack, tableConn, key string, log *slog.Logger) (*directEngine, error) {
	svc, err := aztables.NewServiceClientFromConnectionString(tableConn, nil)
	if err != nil {
		return nil, fmt.Errorf("table client: %w", err)
	}
	st, err := state.New(svc, state.Options{SealKey: key})
	if err != nil {
		return nil, err
	}
	if err := st.CreateTables(ctx); err != nil {
		return nil, err
	}
	cred, err := graph.NewCredential(graph.CredentialConfig{Kind: graph.CredentialStatic, StaticToken: "benchreport"})
	if err != nil {
		return nil, err
	}
	gc, err := graph.New(cred, graph.Options{BaseURL: s.GraphURL, Transport: s.Graph.HTTPClient()})
	if err != nil {
		return nil, err
	}
	client, err := queue.NewClient(queue.Config{ConnectionString: s.ServiceBusConnectionString})
	if err != nil {
		return nil, err
	}
	sender := queue.NewSenderFromClient(client, queue.DefaultQueues())
	stager, err := staging.New(staging.Options{})
	if err != nil {
		client.Close(ctx)
		return nil, err
	}
	deps, err := wiring.Deps(wiring.Components{State: st, Graph: gc, Queue: sender, Stager: stager, Getenv: os.Getenv, Logger: log})
	if err != nil {
		client.Close(ctx)
		return nil, err
	}
	eng, err := pipeline.New(deps, pipeline.Config{PollInterval: directPollInterval})
	if err != nil {
		client.Close(ctx)
		return nil, err
	}
	d := &directEngine{
		basis:     "pipeline engine driven directly",
		pollEvery: directPollInterval,
		eng:       eng, sender: sender, client: client, log: log,
		count: map[string]int64{},
	}
	rctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	q := queue.DefaultQueues()
	for _, name := range []string{q.Provision, q.StageBatch, q.Submit, q.Poll} {
		for range 4 {
			r, err := client.NewReceiverForQueue(name, nil)
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("receiver %s: %w", name, err)
			}
			d.wg.Add(1)
			go d.consume(rctx, name, r)
		}
	}
	return d, nil
}

func (d *directEngine) consume(ctx context.Context, name string, r *azservicebus.Receiver) {
	defer d.wg.Done()
	defer r.Close(context.Background())
	for ctx.Err() == nil {
		ms, err := r.ReceiveMessages(ctx, 1, nil)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("receive", "queue", name, "err", err)
			}
			continue
		}
		for _, m := range ms {
			d.mu.Lock()
			d.count[name]++
			d.mu.Unlock()
			if err := d.handle(ctx, m.Body); err != nil {
				d.log.Warn("step failed; message abandoned", "queue", name, "err", err)
				r.AbandonMessage(context.Background(), m, nil)
				continue
			}
			r.CompleteMessage(context.Background(), m, nil)
		}
	}
}

func (d *directEngine) handle(ctx context.Context, body []byte) error {
	msg, err := queue.Decode(body)
	if err != nil {
		return err
	}
	return d.eng.Run(ctx, msg)
}

func (d *directEngine) start(ctx context.Context, id, containerID string, body []byte) (string, error) {
	req, err := request.DecodeBytes(body)
	if err != nil {
		return "", err
	}
	_, err = d.eng.Start(ctx, &state.Migration{ID: id, ContainerID: containerID, Request: req})
	return id, err
}

func (d *directEngine) invocations(context.Context) (map[string]int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]int64, len(d.count))
	for k, v := range d.count {
		out[k] = v
	}
	return out, nil
}

func (d *directEngine) describe() (string, time.Duration) { return d.basis, d.pollEvery }

func (d *directEngine) Close() error {
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(d.sender.Close(ctx), d.client.Close(ctx))
}
