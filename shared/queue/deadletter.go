package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// receiveWait bounds how long a receive waits for messages that a peek has
// shown to be there.
const receiveWait = 5 * time.Second

// DeadLetter is one message read from a dead-letter subqueue.
type DeadLetter struct {
	Queue         string
	Body          []byte
	MessageID     string
	DeliveryCount int
	Reason        string // DeadLetterReason, e.g. MaxDeliveryCountExceeded
	Description   string // DeadLetterErrorDescription
	// Handle is the implementation's receipt for Complete.
	Handle any
}

// FailureReason is the failure recorded for what a dead-lettered message
// was working on.
func (dl DeadLetter) FailureReason() string {
	// The delivery count is left out: reading the dead letter is itself a
	// delivery, so the count is one more than the attempts that failed; the
	// broker's description states those.
	r := fmt.Sprintf("message dead-lettered on queue %s", dl.Queue)
	switch {
	case dl.Reason != "" && dl.Description != "":
		r += ": " + dl.Reason + ": " + dl.Description
	case dl.Reason != "":
		r += ": " + dl.Reason
	}
	return r
}

// ServiceBusDeadLetters reads dead-letter subqueues with azservicebus.
type ServiceBusDeadLetters struct {
	Client *azservicebus.Client

	mu        sync.Mutex
	receivers map[string]*azservicebus.Receiver
}

func (s *ServiceBusDeadLetters) receiver(queue string) (*azservicebus.Receiver, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.receivers[queue]; ok {
		return r, nil
	}
	r, err := s.Client.NewReceiverForQueue(queue, &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	if err != nil {
		return nil, err
	}
	if s.receivers == nil {
		s.receivers = map[string]*azservicebus.Receiver{}
	}
	s.receivers[queue] = r
	return r, nil
}

// Receive peeks first so an empty subqueue costs one round trip, not a wait.
func (s *ServiceBusDeadLetters) Receive(ctx context.Context, queue string, max int) ([]DeadLetter, error) {
	r, err := s.receiver(queue)
	if err != nil {
		return nil, err
	}
	peeked, err := r.PeekMessages(ctx, 1, nil)
	if err != nil {
		return nil, fmt.Errorf("peek: %w", err)
	}
	if len(peeked) == 0 {
		return nil, nil
	}
	rctx, cancel := context.WithTimeout(ctx, receiveWait)
	defer cancel()
	msgs, err := r.ReceiveMessages(rctx, max, nil)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("receive: %w", err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		dl := DeadLetter{Queue: queue, Body: m.Body, MessageID: m.MessageID, DeliveryCount: int(m.DeliveryCount), Handle: m}
		if m.DeadLetterReason != nil {
			dl.Reason = *m.DeadLetterReason
		}
		if m.DeadLetterErrorDescription != nil {
			dl.Description = *m.DeadLetterErrorDescription
		}
		out = append(out, dl)
	}
	return out, nil
}

// Complete settles a message Receive returned.
func (s *ServiceBusDeadLetters) Complete(ctx context.Context, dl DeadLetter) error {
	m, ok := dl.Handle.(*azservicebus.ReceivedMessage)
	if !ok {
		return errors.New("dead letter was not received by this reader")
	}
	r, err := s.receiver(dl.Queue)
	if err != nil {
		return err
	}
	return r.CompleteMessage(ctx, m, nil)
}

// Close closes the receivers.
func (s *ServiceBusDeadLetters) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, r := range s.receivers {
		errs = append(errs, r.Close(ctx))
	}
	s.receivers = nil
	return errors.Join(errs...)
}
