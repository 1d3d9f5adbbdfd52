package state

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/spemigrate/spemigrate/shared/graph"
)

// TestPutEventsBatched: a page of events is one transaction per 100; a
// page read again with new events among old ones stores only the new ones.
func TestPutEventsBatched(t *testing.T) {
	s, ct := newCountingStore(t)
	ctx := context.Background()
	page := func(from, to int) []graph.Event {
		var parts []string
		for i := from; i < to; i++ {
			parts = append(parts, fmt.Sprintf(`{"@odata.type":"#microsoft.graph.sharePointMigrationJobProgressEvent","id":"e%03d","jobId":"j1","eventDateTime":"2026-03-10T09:05:40Z"}`, i))
		}
		evs, err := graph.DecodeEvents([]byte(`{"value":[` + strings.Join(parts, ",") + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	before := ct.n.Load()
	if n, err := s.PutEvents(ctx, "m1", "b1", page(0, 150)); err != nil || n != 150 {
		t.Fatalf("first page: %d, %v", n, err)
	}
	if calls := ct.n.Load() - before; calls != 2 {
		t.Errorf("150 new events took %d requests, want 2", calls)
	}
	if n, err := s.PutEvents(ctx, "m1", "b1", page(140, 160)); err != nil || n != 10 {
		t.Fatalf("overlapping page: %d new, %v; want 10", n, err)
	}
	all, err := s.ListEvents(ctx, "m1", "b1", "")
	if err != nil || len(all) != 160 {
		t.Fatalf("stored %d events, %v; want 160", len(all), err)
	}
}
