package handlers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"time"
)

// ServiceBusAnyBody is ServiceBus for a queue whose senders are outside the
// app (the provision queue takes requests from other systems): a body that
// is not a JSON object still reaches h, as the bytes that were sent, so h
// can record why it is refused instead of the message vanishing into a log
// line. Everything else (deadline, permanent and transient outcomes) is
// ServiceBus's.
func ServiceBusAnyBody(log *slog.Logger, binding string, dataType DataType, deadline time.Duration, h MessageHandler) Function {
	inner := ServiceBus(log, binding, dataType, deadline, h)
	return FunctionFunc(func(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error) {
		raw, ok := req.Data[binding]
		if !ok {
			return inner.Invoke(ctx, req)
		}
		if _, err := MessageBody(raw, dataType); err == nil {
			return inner.Invoke(ctx, req)
		}
		sent, ok := sentBytes(raw, dataType)
		if !ok {
			return inner.Invoke(ctx, req) // not even the host's encoding: dropped and logged
		}
		// An empty object passes MessageBody; the handler is given the
		// bytes that were sent in its place.
		r := *req
		r.Data = make(map[string]json.RawMessage, len(req.Data))
		for k, v := range req.Data {
			r.Data[k] = v
		}
		r.Data[binding] = json.RawMessage(`{}`)
		return ServiceBus(log, binding, Text, deadline, func(ctx context.Context, _ []byte, meta MessageMeta) error {
			return h(ctx, sent, meta)
		}).Invoke(ctx, &r)
	})
}

// sentBytes recovers what the sender put in a message body from the value
// the host passed: base64 for dataType binary, else the string itself.
func sentBytes(raw json.RawMessage, dataType DataType) ([]byte, bool) {
	s, err := HostString(raw)
	if err != nil {
		return nil, false
	}
	if dataType == Binary {
		b, err := base64.StdEncoding.DecodeString(s)
		return b, err == nil
	}
	return []byte(s), true
}
