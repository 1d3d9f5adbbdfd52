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

// finish turns a completed job into the batch's outcome (spec §7.4). seq
// is the poll sequence of the message that got here (see awaitLog).
func (e *Engine) finish(ctx context.Context, m *state.Migration, b *state.Batch, seq int) error {
	if b.Fatal {
		if m.CancelRequested {
			return e.cancelRunning(ctx, m, b)
		}
		reason := "job-level fatal error: " + b.FatalReason
		if e.invalidPackage(b.FatalReason) {
			// Restaging builds the same package, which SharePoint would
			// reject the same way: fail now, with what to do.
			return e.failFinal(ctx, m, b, reason+"; SharePoint rejected the import package itself, so the batch was not restaged "+
				"(the package spemigrate built, or a package setting, is at fault: report it with the job id "+b.JobID+")")
		}
		return e.failAttempt(ctx, m, b, reason)
	}
	evs, err := e.Store.ListEvents(ctx, m.ID, b.ID, b.JobID)
	if err != nil {
		return fmt.Errorf("finish %s/%s: events: %w", m.ID, b.ID, err)
	}
	// When the counters alone show the events short of totalErrors, the
	// log is fetched before the items, so waiting for it reads no more.
	var lg logRead
	if e.wantLog(b, itemErrors(newItemMatcher(m, nil, e.Stager), evs), false) {
		if lg = e.readLog(ctx, b, evs); lg.wait {
			return e.awaitLog(ctx, b, seq)
		}
	}
	items, err := e.Store.BatchItems(ctx, m.ID, b.ID)
	if err != nil {
		return fmt.Errorf("finish %s/%s: items: %w", m.ID, b.ID, err)
	}
	match := newItemMatcher(m, items, e.Stager)
	v := itemErrors(match, evs)
	if !lg.done() && e.wantLog(b, v, true) {
		// Error events that name no item of the batch.
		if lg = e.readLog(ctx, b, evs); lg.wait {
			return e.awaitLog(ctx, b, seq)
		}
	}
	lg.apply(&v, match)
	rs, imported, bytesMigrated := e.itemResults(m, b, items, &v)
	if err := e.Store.PutResults(ctx, rs); err != nil {
		return fmt.Errorf("finish %s/%s: item results: %w", m.ID, b.ID, err)
	}
	// Before the batch is final, so a crash re-records on the next delivery.
	if e.Imports != nil && len(imported) > 0 {
		if err := e.Imports.Record(ctx, m, b.ID, imported); err != nil {
			return fmt.Errorf("finish %s/%s: record imports: %w", m.ID, b.ID, err)
		}
	}
	status, reason := batchOutcome(b, len(items), &v)
	jobID, failed := b.JobID, len(v.failed)
	b, wrote, err := e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Status != state.BatchRunning || x.JobID != jobID || !x.Completed {
			return false, nil
		}
		x.Status = status
		x.Reason = joinReason(x.Reason, reason)
		x.FilesFailed = int64(failed)
		x.FilesMigrated = int64(len(items) - failed)
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

// itemResults is each item's result under v (items that could not be
// staged fail with that reason), the items imported and their bytes.
func (e *Engine) itemResults(m *state.Migration, b *state.Batch, items []state.Item, v *verdict) (rs []state.ItemResult, imported []state.Item, bytes int64) {
	// SharePoint's totalErrors may exceed the errors its events and log
	// name: no item can be reported failed for those, and an item the log
	// does not list as processed says so rather than claiming a clean
	// import.
	var doubt string
	if n := v.unmatched + v.unreconciled(b); n > 0 {
		doubt = fmt.Sprintf("imported, but the job reported %d errors it did not tie to an item; verify it", n)
	}
	rs = make([]state.ItemResult, 0, len(items))
	imported = make([]state.Item, 0, len(items))
	for i, it := range items {
		if it.StageError != "" {
			v.failed[i] = "source could not be read: " + it.StageError
		}
		if why, ok := v.failed[i]; ok {
			r := e.itemResult(m, b, it, state.OutcomeFailed, joinReason(it.NamingReason, why))
			r.ResultCode = v.codes[i]
			rs = append(rs, r)
			continue
		}
		bytes += it.Size()
		note := joinReason(it.NamingReason, v.warned[i])
		if !v.accounted(i) {
			note = joinReason(note, doubt)
		}
		r := e.itemResult(m, b, it, state.ImportedOutcome(it.Renamed), note)
		e.setAuthor(m, it, v.warned[i], &r)
		rs = append(rs, r)
		imported = append(imported, it)
	}
	return rs, imported, bytes
}

// itemErrors matches the job's error events (of its last run, when
// SharePoint restarted it) to the batch's items: per item index the first
// failing reason and the warnings (an author SharePoint could not resolve
// and replaced, for instance: the item imported, but not as asked), the
// error codes of the failed ones, and how many failing events there were
// and named no item.
func itemErrors(match *itemMatcher, evs []graph.Event) verdict {
	v := newVerdict()
	for i := range evs {
		if st := evs[i].Start; evs[i].Kind == graph.KindStart && st != nil && st.IsRestarted {
			// Only the last run of a restarted job decides.
			v = newVerdict()
			continue
		}
		je := evs[i].Error
		if evs[i].Kind != graph.KindError || je == nil {
			continue
		}
		idx, ok := match.find(je.ObjectURL, je.ObjectID)
		if je.Level.Failing() {
			v.errors++
		}
		switch {
		case je.Level.Failing() && ok:
			if _, seen := v.failed[idx]; !seen {
				v.failed[idx] = "import error: " + eventReason(je)
				v.codes[idx] = je.Error.Code
			}
		case je.Level.Failing():
			v.unmatched++
		case ok && (je.Level == graph.LevelWarning || je.Level == graph.LevelImportant):
			v.warned[idx] = joinReason(v.warned[idx], "SharePoint warning: "+eventReason(je))
		}
	}
	return v
}

// batchOutcome is a completed job's batch status and the reason for it.
func batchOutcome(b *state.Batch, items int, v *verdict) (state.BatchStatus, string) {
	failed, unreconciled := len(v.failed), v.unreconciled(b)
	switch {
	case failed == items && items > 0:
		return state.BatchFailed, joinReason(fmt.Sprintf("all %d items failed to import", items), v.logNote)
	case failed == 0 && v.unmatched == 0 && unreconciled == 0:
		return state.BatchSucceeded, ""
	case failed == 0 && v.unmatched == 0 && v.allAccounted(items):
		return state.BatchSucceeded, fmt.Sprintf("SharePoint counted %d errors (totalErrors) that neither its error events nor its import log name; the log lists every item as processed (%s)",
			b.Progress.Errors, v.logNote)
	}
	reason := fmt.Sprintf("%d of %d items failed to import", failed, items)
	if v.unmatched > 0 {
		reason += fmt.Sprintf("; %d errors not tied to an item (see the job's events)", v.unmatched)
	}
	if unreconciled > 0 {
		reason += fmt.Sprintf("; %d errors counted by SharePoint (totalErrors) without an error event: unreconciled", unreconciled)
	}
	return state.BatchCompletedWithErrors, joinReason(reason, v.logNote)
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

// redactReason is a message from SharePoint, short and free of URLs and
// SAS signatures.
func redactReason(msg string) string {
	msg = sigRe.ReplaceAllString(msg, "<redacted>")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}

// eventReason is the short, secret-free text of an error event.
func eventReason(je *graph.JobError) string {
	msg := redactReason(je.Error.Message)
	s := string(je.Level)
	if je.Error.Code != "" {
		s += " " + je.Error.Code
	}
	if msg != "" {
		s += ": " + msg
	}
	return s
}
