package handlers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
)

// ServiceBusAnyBody is ServiceBus for a queue whose senders are outside the
// app (the provision queue takes requests from other systems): a body that
// is not a JSON object still reaches h, as the bytes that were sent, so h
// can record why it is refused instead of the message vanishing into a log
// line.
func ServiceBusAnyBody(log *slog.Logger, binding string, h MessageHandler) Function {
	inner := ServiceBus(log, binding, h)
	return FunctionFunc(func(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error) {
		raw, ok := req.Data[binding]
		if !ok {
			return inner.Invoke(ctx, req)
		}
		if _, err := MessageBody(raw); err == nil {
			return inner.Invoke(ctx, req)
		}
		meta := ServiceBusMeta(req.Metadata)
		if err := h(ctx, sentBytes(raw), meta); err != nil {
			if IsPermanent(err) {
				log.Warn("message completed after a permanent failure", "messageId", meta.MessageID, "err", err)
				return &InvokeResponse{Logs: []string{"permanent failure: " + err.Error()}}, nil
			}
			return nil, err
		}
		return &InvokeResponse{}, nil
	})
}

// sentBytes recovers what the sender put in a message body from the value
// the host passed: base64 for dataType binary, else the string itself.
func sentBytes(raw json.RawMessage) []byte {
	s, err := HostString(raw)
	if err != nil {
		return bytes.TrimSpace(raw)
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b
	}
	return []byte(s)
}
