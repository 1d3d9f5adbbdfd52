package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// Queues names the queue of each step.
type Queues struct {
	Provision  string
	StageBatch string
	Submit     string
	Poll       string
}

// DefaultQueues are the queue names the Functions app binds to.
func DefaultQueues() Queues {
	return Queues{Provision: "provision", StageBatch: "stage-batch", Submit: "submit", Poll: "poll"}
}

// For returns the queue of a step.
func (q Queues) For(s Step) (string, error) {
	var name string
	switch s {
	case StepProvision:
		name = q.Provision
	case StepStageBatch:
		name = q.StageBatch
	case StepSubmit:
		name = q.Submit
	case StepPoll:
		name = q.Poll
	default:
		return "", fmt.Errorf("queue: step %q is unknown", s)
	}
	if name == "" {
		return "", fmt.Errorf("queue: no queue configured for step %s", s)
	}
	return name, nil
}

func (q Queues) withDefaults() Queues {
	d := DefaultQueues()
	if q.Provision == "" {
		q.Provision = d.Provision
	}
	if q.StageBatch == "" {
		q.StageBatch = d.StageBatch
	}
	if q.Submit == "" {
		q.Submit = d.Submit
	}
	if q.Poll == "" {
		q.Poll = d.Poll
	}
	return q
}

// Config says how to reach Service Bus. Set either ConnectionString, or
// Namespace (e.g. "myns.servicebus.windows.net") with Credential for
// identity-based access.
type Config struct {
	ConnectionString string
	Namespace        string
	Credential       azcore.TokenCredential
	// Queues defaults to DefaultQueues for every empty name.
	Queues Queues
	// ClientOptions are passed to azservicebus (e.g. TLS for a local
	// emulator); nil for defaults.
	ClientOptions *azservicebus.ClientOptions
}

// NewClient opens an azservicebus client from cfg.
func NewClient(cfg Config) (*azservicebus.Client, error) {
	switch {
	case cfg.ConnectionString != "" && cfg.Namespace != "":
		return nil, errors.New("queue: set either the Service Bus connection string or the namespace, not both")
	case cfg.ConnectionString != "":
		c, err := azservicebus.NewClientFromConnectionString(cfg.ConnectionString, cfg.ClientOptions)
		if err != nil {
			// The SDK's message can quote the connection string; keep the key out.
			return nil, errors.New("queue: Service Bus connection string is malformed (expected Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…)")
		}
		return c, nil
	case cfg.Namespace != "":
		if cfg.Credential == nil {
			return nil, errors.New("queue: a Service Bus namespace needs a credential (identity-based access)")
		}
		ns := strings.TrimSuffix(strings.TrimPrefix(cfg.Namespace, "sb://"), "/")
		return azservicebus.NewClient(ns, cfg.Credential, cfg.ClientOptions)
	}
	return nil, errors.New("queue: Service Bus is not configured: set a connection string or a fully-qualified namespace")
}

// Sender sends step messages to their queues. Safe for concurrent use.
type Sender struct {
	client *azservicebus.Client
	owned  bool
	queues Queues

	mu      sync.Mutex
	senders map[string]*azservicebus.Sender
}

// NewSender opens a client from cfg; Close closes it.
func NewSender(cfg Config) (*Sender, error) {
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	s := NewSenderFromClient(c, cfg.Queues)
	s.owned = true
	return s, nil
}

// NewSenderFromClient sends through an existing client, which the caller
// keeps and closes.
func NewSenderFromClient(c *azservicebus.Client, queues Queues) *Sender {
	return &Sender{client: c, queues: queues.withDefaults(), senders: map[string]*azservicebus.Sender{}}
}

func (s *Sender) sender(queue string) (*azservicebus.Sender, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if snd, ok := s.senders[queue]; ok {
		return snd, nil
	}
	snd, err := s.client.NewSender(queue, nil)
	if err != nil {
		return nil, fmt.Errorf("queue: open sender for %s: %w", queue, err)
	}
	s.senders[queue] = snd
	return snd, nil
}

// Send sends each message to its step's queue: at once when NotBefore is
// zero or past, scheduled otherwise. MessageId is set from the content (see
// [Message.MessageID]). It stops at the first failure; messages sent before
// it stay sent, so callers retry the whole list and rely on duplicate
// detection.
func (s *Sender) Send(ctx context.Context, msgs ...Message) error {
	now := time.Now()
	for _, m := range msgs {
		body, err := m.Encode()
		if err != nil {
			return err
		}
		name, err := s.queues.For(m.Step)
		if err != nil {
			return err
		}
		snd, err := s.sender(name)
		if err != nil {
			return err
		}
		id := m.MessageID()
		contentType := "application/json"
		subject := string(m.Step)
		sbm := &azservicebus.Message{
			Body:        body,
			MessageID:   &id,
			ContentType: &contentType,
			Subject:     &subject,
		}
		if !m.NotBefore.IsZero() && m.NotBefore.After(now) {
			if _, err := snd.ScheduleMessages(ctx, []*azservicebus.Message{sbm}, m.NotBefore, nil); err != nil {
				return fmt.Errorf("queue: schedule %s at %s: %w", id, m.NotBefore.UTC().Format(time.RFC3339), err)
			}
			continue
		}
		if err := snd.SendMessage(ctx, sbm, nil); err != nil {
			return fmt.Errorf("queue: send %s: %w", id, err)
		}
	}
	return nil
}

// Close closes the senders (and the client, when NewSender opened it).
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	senders := s.senders
	s.senders = map[string]*azservicebus.Sender{}
	s.mu.Unlock()
	var errs []error
	for _, snd := range senders {
		errs = append(errs, snd.Close(ctx))
	}
	if s.owned {
		errs = append(errs, s.client.Close(ctx))
	}
	return errors.Join(errs...)
}
