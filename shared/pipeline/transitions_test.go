package pipeline

import (
	"testing"

	"github.com/spemigrate/spemigrate/shared/state"
)

// TestBatchTransitionGuards pins, for every named batch transition, which
// statuses it may start from.
func TestBatchTransitionGuards(t *testing.T) {
	all := []state.BatchStatus{state.BatchPlanned, state.BatchStaged, state.BatchSubmitting, state.BatchRunning,
		state.BatchSucceeded, state.BatchCompletedWithErrors, state.BatchFailed, state.BatchCancelled}
	live := map[state.BatchStatus]bool{state.BatchPlanned: true, state.BatchStaged: true, state.BatchSubmitting: true, state.BatchRunning: true}
	for _, tt := range []struct {
		t     transition[state.Batch]
		jobID string
		from  map[state.BatchStatus]bool
		want  state.BatchStatus
	}{
		{failBatch, "", live, state.BatchFailed},
		{nextAttempt, "job", live, state.BatchPlanned},
		{restage, "", map[state.BatchStatus]bool{state.BatchPlanned: true, state.BatchStaged: true}, state.BatchPlanned},
		{restage, "job", nil, ""},
		{cancelBeforeJob, "", map[state.BatchStatus]bool{state.BatchPlanned: true, state.BatchStaged: true, state.BatchSubmitting: true}, state.BatchCancelled},
		{cancelBeforeJob, "job", nil, ""},
		{cancelRunning, "job", map[state.BatchStatus]bool{state.BatchRunning: true}, state.BatchCancelled},
	} {
		for _, st := range all {
			b := &state.Batch{Status: st, Attempt: 2, JobID: tt.jobID, Items: 5, FilesMigrated: 3}
			got := tt.t.apply(b, "why")
			if got != tt.from[st] {
				t.Errorf("%s from %s (job %q): applied %v, want %v", tt.t.name, st, tt.jobID, got, tt.from[st])
				continue
			}
			if got && b.Status != tt.want {
				t.Errorf("%s from %s: status %s, want %s", tt.t.name, st, b.Status, tt.want)
			}
			if !got && b.Status != st {
				t.Errorf("%s from %s: refused but changed the batch", tt.t.name, st)
			}
		}
	}
	b := &state.Batch{Status: state.BatchRunning, Attempt: 1, JobID: "j", Items: 4, FilesMigrated: 4, EventCursor: "c"}
	nextAttempt.apply(b, "fatal")
	if b.Attempt != 2 || b.JobID != "" || b.EventCursor != "" || b.Reason != "attempt 1 failed: fatal" {
		t.Errorf("next attempt left %+v", b)
	}
	b = &state.Batch{Status: state.BatchRunning, Items: 4, FilesMigrated: 4}
	failBatch.apply(b, "dead-lettered")
	if b.FilesFailed != 4 || b.FilesMigrated != 0 || b.Reason != "dead-lettered" {
		t.Errorf("fail batch left %+v", b)
	}
}

func TestMigrationTransitionGuards(t *testing.T) {
	for _, tt := range []struct {
		t    transition[state.Migration]
		m    state.Migration
		want bool
	}{
		{requestCancel, state.Migration{Status: state.MigrationRunning}, true},
		{requestCancel, state.Migration{Status: state.MigrationRunning, CancelRequested: true}, false},
		{requestCancel, state.Migration{Status: state.MigrationCompleted}, false},
		{stopPlanning, state.Migration{Status: state.MigrationRunning}, true},
		{stopPlanning, state.Migration{Status: state.MigrationRunning, PlanDone: true}, false},
		{stopPlanning, state.Migration{Status: state.MigrationFailed}, false},
	} {
		m := tt.m
		if got := tt.t.apply(&m, "why"); got != tt.want {
			t.Errorf("%s on %+v: %v, want %v", tt.t.name, tt.m, got, tt.want)
		}
	}
}
