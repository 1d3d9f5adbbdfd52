package pipeline

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/spepackage"
	"github.com/spemigrate/spemigrate/shared/state"
)

// FileIDer is optionally implemented by the [Stager]: the manifest's file
// GUID of an item, so error events can be matched by objectId as well as
// by objectUrl.
type FileIDer interface {
	FileID(m *state.Migration, it state.Item) string
}

// finish turns a completed job into the batch's outcome (spec §7.4).
func (e *Engine) finish(ctx context.Context, m *state.Migration, b *state.Batch) error {
	if b.Fatal {
		if m.CancelRequested {
			return e.cancelRunning(ctx, m, b)
		}
		return e.failAttempt(ctx, m, b, "job-level fatal error: "+b.FatalReason)
	}
	items, err := e.Store.BatchItems(ctx, m.ID, b.ID)
	if err != nil {
		return fmt.Errorf("finish %s/%s: items: %w", m.ID, b.ID, err)
	}
	evs, err := e.Store.ListEvents(ctx, m.ID, b.ID, b.JobID)
	if err != nil {
		return fmt.Errorf("finish %s/%s: events: %w", m.ID, b.ID, err)
	}
	failed, warned, codes, unmatched := e.itemErrors(m, items, evs)
	// SharePoint's totalErrors may exceed the error events it sent: those
	// errors name no item, so no item can be reported failed for them, and
	// the batch and its items say so rather than claiming a clean import.
	unreconciled := max(0, int(b.Progress.Errors)-len(failed)-unmatched)
	var doubt string
	if n := unmatched + unreconciled; n > 0 {
		doubt = fmt.Sprintf("imported, but the job reported %d errors it did not tie to an item; verify it", n)
	}
	var (
		rs            = make([]state.ItemResult, 0, len(items))
		imported      = make([]state.Item, 0, len(items))
		bytesMigrated int64
	)
	for i, it := range items {
		if it.StageError != "" {
			failed[i] = "source could not be read: " + it.StageError
		}
		if why, ok := failed[i]; ok {
			r := e.itemResult(m, b, it, state.OutcomeFailed, joinReason(it.NamingReason, why))
			r.ResultCode = codes[i]
			rs = append(rs, r)
			continue
		}
		bytesMigrated += it.Size()
		note := joinReason(joinReason(it.NamingReason, warned[i]), doubt)
		r := e.itemResult(m, b, it, state.ImportedOutcome(it.Renamed), note)
		e.setAuthor(m, it, warned[i], &r)
		rs = append(rs, r)
		imported = append(imported, it)
	}
	if err := e.Store.PutResults(ctx, rs); err != nil {
		return fmt.Errorf("finish %s/%s: item results: %w", m.ID, b.ID, err)
	}
	// Before the batch is final, so a crash re-records on the next delivery.
	if e.Imports != nil && len(imported) > 0 {
		if err := e.Imports.Record(ctx, m, b.ID, imported); err != nil {
			return fmt.Errorf("finish %s/%s: record imports: %w", m.ID, b.ID, err)
		}
	}
	status, reason := batchOutcome(b, len(items), len(failed), unmatched, unreconciled)
	jobID := b.JobID
	b, wrote, err := e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Status != state.BatchRunning || x.JobID != jobID || !x.Completed {
			return false, nil
		}
		x.Status = status
		x.Reason = joinReason(x.Reason, reason)
		x.FilesFailed = int64(len(failed))
		x.FilesMigrated = int64(len(items) - len(failed))
		x.BytesMigrated = bytesMigrated
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("finish %s/%s: %w", m.ID, b.ID, err)
	}
	if wrote {
		e.batchLog(b).Info("batch finished", "status", status, "job", jobID,
			"migrated", b.FilesMigrated, "failed", b.FilesFailed, "errors", b.Progress.Errors, "warnings", b.Progress.Warnings)
	}
	return e.settle(ctx, m)
}

// itemErrors matches the job's error events (of its last run, when
// SharePoint restarted it) to the batch's items: per item index the first
// failing reason and the warnings (an author SharePoint could not resolve
// and replaced, for instance: the item imported, but not as asked), the
// error codes of the failed ones, and how many failing events named no item.
func (e *Engine) itemErrors(m *state.Migration, items []state.Item, evs []graph.Event) (failed, warned, codes map[int]string, unmatched int) {
	match := newItemMatcher(m, items, e.Stager)
	failed, warned, codes = map[int]string{}, map[int]string{}, map[int]string{}
	for i := range evs {
		if st := evs[i].Start; evs[i].Kind == graph.KindStart && st != nil && st.IsRestarted {
			// Only the last run of a restarted job decides.
			failed, warned, codes, unmatched = map[int]string{}, map[int]string{}, map[int]string{}, 0
			continue
		}
		je := evs[i].Error
		if evs[i].Kind != graph.KindError || je == nil {
			continue
		}
		idx, ok := match.find(je.ObjectURL, je.ObjectID)
		switch {
		case je.Level.Failing() && ok:
			if _, seen := failed[idx]; !seen {
				failed[idx] = "import error: " + eventReason(je)
				codes[idx] = je.Error.Code
			}
		case je.Level.Failing():
			unmatched++
		case ok && (je.Level == graph.LevelWarning || je.Level == graph.LevelImportant):
			warned[idx] = joinReason(warned[idx], "SharePoint warning: "+eventReason(je))
		}
	}
	return failed, warned, codes, unmatched
}

// batchOutcome is a completed job's batch status and the reason for it.
func batchOutcome(b *state.Batch, items, failed, unmatched, unreconciled int) (state.BatchStatus, string) {
	switch {
	case b.Progress.Errors == 0 && !b.FailingEvents:
		return state.BatchSucceeded, ""
	case failed == items && items > 0:
		return state.BatchFailed, fmt.Sprintf("all %d items failed to import", items)
	}
	reason := fmt.Sprintf("%d of %d items failed to import", failed, items)
	if unmatched > 0 {
		reason += fmt.Sprintf("; %d errors not tied to an item (see the job's events)", unmatched)
	}
	if unreconciled > 0 {
		reason += fmt.Sprintf("; %d errors counted by SharePoint (totalErrors) without an error event: unreconciled", unreconciled)
	}
	return state.BatchCompletedWithErrors, reason
}

type itemMatcher struct {
	byPath map[string]int
	byID   map[string]int
}

func newItemMatcher(m *state.Migration, items []state.Item, s Stager) *itemMatcher {
	im := &itemMatcher{byPath: make(map[string]int, len(items)), byID: map[string]int{}}
	ider, _ := s.(FileIDer)
	for i, it := range items {
		im.byPath[spepackage.PathKey(it.Target)] = i
		if ider != nil {
			if id := ider.FileID(m, it); id != "" {
				im.byID[normID(id)] = i
			}
		}
	}
	return im
}

// find matches an error event to an item: by file GUID when known, else by
// the library-relative objectUrl, whose leading segments (the library
// folder, a target prefix) are dropped until a target path matches.
func (im *itemMatcher) find(objectURL, objectID string) (int, bool) {
	if objectID != "" {
		if i, ok := im.byID[normID(objectID)]; ok {
			return i, true
		}
	}
	p := spepackage.PathKey(objectURL)
	for p != "" {
		if i, ok := im.byPath[p]; ok {
			return i, true
		}
		j := strings.IndexByte(p, '/')
		if j < 0 {
			break
		}
		p = p[j+1:]
	}
	return 0, false
}

func normID(id string) string { return strings.ToLower(strings.Trim(id, "{}")) }

var sigRe = regexp.MustCompile(`(?i)(sig=)[^&\s"']+|https?://[^\s"']+`)

// eventReason is the short, secret-free text of an error event.
func eventReason(je *graph.JobError) string {
	msg := sigRe.ReplaceAllString(je.Error.Message, "<redacted>")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	s := string(je.Level)
	if je.Error.Code != "" {
		s += " " + je.Error.Code
	}
	if msg != "" {
		s += ": " + msg
	}
	return s
}
