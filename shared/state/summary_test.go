package state

import "testing"

func TestSummaryCode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status MigrationStatus
		cancel bool
		c      MigrationCounters
		want   SummaryCode
	}{
		{"running", MigrationRunning, false, MigrationCounters{FilesMigrated: 3}, SummaryRunning},
		{"cancelling is still running", MigrationRunning, true, MigrationCounters{}, SummaryRunning},
		{"clean", MigrationCompleted, false, MigrationCounters{Items: 5, FilesMigrated: 5}, SummarySucceeded},
		{"empty source", MigrationCompleted, false, MigrationCounters{}, SummarySucceeded},
		{"all unchanged", MigrationCompleted, false, MigrationCounters{Entries: 4, Skipped: 4, Unchanged: 4}, SummarySucceeded},
		{"renamed", MigrationCompleted, false, MigrationCounters{Items: 5, FilesMigrated: 5, Renamed: 1}, SummarySucceededWithRenames},
		{"skipped by policy", MigrationCompleted, false, MigrationCounters{Items: 5, FilesMigrated: 5, Skipped: 2, Unchanged: 1}, SummarySucceededWithRenames},
		{"warned", MigrationCompleted, false, MigrationCounters{Items: 5, FilesMigrated: 5, Warnings: 1}, SummarySucceededWithWarnings},
		{"warned and renamed", MigrationCompleted, false, MigrationCounters{Items: 5, FilesMigrated: 5, Warnings: 1, Renamed: 2}, SummarySucceededWithWarnings},
		{"completed but a file failed", MigrationCompleted, false, MigrationCounters{FilesMigrated: 4, FilesFailed: 1}, SummaryPartial},
		{"some failed", MigrationCompletedWithErrors, false, MigrationCounters{FilesMigrated: 4, FilesFailed: 1}, SummaryPartial},
		{"planning stopped after some", MigrationCompletedWithErrors, false, MigrationCounters{FilesMigrated: 4}, SummaryPartial},
		{"every file failed", MigrationCompletedWithErrors, false, MigrationCounters{FilesFailed: 5}, SummaryFailed},
		{"failed", MigrationFailed, false, MigrationCounters{}, SummaryFailed},
		{"cancelled", MigrationCancelled, true, MigrationCounters{FilesMigrated: 2}, SummaryCancelled},
	} {
		m := &Migration{Status: tc.status, CancelRequested: tc.cancel, Counters: tc.c}
		if got := m.SummaryCode(); got != tc.want {
			t.Errorf("%s: SummaryCode() = %s, want %s", tc.name, got, tc.want)
		}
	}
}
