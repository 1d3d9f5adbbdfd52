package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The spec's example page (§7.3) with the documented PascalCase enum quirk,
// a non-schema errorType, an unknown property and an unknown event type.
const examplePage = `{
  "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#x",
  "value": [
    {"@odata.type": "#microsoft.graph.sharePointMigrationJobQueuedEvent", "id": "e1", "jobId": "j", "eventDateTime": "2026-03-10T09:02:12.114Z", "correlationId": "c1"},
    {"@odata.type": "#microsoft.graph.sharePointMigrationJobPostponedEvent", "id": "e2", "jobId": "j", "eventDateTime": "2026-03-10T09:03:00Z",
     "jobsInQueue": "7", "nextPickupDateTime": "2026-03-10T09:10:00Z", "reason": "busy", "totalRetryCount": 0},
    {"@odata.type": "#microsoft.graph.sharePointMigrationJobStartEvent", "id": "e3", "jobId": "j", "eventDateTime": "2026-03-10T09:05:40.020Z", "isRestarted": false, "totalRetryCount": 0},
    {"@odata.type": "#microsoft.graph.sharePointMigrationJobErrorEvent", "id": "e4", "jobId": "j", "eventDateTime": "2026-03-10T09:05:44.902Z",
     "errorLevel": "FatalError", "objectType": "UnknownFutureValue", "objectUrl": "Document Library/a.pdf", "objectId": "o1", "totalRetryCount": 0,
     "error": {"code": "-2147213196", "errorType": "Microsoft.SharePoint.SPException", "message": "Operation canceled.", "details": []},
     "brandNewProperty": {"nested": true}},
    {"@odata.type": "#microsoft.graph.sharePointMigrationJobErrorEvent", "id": "e5", "jobId": "j", "eventDateTime": "2026-03-10T09:05:45Z", "errorLevel": "WARNING", "objectType": "listItem"},
    {"@odata.type": "#microsoft.graph.sharePointMigrationJobCancelledEvent", "id": "e6", "jobId": "j", "eventDateTime": "2026-03-10T09:05:46Z", "isCancelledByUser": true},
    {"@odata.type": "#microsoft.graph.someEventFromTheFuture", "id": "e7", "jobId": "j", "eventDateTime": "2026-03-10T09:05:46.5Z", "x": 1},
    {"@odata.type": "#microsoft.graph.sharePointMigrationJobProgressEvent", "id": "e8", "jobId": "j", "eventDateTime": "2026-03-10T09:05:47.351Z",
     "isCompleted": true, "filesProcessed": 2, "bytesProcessed": 38085, "objectsProcessed": 24, "totalExpectedObjects": 15, "totalErrors": 1, "totalWarnings": 1}
  ],
  "@odata.nextLink": "https://graph.microsoft.com/v1.0/storage/fileStorage/containers/x/migrationJobs/j/progressEvents?$skiptoken=MjQxNg"
}`

func TestDecodeEventsPolymorphic(t *testing.T) {
	evs, err := DecodeEvents([]byte(examplePage))
	if err != nil {
		t.Fatal(err)
	}
	kinds := []EventKind{KindQueued, KindPostponed, KindStart, KindError, KindError, KindCancelled, KindUnknown, KindProgress}
	if len(evs) != len(kinds) {
		t.Fatalf("%d events", len(evs))
	}
	for i, k := range kinds {
		if evs[i].Kind != k {
			t.Errorf("event %d kind = %s, want %s", i, evs[i].Kind, k)
		}
	}
	if p := evs[1].Postponed; p == nil || p.JobsInQueue != 7 || p.Reason != "busy" || !p.NextPickupDateTime.Equal(time.Date(2026, 3, 10, 9, 10, 0, 0, time.UTC)) {
		t.Errorf("postponed = %+v", p)
	}
	e := evs[3].Error
	if e == nil || e.Level != LevelFatalError || e.ObjectType != ObjectUnknown || e.Error.Code != "-2147213196" || e.Error.ErrorType == "" || !e.Level.Failing() {
		t.Errorf("fatal error event = %+v", e)
	}
	if w := evs[4].Error; w.Level != LevelWarning || w.ObjectType != ObjectListItem || w.Level.Failing() {
		t.Errorf("warning event = %+v", w)
	}
	if c := evs[5].Cancelled; c == nil || !c.IsCancelledByUser {
		t.Errorf("cancelled = %+v", c)
	}
	last := evs[7]
	if !last.Completed() || last.Progress.ObjectsProcessed != 24 || last.Progress.TotalErrors != 1 {
		t.Errorf("progress = %+v", last.Progress)
	}
	if !evs[0].Time.Equal(time.Date(2026, 3, 10, 9, 2, 12, 114e6, time.UTC)) || evs[0].CorrelationID != "c1" {
		t.Errorf("base fields = %+v", evs[0])
	}
	// Raw round-trips the unknown property for persistence.
	raw, _ := json.Marshal(evs[3])
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil || back["brandNewProperty"] == nil {
		t.Errorf("raw event lost unknown properties: %s", raw)
	}
}

func token(i int) string { return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(i))) }

// eventServer serves n events in pages of size, emulator style: the
// $skiptoken is the index of the next event, and a next link is always
// present (even when exhausted) unless omitWhenDone.
func eventServer(t *testing.T, events []map[string]any, size int, omitWhenDone bool) *recorder {
	return newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		start := 0
		if tok := r.URL.Query().Get("$skiptoken"); tok != "" {
			b, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil {
				http.Error(w, "bad token", 400)
				return
			}
			start, _ = strconv.Atoi(string(b))
		}
		end := min(start+size, len(events))
		page := map[string]any{"value": events[start:end]}
		if !(omitWhenDone && end == len(events)) {
			page["@odata.nextLink"] = fmt.Sprintf("https://%s%s?$skiptoken=%s", r.Host, r.URL.Path, token(end))
		}
		writeJSON(w, 200, page)
	})
}

func mkEvents(n int, completeLast bool) []map[string]any {
	var out []map[string]any
	for i := 0; i < n; i++ {
		ev := map[string]any{"@odata.type": "#microsoft.graph.sharePointMigrationJobProgressEvent", "id": fmt.Sprintf("ev%d", i),
			"jobId": testJob, "eventDateTime": "2026-03-10T09:05:47Z", "isCompleted": completeLast && i == n-1}
		out = append(out, ev)
	}
	return out
}

func TestEventsPagingAndCursor(t *testing.T) {
	for _, omit := range []bool{false, true} {
		t.Run(fmt.Sprintf("omitNextLinkWhenDone=%v", omit), func(t *testing.T) {
			all := mkEvents(7, false)
			srv := eventServer(t, all, 3, omit)
			c := srv.client(t, nil)
			ctx := context.Background()

			b, err := c.Events(ctx, testContainer, testJob, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Events) != 7 || b.Completed || b.More {
				t.Fatalf("first drain: %d events, completed %v, more %v", len(b.Events), b.Completed, b.More)
			}
			if want := srv.srv.URL + "/v1.0" + progressPath + "?$skiptoken=" + token(7); !omit && b.Cursor != want {
				t.Errorf("cursor = %q, want the last next link %q", b.Cursor, want)
			}
			// Nothing new: the drain stops on the empty page (or re-reads
			// the last page when the link was omitted) and keeps the cursor.
			b2, err := c.Events(ctx, testContainer, testJob, b.Cursor)
			if err != nil {
				t.Fatal(err)
			}
			if !omit && len(b2.Events) != 0 {
				t.Errorf("re-drain returned %d events", len(b2.Events))
			}
			if b2.Cursor != b.Cursor {
				t.Errorf("cursor moved from %q to %q with nothing new", b.Cursor, b2.Cursor)
			}
		})
	}
}

func TestEventsCompletionOnlyFromIsCompleted(t *testing.T) {
	// The documented page still carries a next link after the end event.
	srv := eventServer(t, mkEvents(4, true), 10, false)
	b, err := srv.client(t, nil).Events(context.Background(), testContainer, testJob, "")
	if err != nil || !b.Completed || len(b.Events) != 4 {
		t.Fatalf("Completed=%v events=%d err=%v", b.Completed, len(b.Events), err)
	}
	// Paging that ends without an end event is not completion.
	srv2 := eventServer(t, mkEvents(4, false), 10, true)
	b2, err := srv2.client(t, nil).Events(context.Background(), testContainer, testJob, "")
	if err != nil || b2.Completed {
		t.Fatalf("Completed=%v err=%v: end of paging taken for completion", b2.Completed, err)
	}
}

func TestEventsStopsOnRepeatedToken(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, map[string]any{
			"value":           mkEvents(2, false),
			"@odata.nextLink": "https://" + r.Host + "/v1.0/x/progressEvents?$SkipToken=same",
		})
	})
	b, err := srv.client(t, nil).Events(context.Background(), testContainer, testJob, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.requests()); n != 2 {
		t.Errorf("%d requests; a repeated token must end the drain after the page that repeats it", n)
	}
	if want := srv.srv.URL + "/v1.0/x/progressEvents?$SkipToken=same"; b.Cursor != want {
		t.Errorf("cursor = %q, want %q", b.Cursor, want)
	}
}

func TestEventsPageLimit(t *testing.T) {
	srv := eventServer(t, mkEvents(10, false), 2, false)
	c := srv.client(t, func(o *Options) { o.PageLimit = 2 })
	b, err := c.Events(context.Background(), testContainer, testJob, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 4 || !b.More || !strings.HasSuffix(b.Cursor, "?$skiptoken="+token(4)) {
		t.Fatalf("events=%d more=%v cursor=%q", len(b.Events), b.More, b.Cursor)
	}
	var ids []string
	cursor := b.Cursor
	for more := true; more; {
		nb, err := c.Events(context.Background(), testContainer, testJob, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range nb.Events {
			ids = append(ids, e.ID)
		}
		cursor, more = nb.Cursor, nb.More
	}
	if len(ids) != 6 || ids[0] != "ev4" || ids[5] != "ev9" {
		t.Errorf("resumed ids = %v", ids)
	}
}

const progressPath = "/storage/fileStorage/containers/" + testContainer + "/migrationJobs/" + testJob + "/progressEvents"

// skipServer pages like OData's $skip/$top: next links carry a position
// and extra query parameters in an order and encoding the client must not
// rebuild. Pages listed in empty come back empty but still link onwards.
func skipServer(t *testing.T, events []map[string]any, size int, empty map[int]bool) *recorder {
	return newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		q := r.URL.Query()
		if r.URL.RawQuery != "" && q.Get("$top") != strconv.Itoa(size) {
			http.Error(w, "the link was not followed verbatim", 400)
			return
		}
		skip, _ := strconv.Atoi(q.Get("$skip"))
		pg, _ := strconv.Atoi(q.Get("page"))
		next := skip
		page := []map[string]any{}
		if !empty[pg] {
			end := min(skip+size, len(events))
			page, next = events[skip:end], end
		}
		out := map[string]any{"value": page}
		if next < len(events) || empty[pg] {
			out["@odata.nextLink"] = fmt.Sprintf("https://%s%s?$top=%d&page=%d&$skip=%d&x=a%%2Fb", r.Host, r.URL.Path, size, pg+1, next)
		}
		writeJSON(w, 200, out)
	})
}

func TestEventsFollowsNextLinkVerbatim(t *testing.T) {
	srv := skipServer(t, mkEvents(7, true), 3, nil)
	b, err := srv.client(t, nil).Events(context.Background(), testContainer, testJob, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 7 || !b.Completed {
		t.Fatalf("events=%d completed=%v; requests %+v", len(b.Events), b.Completed, srv.requests())
	}
	reqs := srv.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, want := range []string{"", "$top=3&page=1&$skip=3&x=a%2Fb", "$top=3&page=2&$skip=6&x=a%2Fb"} {
		if reqs[i].RawQuery != want {
			t.Errorf("request %d query %q, want %q (the next link verbatim)", i, reqs[i].RawQuery, want)
		}
	}
	if want := srv.srv.URL + "/v1.0" + progressPath + "?$top=3&page=2&$skip=6&x=a%2Fb"; b.Cursor != want {
		t.Errorf("cursor = %q, want the last next link %q", b.Cursor, want)
	}
}

func TestEventsContinuesPastEmptyPages(t *testing.T) {
	srv := skipServer(t, mkEvents(6, true), 2, map[int]bool{1: true, 2: true})
	b, err := srv.client(t, nil).Events(context.Background(), testContainer, testJob, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 6 || !b.Completed {
		t.Fatalf("events=%d completed=%v after %d requests: an empty page with a next link ended the drain",
			len(b.Events), b.Completed, len(srv.requests()))
	}
}

func TestEventsEmptyPagesBoundedByPageLimit(t *testing.T) {
	empty := map[int]bool{}
	for i := 0; i < 100; i++ {
		empty[i] = true
	}
	srv := skipServer(t, mkEvents(2, false), 2, empty)
	b, err := srv.client(t, func(o *Options) { o.PageLimit = 5 }).Events(context.Background(), testContainer, testJob, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.requests()); n != 5 || !b.More {
		t.Errorf("%d requests, More=%v: want the page limit (5) and More", n, b.More)
	}
}

func TestEventsAcceptsLegacyBareCursor(t *testing.T) {
	srv := eventServer(t, mkEvents(5, false), 10, false)
	b, err := srv.client(t, nil).Events(context.Background(), testContainer, testJob, token(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 2 || b.Events[0].ID != "ev3" {
		t.Fatalf("resumed from a bare token: %d events %v", len(b.Events), b.Events)
	}
	if reqs := srv.requests(); reqs[0].RawQuery != "$skiptoken="+token(3) {
		t.Errorf("first request query %q", reqs[0].RawQuery)
	}
	if !strings.HasPrefix(b.Cursor, srv.srv.URL) {
		t.Errorf("cursor %q is not upgraded to a next link", b.Cursor)
	}
}

func TestEventsRefusesNextLinkToAnotherHost(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, map[string]any{"value": mkEvents(1, false), "@odata.nextLink": "https://127.0.0.2:1/v1.0/x?$skiptoken=MQ"})
	})
	_, err := srv.client(t, nil).Events(context.Background(), testContainer, testJob, "")
	if err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("err = %v, want a refusal to follow a link to another host", err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d requests", n)
	}
}

func TestEventsStoredCursorForAnotherRootIsStale(t *testing.T) {
	srv := eventServer(t, mkEvents(3, false), 10, false)
	_, err := srv.client(t, nil).Events(context.Background(), testContainer, testJob, "https://127.0.0.2:1/v1.0"+progressPath+"?$skiptoken=MQ")
	if !errors.Is(err, ErrStaleCursor) {
		t.Fatalf("err = %v, want ErrStaleCursor", err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("%d requests sent for a cursor under another root", n)
	}
}
