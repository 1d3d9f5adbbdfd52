package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/joblog"
	"github.com/spemigrate/spemigrate/shared/state"
)

// JobLogs reads the import logs SharePoint writes into a job's metadata
// container (a *joblog.Reader). Optional: without it, a job's outcome rests
// on its events alone.
type JobLogs interface {
	Read(ctx context.Context, metadataURL, key, jobID string, run int, k joblog.Kind) (*joblog.Log, error)
}

// Import-log modes (Config.ImportLogs).
const (
	// LogsAuto reads a job's log only when its events do not account for
	// its totalErrors: the log then decides which items failed.
	LogsAuto = "auto"
	// LogsAlways reads every completed job's log.
	LogsAlways = "always"
	// LogsOff never reads them.
	LogsOff = "off"
)

// verdict is what a completed job's events, and its import log when read,
// say of the batch's items (by index).
type verdict struct {
	failed, warned, codes map[int]string
	// errors is how many failing errors the events (or the log, whichever
	// lists more) name; unmatched of them name no item of the batch.
	errors, unmatched int
	// listed are the items the full import log names; nil when none was read.
	listed map[int]bool
	// logNote says what reading the log found, for the batch's reason.
	logNote string
}

func newVerdict() verdict {
	return verdict{failed: map[int]string{}, warned: map[int]string{}, codes: map[int]string{}}
}

// unreconciled is how many of SharePoint's totalErrors neither the events
// nor the log name.
func (v *verdict) unreconciled(b *state.Batch) int {
	return max(0, int(b.Progress.Errors)-v.errors)
}

// accounted reports whether the import log names item i, so no doubt from
// uncounted errors hangs over it.
func (v *verdict) accounted(i int) bool { return v.listed != nil && v.listed[i] }

// allAccounted reports whether the log names every one of n items.
func (v *verdict) allAccounted(n int) bool { return v.listed != nil && len(v.listed) == n }

// wantLog reports whether to read the job's log given what its events
// say: always, or (auto) when they do not account for totalErrors, or,
// once matched against the items (matched), name errors of no item.
func (e *Engine) wantLog(b *state.Batch, v verdict, matched bool) bool {
	if e.JobLogs == nil || !b.Provisioned() {
		return false
	}
	switch e.cfg.ImportLogs {
	case LogsOff:
		return false
	case LogsAlways:
		return true
	}
	if matched {
		return v.unmatched > 0
	}
	return v.unreconciled(b) > 0
}

// jobRun is the run of the job whose log to read: SharePoint numbers a
// job's logs by attempt, 1 plus its totalRetryCount.
func jobRun(evs []graph.Event) int {
	var n int64
	for i := range evs {
		switch ev := &evs[i]; {
		case ev.Start != nil:
			n = max(n, int64(ev.Start.TotalRetryCount))
		case ev.Progress != nil:
			n = max(n, int64(ev.Progress.TotalRetryCount))
		}
	}
	return int(n) + 1
}

// logRead is the outcome of reading a job's import log: the log, or why
// it could not be had (note), or that it may still come (wait).
type logRead struct {
	log  *joblog.Log
	note string
	wait bool
}

func (r logRead) done() bool { return r.log != nil || r.note != "" }

// apply folds what was read into v.
func (r logRead) apply(v *verdict, match *itemMatcher) {
	switch {
	case r.log != nil:
		v.fold(r.log, match)
	case r.note != "":
		v.logNote = r.note
	}
}

// readLog reads the job's import log: the full log, or the error-only one
// when no full log exists. It waits while none is readable and
// ImportLogWait has not passed since the final event.
func (e *Engine) readLog(ctx context.Context, b *state.Batch, evs []graph.Event) logRead {
	c, run := b.Containers, jobRun(evs)
	lg, err := e.JobLogs.Read(ctx, c.MetadataContainerURI, c.EncryptionKey, b.JobID, run, joblog.Full)
	if errors.Is(err, joblog.ErrNotWritten) {
		lg, err = e.JobLogs.Read(ctx, c.MetadataContainerURI, c.EncryptionKey, b.JobID, run, joblog.Errors)
	}
	if err == nil {
		return logRead{log: lg}
	}
	if e.now().Before(b.LastEventAt.Add(e.cfg.ImportLogWait)) {
		e.batchLog(b).Info("import log not readable yet; finishing later", "job", b.JobID, "run", run, "err", err)
		return logRead{wait: true}
	}
	return logRead{note: fmt.Sprintf("SharePoint's import log %s could not be read within %s of the job's end (%v)",
		joblog.Name(b.JobID, run, joblog.Full), e.cfg.ImportLogWait, err)}
}

// fold applies a log's entries: a failing entry that names an item fails
// it (if its events did not already), a warning reaches it, and with the
// full log every item it names is accounted for.
func (v *verdict) fold(lg *joblog.Log, match *itemMatcher) {
	if lg.Kind == joblog.Full {
		v.listed = map[int]bool{}
	}
	errs, unmatched := 0, 0
	for _, en := range lg.Entries {
		idx, ok := match.entry(en)
		if ok && v.listed != nil {
			v.listed[idx] = true
		}
		switch {
		case en.Level.Failing() && ok:
			errs++
			if _, seen := v.failed[idx]; !seen {
				v.failed[idx] = "import error (import log): " + redactReason(en.Text)
			}
		case en.Level.Failing():
			errs++
			unmatched++
		case ok && en.Level == joblog.LevelWarning && v.warned[idx] == "":
			v.warned[idx] = "SharePoint warning (import log): " + redactReason(en.Text)
		}
	}
	// The log and the events list the same errors; the fuller decides.
	v.errors = max(v.errors, errs)
	v.unmatched = max(v.unmatched, unmatched)
	v.logNote = "outcomes checked against SharePoint's import log " + lg.Name
}

// entry matches a log entry to an item: by a GUID it names, else by a
// field that is the item's path.
func (im *itemMatcher) entry(en joblog.Entry) (int, bool) {
	for _, id := range en.IDs {
		if i, ok := im.byID[id]; ok {
			return i, true
		}
	}
	for _, f := range en.Fields {
		if f == "" || f == en.Text {
			continue
		}
		if i, ok := im.find(f, ""); ok {
			return i, true
		}
	}
	return 0, false
}

// awaitLog polls the completed job again later, for its log. Only the
// message at the head of the batch's poll chain (or the one that completed
// it, redelivered after a crash) may: a stale duplicate must not start a
// second chain.
func (e *Engine) awaitLog(ctx context.Context, b *state.Batch, seq int) error {
	if seq < b.PollSeq-1 {
		return nil
	}
	wait := min(e.cfg.PollInterval, b.LastEventAt.Add(e.cfg.ImportLogWait).Sub(e.now()))
	return e.reschedule(ctx, b, b.PollSeq, e.now().Add(max(wait, time.Second)), false)
}

// invalidPackage reports whether a job-level fatal error says SharePoint
// rejected the package as invalid (Config.InvalidPackageErrors).
func (e *Engine) invalidPackage(reason string) bool {
	r := strings.ToLower(reason)
	for _, p := range e.cfg.InvalidPackageErrors {
		if p != "" && strings.Contains(r, strings.ToLower(p)) {
			return true
		}
	}
	return false
}
