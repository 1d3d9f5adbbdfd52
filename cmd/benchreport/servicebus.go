package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/spemigrate/spemigrate/infra/local/stack"
)

// sbStats is the part of the emulator's GET /stats the report uses.
type sbStats struct {
	Total struct {
		Sent      int64 `json:"sent"`
		Received  int64 `json:"received"`
		Completed int64 `json:"completed"`
	} `json:"total"`
	Queues map[string]struct {
		Sent      int64 `json:"sent"`
		Scheduled int64 `json:"scheduled"`
		Received  int64 `json:"received"`
		Completed int64 `json:"completed"`
		Released  int64 `json:"released"`
	} `json:"queues"`
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// sbRoundTrips sends n small JSON messages one Send at a time (as the steps
// do), then receives them in batches of up to 100 and completes each. It
// returns the wall time of each phase.
func sbRoundTrips(ctx context.Context, connStr, queue string, n int) (send, recv time.Duration, err error) {
	c, err := azservicebus.NewClientFromConnectionString(connStr, nil)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close(ctx)
	s, err := c.NewSender(queue, nil)
	if err != nil {
		return 0, 0, err
	}
	defer s.Close(ctx)
	r, err := c.NewReceiverForQueue(queue, nil)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close(ctx)
	t0 := time.Now()
	for i := range n {
		body := []byte(`{"v":1,"step":"poll","migration":"m-bench","batch":"p000000-b` + strconv.Itoa(i) + `"}`)
		id := "bench-" + strconv.Itoa(i)
		if err := s.SendMessage(ctx, &azservicebus.Message{Body: body, MessageID: &id}, nil); err != nil {
			return 0, 0, fmt.Errorf("send %d: %w", i, err)
		}
	}
	send = time.Since(t0)
	t1 := time.Now()
	for got := 0; got < n; {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ms, err := r.ReceiveMessages(rctx, min(100, n-got), nil)
		cancel()
		if err != nil {
			return 0, 0, fmt.Errorf("receive after %d: %w", got, err)
		}
		for _, m := range ms {
			if err := r.CompleteMessage(ctx, m, nil); err != nil {
				return 0, 0, fmt.Errorf("complete: %w", err)
			}
		}
		got += len(ms)
	}
	return send, time.Since(t1), nil
}

// figServiceBus is figure 6: the emulator's throughput, for reference.
func (d *driver) figServiceBus(ctx context.Context) []Row {
	const name = "Service Bus emulator: send, then receive + complete, one client, messages/s"
	target := "info (the pipeline needs ≈ 5 msg/s at SharePoint's 10 TB/day)"
	n := 2000
	if d.short {
		n = 300
	}
	s, err := stack.Start(ctx, stack.Options{ServiceBus: true, Logger: d.log})
	if err != nil {
		return []Row{naRow("6", name, target, "stack: "+err.Error())}
	}
	defer s.Close()
	send, recv, err := sbRoundTrips(ctx, s.ServiceBusConnectionString, "poll", n)
	if err != nil {
		return []Row{naRow("6", name, target, err.Error())}
	}
	var st sbStats
	if err := getJSON(ctx, s.ServiceBusAdminURL+"/stats", &st); err != nil {
		return []Row{naRow("6", name, target, "stats: "+err.Error())}
	}
	total := float64(n) / (send + recv).Seconds()
	return []Row{{
		Figure: "6",
		Name: fmt.Sprintf("%s; %d messages, emulator counted sent %d, received %d (released unsettled by the client %d), completed %d",
			name, n, st.Total.Sent, st.Total.Received, st.Queues["poll"].Released, st.Total.Completed),
		Value:    fmt.Sprintf("%.0f msg/s round trip", total),
		Baseline: fmt.Sprintf("send alone %.0f msg/s; receive + complete alone %.0f msg/s", float64(n)/send.Seconds(), float64(n)/recv.Seconds()),
		Ratio:    "–",
		Target:   target,
		Result:   info,
	}}
}
