package state

// SummaryCode is a migration's outcome in one word, for scripts and
// dashboards: computed from the stored status and counters by
// [Migration.SummaryCode] and nowhere else.
type SummaryCode string

// The summary-code vocabulary (docs/api.md). It is stable: codes may be
// added, never renamed.
const (
	// SummaryRunning: not finished (cancelling included).
	SummaryRunning SummaryCode = "running"
	// SummarySucceeded: every planned file imported under its own name, no
	// SharePoint warning.
	SummarySucceeded SummaryCode = "succeeded"
	// SummarySucceededWithRenames: nothing failed, but the naming policy
	// renamed or skipped files.
	SummarySucceededWithRenames SummaryCode = "succeededWithRenames"
	// SummarySucceededWithWarnings: nothing failed, but SharePoint warned
	// (an author replaced by System Account, say); renames may be present
	// too.
	SummarySucceededWithWarnings SummaryCode = "succeededWithWarnings"
	// SummaryPartial: some files imported, some failed (or planning stopped
	// early).
	SummaryPartial SummaryCode = "partial"
	// SummaryFailed: nothing was imported and something failed.
	SummaryFailed SummaryCode = "failed"
	// SummaryCancelled: cancelled before it finished.
	SummaryCancelled SummaryCode = "cancelled"
)

// SummaryCode is the migration's summary code.
func (m *Migration) SummaryCode() SummaryCode {
	c := m.Counters
	switch m.Status {
	case MigrationCancelled:
		return SummaryCancelled
	case MigrationFailed:
		return SummaryFailed
	case MigrationCompletedWithErrors:
		if c.FilesMigrated == 0 {
			return SummaryFailed
		}
		return SummaryPartial
	case MigrationCompleted:
		switch {
		case c.FilesFailed > 0: // not stored so today; never call it a success
			return SummaryPartial
		case c.Warnings > 0:
			return SummarySucceededWithWarnings
		case c.Renamed > 0 || c.Skipped > c.Unchanged:
			return SummarySucceededWithRenames
		}
		return SummarySucceeded
	}
	return SummaryRunning
}
