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
	// Cursor to persist and pass to the next call: the last
	// @odata.nextLink, verbatim. It is opaque; "" means "from the start".
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

// Events reads the job's progress events after cursor. It follows each
// @odata.nextLink exactly as the service wrote it (Graph's paging rules
// forbid taking the link apart, and the service may page with $skiptoken or
// $skip alike) and stops at a page without a next link, at a next link equal
// to the one just read (the service's "nothing new yet"), at a link already
// read in this call, or after the client's page limit. An empty page that
// carries a new next link does not end the drain.
//
// cursor is "" (from the start), a next link from an earlier
// [EventBatch.Cursor], or, for cursors stored by older versions, a bare
// $skiptoken value.
//
// A 404 matches [ErrJobNotFound] (and [ErrProgressExpired] when the events
// expired); a 400 matches [ErrStaleCursor]: restart from "".
func (c *Client) Events(ctx context.Context, containerID, jobID, cursor string) (EventBatch, error) {
	if err := checkID("containerID", containerID); err != nil {
		return EventBatch{}, err
	}
	if err := checkID("jobID", jobID); err != nil {
		return EventBatch{}, err
	}
	base := c.containerPath(containerID, "migrationJobs", url.PathEscape(jobID), "progressEvents")
	link, err := c.cursorLink(base, cursor)
	if err != nil {
		return EventBatch{Cursor: cursor}, err
	}
	out := EventBatch{Cursor: cursor}
	seen := map[string]bool{link: true}
	for page := 0; page < c.pageLimit; page++ {
		var resp struct {
			Value    []Event `json:"value"`
			NextLink string  `json:"@odata.nextLink"`
		}
		if err := c.do(ctx, OpListEvents, http.MethodGet, link, nil, &resp); err != nil {
			return out, err
		}
		for i := range resp.Value {
			if resp.Value[i].Completed() {
				out.Completed = true
			}
		}
		out.Events = append(out.Events, resp.Value...)
		if resp.NextLink == "" {
			// Resume by re-reading this page: its events de-duplicate.
			return out, nil
		}
		next, err := c.nextLink(OpListEvents, link, resp.NextLink)
		if err != nil {
			return out, err
		}
		out.Cursor = next
		if next == link || seen[next] {
			return out, nil
		}
		seen[next] = true
		link = next
		if page == c.pageLimit-1 {
			out.More = true
		}
	}
	return out, nil
}

// cursorLink turns a stored cursor into the URL to read.
func (c *Client) cursorLink(base, cursor string) (string, error) {
	switch {
	case cursor == "":
		return base, nil
	case strings.Contains(cursor, "://"):
		link, err := c.nextLink(OpListEvents, base, cursor)
		if err != nil {
			// Stored under another Graph root (a changed BaseURL, a
			// restarted emulator): paging restarts from the beginning.
			return "", fmt.Errorf("%w: %v", ErrStaleCursor, err)
		}
		return link, nil
	}
	// A bare $skiptoken, as cursors were stored before next links were kept.
	return base + "?$skiptoken=" + url.QueryEscape(cursor), nil
}

// nextLink resolves a next link against the page it came from and refuses
// one that leaves the configured Graph root: the bearer token must never be
// sent to another host because a response said so.
func (c *Client) nextLink(op Op, from, next string) (string, error) {
	f, err := url.Parse(from)
	if err != nil {
		return "", fmt.Errorf("graph: %s: bad page URL: %w", op, err)
	}
	n, err := url.Parse(next)
	if err != nil {
		return "", fmt.Errorf("graph: %s: @odata.nextLink is not a URL", op)
	}
	abs := f.ResolveReference(n)
	root, _ := url.Parse(c.root)
	if !strings.EqualFold(abs.Scheme, root.Scheme) || !strings.EqualFold(abs.Host, root.Host) {
		return "", fmt.Errorf("graph: %s: @odata.nextLink points outside %s://%s; refusing to follow it", op, root.Scheme, root.Host)
	}
	if n.IsAbs() {
		// Verbatim: re-serialising could re-encode the service's query.
		return next, nil
	}
	return abs.String(), nil
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
