package api

import (
	"math"
	"time"

	"github.com/spemigrate/spemigrate/shared/state"
)

// Rates are a migration's throughput and time to completion as the status
// page shows them, computed from the stored counters alone (no history is
// kept): work done is every finished batch's items and bytes plus the
// running jobs' latest progress, over the time since the migration was
// created (its end, once finished), so planning, staging and waiting for
// SharePoint all count. The ETA is the remaining planned bytes at that
// byte rate (files when no bytes are planned); while the source is still
// being read it covers only what is planned so far. A job SharePoint has
// postponed cannot finish before its announced pickup, so the ETA is at
// least the time to the latest pickup of a postponed job ("≥").
type Rates struct {
	FilesDone, FilesPlanned int64
	BytesDone, BytesPlanned int64
	PlanDone                bool
	Elapsed                 time.Duration
	FilesPerSec, MBPerSec   float64
	ETA                     string
	Max                     int64 // the overall progress bar's max (at least 1)
	Percent                 int
	// Pickup is the latest announced pickup of a postponed job.
	Pickup time.Time
}

func rates(m Migration, now time.Time) Rates {
	c := m.Counters
	r := Rates{FilesPlanned: c.Items, BytesPlanned: c.BytesPlanned, PlanDone: c.PlanDone, Max: max(c.Items, 1)}
	for _, b := range m.Batches {
		r.FilesDone += batchFiles(b)
		r.BytesDone += batchBytes(b)
		if p := b.Postponed; p != nil && !state.BatchStatus(b.Status).Terminal() && p.NextPickup.After(r.Pickup) {
			r.Pickup = p.NextPickup
		}
	}
	// Batches of the page being planned may not be listed yet.
	r.FilesDone, r.BytesDone = min(r.FilesDone, max(c.Items, 0)), min(r.BytesDone, max(c.BytesPlanned, 0))
	end := now
	if m.Terminal() && !m.Updated.IsZero() {
		end = m.Updated
	}
	if !m.Created.IsZero() && end.After(m.Created) {
		r.Elapsed = end.Sub(m.Created)
	}
	if secs := r.Elapsed.Seconds(); secs > 0 {
		r.FilesPerSec = float64(r.FilesDone) / secs
		r.MBPerSec = float64(r.BytesDone) / 1e6 / secs
	}
	r.Percent = int(100 * r.FilesDone / r.Max)
	r.ETA = r.eta(m.Terminal(), now)
	return r
}

func (r Rates) eta(terminal bool, now time.Time) string {
	switch {
	case terminal:
		return "finished"
	case r.PlanDone && r.FilesDone >= r.FilesPlanned && r.FilesPlanned > 0:
		return "finishing"
	}
	left, known := -1.0, true
	secs := r.Elapsed.Seconds()
	switch {
	case r.BytesPlanned > 0 && r.BytesDone > 0:
		left = float64(r.BytesPlanned-r.BytesDone) * secs / float64(r.BytesDone)
	case r.FilesDone > 0:
		left = float64(r.FilesPlanned-r.FilesDone) * secs / float64(r.FilesDone)
	default:
		known = false
	}
	atLeast := !r.PlanDone
	if wait := r.Pickup.Sub(now).Seconds(); wait > left {
		left, known, atLeast = wait, true, true
	}
	if !known {
		return "unknown yet"
	}
	eta := formatDuration(time.Duration(math.Ceil(left)) * time.Second)
	if atLeast {
		return "≥ " + eta
	}
	return eta
}

// batchFiles is a batch's files done: all of them once it is finished
// (whatever the outcome, none is left to do), the job's progress while it
// runs.
func batchFiles(b Batch) int64 {
	if state.BatchStatus(b.Status).Terminal() {
		return int64(b.Items)
	}
	return min(b.FilesProcessed, int64(b.Items))
}

func batchBytes(b Batch) int64 {
	if state.BatchStatus(b.Status).Terminal() {
		return b.Bytes
	}
	return min(b.BytesProcessed, b.Bytes)
}
