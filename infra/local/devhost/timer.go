package devhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
)

// scheduleStatus is the schedule monitor's record of one timer, kept in
// <StateDir>/timers/<name>.json (the host keeps it in a blob).
type scheduleStatus struct {
	Last        time.Time
	Next        time.Time
	LastUpdated time.Time
}

// dotnetOffsetTime formats like a serialised .NET DateTimeOffset: up to
// seven fractional digits, trailing zeros dropped, explicit offset.
func dotnetOffsetTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00+00:00"
	}
	return t.Format("2006-01-02T15:04:05.9999999-07:00")
}

func (s *scheduleStatus) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"Last": dotnetOffsetTime(s.Last), "Next": dotnetOffsetTime(s.Next), "LastUpdated": dotnetOffsetTime(s.LastUpdated),
	})
}

func (s *scheduleStatus) UnmarshalJSON(b []byte) error {
	var raw map[string]string
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for k, dst := range map[string]*time.Time{"Last": &s.Last, "Next": &s.Next, "LastUpdated": &s.LastUpdated} {
		v := raw[k]
		if v == "" || v == "0001-01-01T00:00:00+00:00" {
			*dst = time.Time{}
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		*dst = t
	}
	return nil
}

func (h *Host) statusPath(fn *Function) string {
	return filepath.Join(h.stateDir, "timers", fn.Name+".json")
}

func (h *Host) loadStatus(fn *Function) (*scheduleStatus, error) {
	b, err := os.ReadFile(h.statusPath(fn))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s scheduleStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", h.statusPath(fn), err)
	}
	return &s, nil
}

func (h *Host) saveStatus(fn *Function, s *scheduleStatus) {
	p := h.statusPath(fn)
	b, _ := json.Marshal(s)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
		tmp := p + ".tmp"
		if err = os.WriteFile(tmp, b, 0o644); err == nil {
			err = os.Rename(tmp, p)
		}
		if err == nil {
			return
		}
	}
	h.log.Error("saving the timer status failed; past-due detection will be off for this timer", "function", fn.Name, "path", p)
}

func (h *Host) useMonitor(fn *Function) bool {
	if fn.Trigger.UseMonitor != nil {
		return *fn.Trigger.UseMonitor
	}
	return !fn.cron.firesMoreThanOncePerMinute(h.now().In(h.loc))
}

// checkPastDue follows the host's schedule monitor: no record → record the
// next occurrence, not past due; a record whose Next no longer follows from
// Last (the schedule changed) → Next recomputed; past due when now > Next.
func (h *Host) checkPastDue(fn *Function, now time.Time) (*scheduleStatus, bool) {
	st, err := h.loadStatus(fn)
	if err != nil {
		h.log.Warn("unreadable timer status; starting afresh", "function", fn.Name, "err", err)
		st = nil
	}
	if st == nil {
		st = &scheduleStatus{Next: fn.cron.next(now), LastUpdated: now}
		h.saveStatus(fn, st)
		return st, false
	}
	from := st.Last
	if from.IsZero() {
		from = st.LastUpdated
	}
	if expected := fn.cron.next(from.In(h.loc)); !expected.Equal(st.Next) {
		st.Next, st.LastUpdated = expected, now
		h.saveStatus(fn, st)
	}
	return st, now.After(st.Next)
}

// timerInfo renders the TimerInfo object (spec §3.4); status nil means the
// monitor is off (ScheduleStatus null).
func (h *Host) timerInfo(fn *Function, status *scheduleStatus, pastDue bool) dotnetObject {
	info := map[string]any{
		"Schedule":  map[string]bool{"AdjustForDST": true},
		"IsPastDue": pastDue,
	}
	if status != nil {
		info["ScheduleStatus"] = status
	} else {
		info["ScheduleStatus"] = nil
	}
	b, _ := json.Marshal(info)
	return dotnetObject(b)
}

// runTimer drives one timer function. Runs are sequential, so one timer
// never overlaps itself; occurrences missed while a run was in progress are
// skipped, as the host does.
func (h *Host) runTimer(ctx context.Context, fn *Function) {
	monitor := h.useMonitor(fn)
	var status *scheduleStatus
	now := h.now().In(h.loc)
	pastDue := false
	if monitor {
		status, pastDue = h.checkPastDue(fn, now)
	}
	if pastDue {
		h.log.Info("timer is past due", "function", fn.Name, "recorded_next", status.Next)
		status = h.fireTimer(ctx, fn, status, true, now)
	} else if fn.Trigger.RunOnStartup {
		status = h.fireTimer(ctx, fn, status, false, now)
	}
	for ctx.Err() == nil {
		next := fn.cron.next(h.now().In(h.loc))
		if next.IsZero() {
			h.log.Warn("timer schedule has no occurrence in the next five years", "function", fn.Name, "schedule", fn.cron.expr)
			return
		}
		for {
			d := next.Sub(h.now())
			if d <= 0 {
				break
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if monitor {
			status = &scheduleStatus{Last: statusLast(status), Next: next, LastUpdated: h.now().In(h.loc)}
		}
		status = h.fireTimer(ctx, fn, status, false, next)
	}
}

func statusLast(s *scheduleStatus) time.Time {
	if s == nil {
		return time.Time{}
	}
	return s.Last
}

// fireTimer invokes the function and records the run. A failed run is not
// retried; the next occurrence comes as scheduled.
func (h *Host) fireTimer(ctx context.Context, fn *Function, status *scheduleStatus, pastDue bool, occurrence time.Time) *scheduleStatus {
	inv := &invocation{
		fn:       fn,
		id:       uuid.NewString(),
		data:     map[string]any{fn.Trigger.Name: h.timerInfo(fn, status, pastDue)},
		metadata: map[string]any{},
	}
	res, err := h.send(ctx, inv)
	if err == nil {
		err = h.writeOutputs(ctx, inv, res)
	}
	if err != nil {
		h.log.Error("timer run failed; not retried", "function", fn.Name, "invocation_id", inv.id, "err", err)
	}
	if status == nil {
		return nil
	}
	now := h.now().In(h.loc)
	later := occurrence
	if now.After(later) {
		later = now
	}
	st := &scheduleStatus{Last: occurrence, Next: fn.cron.next(later), LastUpdated: now}
	h.saveStatus(fn, st)
	return st
}
