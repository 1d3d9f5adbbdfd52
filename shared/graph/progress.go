package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// EventBatch is what one [Client.Events] call read.
type EventBatch struct {
	// Events in the order the service returned them. They may repeat events
	// seen before (de-duplicate by ID when persisting).
	Events []Event
	// Cursor to persist and pass to the next call. It is opaque; "" means
	// "from the start".
	Cursor string
	// More is true when the page limit stopped the drain while the service
	// still offered further pages; call again soon rather than waiting for
	// the next poll interval.
	More bool
	// Completed is true when an event with isCompleted=true was read in this
	// batch. Completion is decided only from events (spec §7.4), never from
	// the end of paging.
	Completed bool
}

// Events reads the job's progress events after cursor, following paging
// per spec §2.4: it stops at an empty page, at a page without a next link,
// or when the next token repeats, and at most after the client's page
// limit. A 404 jobProgressExpired matches [ErrProgressExpired]; an unknown
// job matches [ErrJobNotFound].
func (c *Client) Events(ctx context.Context, containerID, jobID, cursor string) (EventBatch, error) {
	if err := checkID("containerID", containerID); err != nil {
		return EventBatch{}, err
	}
	if err := checkID("jobID", jobID); err != nil {
		return EventBatch{}, err
	}
	out := EventBatch{Cursor: cursor}
	base := c.containerPath(containerID, "migrationJobs", url.PathEscape(jobID), "progressEvents")
	seen := map[string]bool{cursor: true}
	for page := 0; page < c.pageLimit; page++ {
		u := base
		if out.Cursor != "" {
			u += "?$skiptoken=" + url.QueryEscape(out.Cursor)
		}
		var resp struct {
			Value    []Event `json:"value"`
			NextLink string  `json:"@odata.nextLink"`
		}
		if err := c.do(ctx, "list progress events", http.MethodGet, u, nil, &resp); err != nil {
			return out, err
		}
		for i := range resp.Value {
			if resp.Value[i].Completed() {
				out.Completed = true
			}
		}
		out.Events = append(out.Events, resp.Value...)
		next, ok := skipToken(resp.NextLink)
		if ok && len(resp.Value) > 0 {
			// An empty page's token (if any) points where we already are.
			out.Cursor = next
		}
		if len(resp.Value) == 0 || !ok || seen[next] {
			return out, nil
		}
		seen[next] = true
		if page == c.pageLimit-1 {
			out.More = true
		}
	}
	return out, nil
}

// skipToken extracts the $skiptoken (any casing) from a next link.
func skipToken(nextLink string) (string, bool) {
	if nextLink == "" {
		return "", false
	}
	u, err := url.Parse(nextLink)
	if err != nil {
		return "", false
	}
	for k, v := range u.Query() {
		if strings.EqualFold(strings.TrimPrefix(k, "$"), "skiptoken") && len(v) > 0 && v[0] != "" {
			return v[0], true
		}
	}
	return "", false
}

// DecodeEvents decodes a progressEvents page body; exported for tests and
// for re-reading persisted pages.
func DecodeEvents(data []byte) ([]Event, error) {
	var page struct {
		Value []Event `json:"value"`
	}
	if err := json.Unmarshal(data, &page); err != nil {
		return nil, fmt.Errorf("graph: decode progress events: %w", err)
	}
	return page.Value, nil
}
