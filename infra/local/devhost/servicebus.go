package devhost

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/google/uuid"
)

// connectionString resolves a binding's "connection" the way the extension
// does: empty means AzureWebJobsServiceBus, and the AzureWebJobs prefix may
// be omitted.
func (h *Host) connectionString(fn *Function, b Binding) (string, error) {
	name := b.Connection
	if name == "" {
		name = "AzureWebJobsServiceBus"
	}
	for _, key := range []string{name, "AzureWebJobs" + name} {
		if v := lookupFold(h.settings, key); v != "" {
			return v, nil
		}
	}
	if lookupFold(h.settings, name+"__fullyQualifiedNamespace") != "" {
		return "", fmt.Errorf("devhost: function %s binding %q: %s__fullyQualifiedNamespace is an identity-based connection, which the local emulator cannot use; set %s to the emulator's connection string", fn.Name, b.Name, name, name)
	}
	return "", fmt.Errorf("devhost: function %s binding %q: app setting %q (the Service Bus connection) is not set; add it to local.settings.json Values or Config.Settings", fn.Name, b.Name, name)
}

func (h *Host) sbClient(fn *Function, b Binding) (*azservicebus.Client, error) {
	cs, err := h.connectionString(fn, b)
	if err != nil {
		return nil, err
	}
	h.sbMu.Lock()
	defer h.sbMu.Unlock()
	if c := h.sbClients[cs]; c != nil {
		return c, nil
	}
	c, err := azservicebus.NewClientFromConnectionString(cs, nil)
	if err != nil {
		// The SDK's message may echo the connection string; name the
		// setting instead.
		return nil, fmt.Errorf("devhost: function %s binding %q: the Service Bus connection string in setting %q is not valid", fn.Name, b.Name, b.Connection)
	}
	h.sbClients[cs] = c
	return c, nil
}

func (h *Host) closeServiceBus() {
	h.sbMu.Lock()
	defer h.sbMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range h.sbSenders {
		_ = s.Close(ctx)
	}
	for _, c := range h.sbClients {
		_ = c.Close(ctx)
	}
	h.sbSenders, h.sbClients = map[string]*azservicebus.Sender{}, map[string]*azservicebus.Client{}
}

func (h *Host) startServiceBus(ctx context.Context, fn *Function) error {
	cs, err := h.connectionString(fn, fn.Trigger)
	if err != nil {
		return err
	}
	c, err := h.sbClient(fn, fn.Trigger)
	if err != nil {
		return err
	}
	opts := &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModePeekLock}
	var rcv *azservicebus.Receiver
	if fn.Trigger.QueueName != "" {
		rcv, err = c.NewReceiverForQueue(fn.Trigger.QueueName, opts)
	} else {
		rcv, err = c.NewReceiverForSubscription(fn.Trigger.TopicName, fn.Trigger.SubscriptionName, opts)
	}
	if err != nil {
		return fmt.Errorf("devhost: function %s: Service Bus receiver: %w", fn.Name, err)
	}
	ns := namespaceOf(cs)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.receiveLoop(ctx, fn, rcv, ns)
	}()
	return nil
}

// namespaceOf extracts the host of a connection string's Endpoint.
func namespaceOf(cs string) string {
	for _, part := range strings.Split(cs, ";") {
		k, v, ok := strings.Cut(part, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "Endpoint") {
			v = strings.TrimPrefix(strings.TrimSpace(v), "sb://")
			return strings.TrimSuffix(v, "/")
		}
	}
	return ""
}

// receiveLoop keeps up to maxConcurrentCalls messages of one function in
// flight, as the extension's message processor does.
func (h *Host) receiveLoop(ctx context.Context, fn *Function, rcv *azservicebus.Receiver, ns string) {
	sem := make(chan struct{}, h.hc.MaxConcurrentCalls)
	var inflight sync.WaitGroup
	defer func() {
		inflight.Wait()
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = rcv.Close(cctx)
		cancel()
	}()
	backoff := 100 * time.Millisecond
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		msgs, err := rcv.ReceiveMessages(ctx, 1, nil)
		if err != nil {
			<-sem
			if ctx.Err() != nil {
				return
			}
			h.log.Error("Service Bus receive failed; retrying", "function", fn.Name, "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if len(msgs) == 0 {
			<-sem
			continue
		}
		inflight.Add(1)
		go func(m *azservicebus.ReceivedMessage) {
			defer func() { <-sem; inflight.Done() }()
			h.processMessage(ctx, fn, rcv, m, ns)
		}(msgs[0])
	}
}

func (h *Host) processMessage(ctx context.Context, fn *Function, rcv *azservicebus.Receiver, m *azservicebus.ReceivedMessage, ns string) {
	renewCtx, stopRenew := context.WithCancel(ctx)
	var renewDone sync.WaitGroup
	renewDone.Add(1)
	go func() { defer renewDone.Done(); h.renewLock(renewCtx, fn, rcv, m) }()

	var dup sync.WaitGroup
	if h.cfg.DuplicateDelivery {
		dup.Add(1)
		go func() { defer dup.Done(); h.deliverDuplicate(ctx, fn, m, ns) }()
	}
	inv := h.messageInvocation(fn, m, ns)
	res, err := h.send(ctx, inv)
	if err == nil {
		err = h.writeOutputs(ctx, inv, res)
	}
	dup.Wait()
	stopRenew()
	renewDone.Wait()

	// Settle even when the host is closing, so the message is not left
	// locked until its lock expires.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err == nil {
		if serr := rcv.CompleteMessage(sctx, m, nil); serr != nil {
			h.log.Error("completing the message failed", "function", fn.Name, "invocation_id", inv.id, "message_id", m.MessageID, "err", serr)
		}
		return
	}
	if serr := rcv.AbandonMessage(sctx, m, nil); serr != nil {
		h.log.Error("abandoning the message failed", "function", fn.Name, "invocation_id", inv.id, "message_id", m.MessageID, "err", serr)
		return
	}
	h.log.Warn("message abandoned; Service Bus will redeliver it", "function", fn.Name, "invocation_id", inv.id, "message_id", m.MessageID, "delivery_count", m.DeliveryCount)
}

// deliverDuplicate is the second delivery of Config.DuplicateDelivery: the
// same message handed to the handler again while the first delivery runs, as
// Service Bus does when a lock is lost and another receiver takes the
// message. Like that receiver it sees DeliveryCount + 1 and its own lock
// token, and its outputs are sent when it succeeds; the message is settled by
// the first delivery's outcome, so a failure here is only logged.
func (h *Host) deliverDuplicate(ctx context.Context, fn *Function, m *azservicebus.ReceivedMessage, ns string) {
	inv := h.messageInvocation(fn, m, ns)
	inv.metadata["DeliveryCount"] = dotnetScalar(fmt.Sprint(m.DeliveryCount + 1))
	inv.metadata["LockToken"] = dotnetString(uuid.NewString())
	h.stats.mu.Lock()
	h.stats.duplicates++
	h.stats.mu.Unlock()
	res, err := h.send(ctx, inv)
	if err == nil {
		err = h.writeOutputs(ctx, inv, res)
	}
	if err != nil {
		h.log.Warn("duplicate delivery failed (the message is settled by the first delivery)", "function", fn.Name, "invocation_id", inv.id, "message_id", m.MessageID, "err", err)
	}
}

// renewLock keeps the message locked while the function runs, for at most
// maxAutoLockRenewalDuration (negative: without limit).
func (h *Host) renewLock(ctx context.Context, fn *Function, rcv *azservicebus.Receiver, m *azservicebus.ReceivedMessage) {
	start := time.Now()
	for {
		wait := 10 * time.Second
		if m.LockedUntil != nil {
			wait = time.Until(*m.LockedUntil) / 2
		}
		wait = max(wait, 500*time.Millisecond)
		limit := h.hc.MaxLockRenewal
		if limit >= 0 && time.Since(start)+wait > limit {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := rcv.RenewMessageLock(ctx, m, nil); err != nil {
			if ctx.Err() == nil {
				h.log.Warn("renewing the message lock failed", "function", fn.Name, "message_id", m.MessageID, "err", err)
			}
			return
		}
	}
}

// dotnetMaxDateTimeOffset is DateTimeOffset.MaxValue in whole seconds: the
// ExpiresAt of a message without a time to live.
var dotnetMaxDateTimeOffset = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// messageInvocation builds Data and Metadata for one message (spec §3.3).
func (h *Host) messageInvocation(fn *Function, m *azservicebus.ReceivedMessage, ns string) *invocation {
	inv := &invocation{fn: fn, id: uuid.NewString(), data: map[string]any{}, metadata: map[string]any{}}
	if fn.Trigger.DataType == "binary" {
		inv.data[fn.Trigger.Name] = dotnetBytes(m.Body)
	} else {
		s := string(m.Body)
		inv.data[fn.Trigger.Name] = dotnetString(s)
		inv.triggerString = &s
	}
	md := inv.metadata
	for _, k := range []string{"MessageReceiver", "MessageSession", "MessageActions", "SessionActions", "ReceiveActions"} {
		md[k] = dotnetObject(`{}`)
	}
	client, _ := json.Marshal(map[string]any{"FullyQualifiedNamespace": ns, "IsClosed": false, "TransportType": 0, "Identifier": ns + "-" + uuid.NewString()[:8]})
	md["Client"] = dotnetObject(client)
	md["DeliveryCount"] = dotnetScalar(fmt.Sprint(m.DeliveryCount))
	lt, _ := uuid.FromBytes(m.LockToken[:])
	md["LockToken"] = dotnetString(lt.String())
	md["MessageId"] = dotnetString(m.MessageID)
	if m.SequenceNumber != nil {
		md["SequenceNumber"] = dotnetScalar(fmt.Sprint(*m.SequenceNumber))
	}
	var enq time.Time
	if m.EnqueuedTime != nil {
		enq = m.EnqueuedTime.UTC()
		md["EnqueuedTimeUtc"] = dotnetDateTime(enq)
		md["EnqueuedTime"] = dotnetDateTimeOffset(enq)
	}
	exp := dotnetMaxDateTimeOffset
	switch {
	case m.ExpiresAt != nil:
		exp = m.ExpiresAt.UTC()
	case m.TimeToLive != nil && !enq.IsZero() && *m.TimeToLive < 100*365*24*time.Hour:
		exp = enq.Add(*m.TimeToLive)
	}
	md["ExpiresAtUtc"] = dotnetDateTime(exp)
	md["ExpiresAt"] = dotnetDateTimeOffset(exp)
	optional := map[string]*string{
		"DeadLetterSource": m.DeadLetterSource, "ContentType": m.ContentType, "ReplyTo": m.ReplyTo,
		"To": m.To, "Subject": m.Subject, "Label": m.Subject, "CorrelationId": m.CorrelationID,
		"SessionId": m.SessionID, "ReplyToSessionId": m.ReplyToSessionID, "PartitionKey": m.PartitionKey,
	}
	for k, v := range optional {
		if v != nil {
			md[k] = dotnetString(*v)
		}
	}
	props := m.ApplicationProperties
	if props == nil {
		props = map[string]any{}
	}
	pj, err := json.Marshal(props)
	if err != nil {
		pj = []byte(`{}`)
	}
	md["ApplicationProperties"] = dotnetObject(pj)
	md["UserProperties"] = dotnetObject(pj)
	return inv
}

// writeOutputs sends a successful invocation's Service Bus outputs. A send
// failure fails the invocation, as a failed flush does in the host.
func (h *Host) writeOutputs(ctx context.Context, inv *invocation, res *result) error {
	for _, b := range inv.fn.Outputs {
		if b.Type != "serviceBus" {
			continue
		}
		v, ok := outputValue(res, b)
		if !ok {
			h.log.Warn("no value for output binding", "function", inv.fn.Name, "invocation_id", inv.id, "binding", b.Name)
			continue
		}
		bodies, warnings := messageBodies(v, b.DataType == "binary")
		for _, w := range warnings {
			h.log.Warn(w, "function", inv.fn.Name, "invocation_id", inv.id, "binding", b.Name)
		}
		sender, err := h.sbSender(inv.fn, b)
		if err != nil {
			return err
		}
		for _, body := range bodies {
			ct := "text/plain"
			if err := sender.SendMessage(ctx, &azservicebus.Message{Body: []byte(body), ContentType: &ct}, nil); err != nil {
				return &invocationError{Function: inv.fn.Name, ID: inv.id, Reason: fmt.Sprintf("output binding %q: sending to %s: %v", b.Name, entityOf(b), err)}
			}
		}
	}
	return nil
}

func entityOf(b Binding) string {
	if b.QueueName != "" {
		return b.QueueName
	}
	return b.TopicName
}

func (h *Host) sbSender(fn *Function, b Binding) (*azservicebus.Sender, error) {
	c, err := h.sbClient(fn, b)
	if err != nil {
		return nil, err
	}
	cs, _ := h.connectionString(fn, b)
	key := cs + "\x00" + entityOf(b)
	h.sbMu.Lock()
	defer h.sbMu.Unlock()
	if s := h.sbSenders[key]; s != nil {
		return s, nil
	}
	s, err := c.NewSender(entityOf(b), nil)
	if err != nil {
		return nil, fmt.Errorf("devhost: function %s: sender for %s: %w", fn.Name, entityOf(b), err)
	}
	h.sbSenders[key] = s
	return s, nil
}
