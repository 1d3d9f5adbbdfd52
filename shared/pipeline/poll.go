package pipeline

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/spepackage"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Poll drains the job's progress events once from the stored cursor,
// persists them (upserts by event id, so a page read twice is stored once),
// and in one conditional write advances the cursor, the batch's counters
// (taken from the latest progress event, so re-applying is harmless), its
// outcome flags and its poll sequence. Then either the job is complete
// (spec §7.4) and the batch is finished, or the next poll is scheduled.
//
// attempt and seq come from the message: a poll for another attempt, or
// whose sequence is not the batch's current one, is stale and dropped.
// This is what keeps duplicated and re-driven poll messages from forking
// the polling chain.
//
// On completion: a job-level fatal error starts a new attempt (fresh
// containers, restage, new job) until MaxAttempts, then fails the batch
// with the reason; otherwise every item gets its outcome, failed items
// with the import error that names them.
func (e *Engine) Poll(ctx context.Context, migrationID, batchID string, attempt, seq int) error {
	m, b, err := e.load(ctx, migrationID, batchID)
	if err != nil {
		return fmt.Errorf("poll: %w", err)
	}
	if b.Status.Terminal() {
		// A crash may have come between the batch's last write and the
		// migration's; settling again is harmless.
		return e.settle(ctx, m)
	}
	if b.Status != state.BatchRunning || b.Attempt != attempt {
		return nil
	}
	if b.Completed {
		return e.finish(ctx, m, b)
	}
	if b.PollSeq != seq {
		return nil
	}
	log := e.batchLog(b).With("job", b.JobID)

	if m.CancelRequested && !b.JobStarted {
		done, err := e.deleteQueuedJob(ctx, m, b)
		if err != nil || done {
			return err
		}
	}

	eb, err := e.Graph.Events(ctx, m.ContainerID, b.JobID, b.EventCursor)
	if err != nil {
		if at, ok := e.throttled(err); ok {
			log.Info("progress events throttled; poll rescheduled", "at", at)
			return e.reschedule(ctx, b, seq, at)
		}
		if errors.Is(err, graph.ErrProgressExpired) || errors.Is(err, graph.ErrJobNotFound) {
			if m.CancelRequested && !b.JobStarted {
				// Deleted at our request before it started.
				return e.cancelRunning(ctx, m, b)
			}
			return e.failAttempt(ctx, m, b, "job lost: its progress is no longer available")
		}
		if errors.Is(err, graph.ErrStaleCursor) && b.EventCursor != "" {
			// Read the job's events again from the start: they are stored
			// once by id, so nothing is counted twice.
			log.Warn("progress cursor refused; paging again from the start")
			return e.restartPaging(ctx, b, seq)
		}
		return fmt.Errorf("poll %s/%s: %w", m.ID, b.ID, err)
	}
	b, wrote, deleted, err := e.recordEvents(ctx, b, seq, eb)
	if err != nil {
		return fmt.Errorf("poll %s/%s: %w", m.ID, batchID, err)
	}
	if !wrote {
		return nil
	}
	switch {
	case b.Completed:
		return e.finish(ctx, m, b)
	case deleted:
		if m.CancelRequested {
			return e.cancelRunning(ctx, m, b)
		}
		return e.failAttempt(ctx, m, b, "job was deleted before it completed")
	}
	return e.send(ctx, queue.Message{Step: queue.StepPoll, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt, Seq: b.PollSeq, NotBefore: b.NextPollAt})
}

// restartPaging clears the batch's event cursor and polls again now.
func (e *Engine) restartPaging(ctx context.Context, b *state.Batch, seq int) error {
	attempt := b.Attempt
	b, wrote, err := e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Status != state.BatchRunning || x.Attempt != attempt || x.PollSeq != seq {
			return false, nil
		}
		x.EventCursor = ""
		x.PollSeq++
		x.NextPollAt = e.now()
		return true, nil
	})
	if err != nil || !wrote {
		return err
	}
	return e.send(ctx, queue.Poll(b.MigrationID, b.ID, b.Attempt, b.PollSeq))
}

// itemErrors matches the job's error events (of its last run, when
// SharePoint restarted it) to the batch's items: per item index the first
// failing reason and the warnings (an author SharePoint could not resolve
// and replaced, for instance: the item imported, but not as asked), and how
// many failing events named no item.
func (e *Engine) itemErrors(m *state.Migration, items []state.Item, evs []graph.Event) (failed, warned map[int]string, unmatched int) {
	match := newItemMatcher(m, items, e.Stager)
	failed, warned = map[int]string{}, map[int]string{}
	for i := range evs {
		if st := evs[i].Start; evs[i].Kind == graph.KindStart && st != nil && st.IsRestarted {
			// Only the last run of a restarted job decides.
			failed, warned, unmatched = map[int]string{}, map[int]string{}, 0
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
			}
		case je.Level.Failing():
			unmatched++
		case ok && (je.Level == graph.LevelWarning || je.Level == graph.LevelImportant):
			warned[idx] = joinReason(warned[idx], "SharePoint warning: "+eventReason(je))
		}
	}
	return failed, warned, unmatched
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

// recordEvents stores a page of events (once each, by id) and folds them
// into the batch in one write with the cursor, the next poll sequence and
// its due time. It reports whether it wrote and whether the job was
// deleted.
func (e *Engine) recordEvents(ctx context.Context, b *state.Batch, seq int, eb graph.EventBatch) (_ *state.Batch, wrote, deleted bool, err error) {
	if len(eb.Events) > 0 {
		if _, err := e.Store.PutEvents(ctx, b.MigrationID, b.ID, eb.Events); err != nil {
			return b, false, false, fmt.Errorf("store events: %w", err)
		}
	}
	now := e.now()
	var pickup time.Time
	for i := range eb.Events {
		if p := eb.Events[i].Postponed; p != nil && p.NextPickupDateTime.After(pickup) {
			pickup = p.NextPickupDateTime
		}
	}
	attempt := b.Attempt
	b, wrote, err = e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Status != state.BatchRunning || x.Attempt != attempt || x.PollSeq != seq {
			return false, nil
		}
		deleted = false
		x.EventCursor = eb.Cursor
		if len(eb.Events) > 0 {
			x.LastEventAt = now
		}
		for i := range eb.Events {
			if applyEvent(x, &eb.Events[i]) {
				deleted = true
			}
		}
		x.PollSeq++
		x.NextPollAt = e.nextPoll(x, now, eb.More, pickup)
		return true, nil
	})
	return b, wrote, deleted, err
}

// applyEvent folds one event into the batch; it reports a deleted event.
// Every change is a set, never an increment, so an event applied twice
// changes nothing.
func applyEvent(x *state.Batch, ev *graph.Event) (deleted bool) {
	switch ev.Kind {
	case graph.KindStart:
		x.JobStarted = true
		if ev.Start != nil && ev.Start.IsRestarted {
			// SharePoint retries the job itself: what failed before the
			// restart is not the outcome.
			x.Fatal, x.FatalReason, x.FailingEvents = false, "", false
		}
	case graph.KindProgress:
		if p := ev.Progress; p != nil {
			x.JobStarted = true
			x.Progress = state.BatchProgress{
				FilesProcessed:   int64(p.FilesProcessed),
				BytesProcessed:   int64(p.BytesProcessed),
				ObjectsProcessed: int64(p.ObjectsProcessed),
				ExpectedObjects:  int64(p.TotalExpectedObjects),
				Errors:           int64(p.TotalErrors),
				Warnings:         int64(p.TotalWarnings),
			}
			if p.IsCompleted {
				x.Completed = true
			}
		}
	case graph.KindError:
		if je := ev.Error; je != nil && je.Level.Failing() {
			x.FailingEvents = true
			if je.Level == graph.LevelFatalError {
				x.Fatal = true
				if x.FatalReason == "" {
					x.FatalReason = eventReason(je)
				}
			}
		}
	case graph.KindCancelled:
		x.JobStarted = true
	case graph.KindDeleted:
		return true
	}
	return false
}

// nextPoll is when to look again: at once when the page limit stopped the
// drain, at the announced pickup of a postponed job (capped by the idle
// interval), less often once a job has been silent for IdleAfter.
func (e *Engine) nextPoll(x *state.Batch, now time.Time, more bool, pickup time.Time) time.Time {
	if more {
		return now
	}
	next := now.Add(e.cfg.PollInterval)
	if !x.LastEventAt.IsZero() && now.Sub(x.LastEventAt) > e.cfg.IdleAfter {
		next = now.Add(e.cfg.IdlePollInterval)
	}
	if pickup.After(next) {
		next = pickup
		if cap := now.Add(e.cfg.IdlePollInterval); next.After(cap) {
			next = cap
		}
	}
	return next
}

// reschedule moves the poll chain to a later time under a new sequence, so
// the new message is not taken for a duplicate of the current one.
func (e *Engine) reschedule(ctx context.Context, b *state.Batch, seq int, at time.Time) error {
	attempt := b.Attempt
	b, wrote, err := e.updateBatch(ctx, b, func(x *state.Batch) (bool, error) {
		if x.Status != state.BatchRunning || x.Attempt != attempt || x.PollSeq != seq {
			return false, nil
		}
		x.PollSeq++
		x.NextPollAt = at
		return true, nil
	})
	if err != nil || !wrote {
		return err
	}
	return e.send(ctx, queue.Message{Step: queue.StepPoll, MigrationID: b.MigrationID, BatchID: b.ID, Attempt: b.Attempt, Seq: b.PollSeq, NotBefore: at})
}

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
	failed, warned, unmatched := e.itemErrors(m, items, evs)
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
			rs = append(rs, itemResult(m, b, it, state.OutcomeFailed, joinReason(it.NamingReason, why)))
			continue
		}
		bytesMigrated += it.Size()
		note := joinReason(it.NamingReason, warned[i])
		if n := unmatched + max(0, int(b.Progress.Errors)-len(failed)-unmatched); n > 0 {
			note = joinReason(note, fmt.Sprintf("imported, but the job reported %d errors it did not tie to an item; verify it", n))
		}
		rs = append(rs, itemResult(m, b, it, state.ImportedOutcome(it.Renamed), note))
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
	// SharePoint's totalErrors may exceed the error events it sent: those
	// errors name no item, so no item can be reported failed for them, and
	// the batch says so rather than claiming a clean import.
	unreconciled := max(0, int(b.Progress.Errors)-len(failed)-unmatched)
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

// cancelRunning ends a batch whose job was cancelled or deleted at the
// user's request.
func (e *Engine) cancelRunning(ctx context.Context, m *state.Migration, b *state.Batch) error {
	if err := e.markItems(ctx, m, b, state.OutcomeCancelled, "migration cancelled"); err != nil {
		return err
	}
	return e.markCancelled(ctx, m, b, cancelRunning, b.JobID)
}

// deleteQueuedJob deletes a job that has not started, for a cancelled
// migration. done reports that the batch is now cancelled.
func (e *Engine) deleteQueuedJob(ctx context.Context, m *state.Migration, b *state.Batch) (done bool, err error) {
	err = e.Graph.DeleteJob(ctx, m.ContainerID, b.JobID)
	switch {
	case err == nil:
		// A 204 is not proof that nothing was imported (the job may have
		// started as the delete arrived): the events decide, so polling
		// goes on until they show the job deleted, or it completes.
		e.batchLog(b).Info("queued job deleted; polling until its events confirm", "job", b.JobID)
		return false, nil
	case errors.Is(err, graph.ErrJobNotFound):
		// Started or finished meanwhile: let it finish.
		return false, nil
	case errors.Is(err, graph.ErrThrottled):
		return false, nil
	}
	return false, fmt.Errorf("delete queued job of %s/%s: %w", m.ID, b.ID, err)
}

type itemMatcher struct {
	byPath map[string]int
	byID   map[string]int
}

func newItemMatcher(m *state.Migration, items []state.Item, s Stager) *itemMatcher {
	im := &itemMatcher{byPath: make(map[string]int, len(items)), byID: map[string]int{}}
	ider, _ := s.(FileIDer)
	for i, it := range items {
		im.byPath[normPath(it.Target)] = i
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
	p := normPath(objectURL)
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

func normPath(p string) string { return spepackage.PathKey(p) }

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
