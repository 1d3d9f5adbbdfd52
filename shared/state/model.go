package state

import (
	"time"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
)

// MigrationStatus is where a migration is in its life. It is stored as is:
// the engine decides it (in one place, its settle transition) and every
// reader shows what was decided.
type MigrationStatus string

// Migration statuses. Only MigrationRunning is not terminal; a running
// migration with CancelRequested set is shown as cancelling.
const (
	MigrationRunning             MigrationStatus = "running"
	MigrationCompleted           MigrationStatus = "completed"
	MigrationCompletedWithErrors MigrationStatus = "completedWithErrors"
	MigrationFailed              MigrationStatus = "failed"
	MigrationCancelled           MigrationStatus = "cancelled"
)

// Terminal reports whether the migration is finished.
func (s MigrationStatus) Terminal() bool { return s != MigrationRunning && s != "" }

// BatchStatus is where a batch is in the engine's state machine.
type BatchStatus string

// Batch statuses. Succeeded, CompletedWithErrors, Failed and Cancelled are
// terminal; the others are in flight and indexed for the drain timer.
const (
	BatchPlanned             BatchStatus = "planned"    // items chosen; containers may be provisioned
	BatchStaged              BatchStatus = "staged"     // content and manifests uploaded
	BatchSubmitting          BatchStatus = "submitting" // submit intent recorded, no job id yet
	BatchRunning             BatchStatus = "running"    // migration job created (JobID set)
	BatchSucceeded           BatchStatus = "succeeded"
	BatchCompletedWithErrors BatchStatus = "completedWithErrors"
	BatchFailed              BatchStatus = "failed"
	BatchCancelled           BatchStatus = "cancelled"
)

// Terminal reports whether the batch will not change again.
func (s BatchStatus) Terminal() bool {
	switch s {
	case BatchSucceeded, BatchCompletedWithErrors, BatchFailed, BatchCancelled:
		return true
	}
	return false
}

// Migration is one user request to move a source into a container.
type Migration struct {
	ID string
	// ContainerID is the target SharePoint Embedded container (= drive id).
	ContainerID string
	// Request is the user's request as accepted, decoded once when the
	// migration is read. It is sealed at rest, bound to this row, because
	// it may carry a SAS or a connection string. Zero for a request that
	// was rejected before it could be decoded.
	Request request.Request

	Status MigrationStatus
	// CancelRequested is set by a cancel; running jobs finish, the rest stop.
	CancelRequested bool
	// Reason says why the migration failed, was cancelled, or completed
	// with errors that no batch carries (planning stopped early).
	Reason string

	// Planning position: the next page to plan and the source cursor it
	// starts at. PlanDone is set once the source has no more pages.
	PlanPage   int
	PlanCursor string
	PlanDone   bool

	Counters MigrationCounters
	// Verification is the last verify run's summary (zero: never verified).
	Verification VerificationSummary

	Created time.Time
	Updated time.Time
	// ETag is the store's concurrency token; writes are conditional on it.
	ETag string
}

// Phase is the status a person reads: Status, or "cancelling" while a
// cancelled migration winds down.
func (m *Migration) Phase() string {
	if m.Status == MigrationRunning && m.CancelRequested {
		return "cancelling"
	}
	return string(m.Status)
}

// MigrationCounters are the migration's totals. Planning counters are
// advanced once per page (guarded by PlanPage); the rest are recomputed from
// the batches.
type MigrationCounters struct {
	Entries      int64 // source entries seen by planning
	Items        int64 // entries planned for migration
	Skipped      int64 // entries skipped by the naming policy or as unchanged
	Unchanged    int64 // of Skipped: unchanged since an earlier import (incremental)
	Renamed      int64 // planned entries whose target name differs
	BytesPlanned int64

	Batches          int64
	BatchesDone      int64 // terminal
	BatchesFailed    int64
	BatchesCancelled int64
	// BatchesWithErrors completed with errors: failed items, or errors
	// SharePoint counted that no item could be tied to.
	BatchesWithErrors int64
	FilesMigrated     int64
	FilesFailed       int64
	BytesMigrated     int64
	Errors            int64
	Warnings          int64
}

// Batch is one package: up to the staging limits of items, imported by one
// migration job per attempt.
type Batch struct {
	MigrationID string
	ID          string
	Page        int    // the plan page it came from
	ContainerID string // the target container (the migration's)
	Status      BatchStatus
	// Attempt counts provision→stage→submit→poll rounds, from 1.
	Attempt int
	Reason  string // why the last attempt failed, or why the batch failed

	Items int
	Bytes int64

	// Containers are the provisioned SAS URLs and key of the current
	// attempt, sealed at rest bound to this row (zero until provisioned);
	// SASExpiry is their earlier SAS expiry (not secret).
	Containers    graph.ContainerInfo
	SASExpiry     time.Time
	ProvisionedAt time.Time

	// SubmitStarted is the submit intent: set before the Graph call,
	// it leases the right to create this attempt's job.
	SubmitStarted time.Time
	JobID         string
	SubmittedAt   time.Time
	JobStarted    bool // a start event was seen: the job can no longer be deleted

	// Polling: EventCursor is the progress-events cursor; PollSeq the
	// sequence number the next poll message of this attempt must carry
	// (from 0); NextPollAt when it is due (the drain re-drives overdue
	// polls).
	EventCursor string
	PollSeq     int
	NextPollAt  time.Time
	LastEventAt time.Time

	// Outcome of the current job, from its events.
	Completed     bool
	Fatal         bool
	FailingEvents bool // an error event of level error or fatalError
	FatalReason   string
	// Postponed is SharePoint's latest postponement of the job, kept
	// until the job starts (zero when it is not postponed): shown to
	// operators, who otherwise see a job that merely does not move.
	Postponed     Postponement
	Progress      BatchProgress
	FilesMigrated int64
	FilesFailed   int64
	BytesMigrated int64

	Created time.Time
	Updated time.Time
	ETag    string
}

// Provisioned reports whether the batch holds containers for its attempt.
func (b *Batch) Provisioned() bool { return b.Containers.DataContainerURI != "" }

// Postponement is a postponed event's reason and announced pickup.
type Postponement struct {
	Reason      string
	NextPickup  time.Time
	JobsInQueue int64
}

// BatchProgress is the latest progress event's counters (cumulative, so
// taking the latest is idempotent).
type BatchProgress struct {
	FilesProcessed   int64
	BytesProcessed   int64
	ObjectsProcessed int64
	ExpectedObjects  int64
	Errors           int64
	Warnings         int64
}

// Item is one source file planned into a batch, with all its versions.
type Item struct {
	// Path is the source path (as the source names it).
	Path string
	// Versions are the file's source entries, oldest first, the current
	// one last; one entry when the source has no versions.
	Versions []source.Entry
	// Target is the slash-separated path in the target library, after the
	// naming policy.
	Target string
	// Renamed and NamingReason record a naming decision that changed the
	// path.
	Renamed      bool
	NamingReason string
	// StageError is set when staging could not read the item's source; the
	// item is then left out of the package and reported failed.
	StageError string
}

// Current is the item's current version.
func (it Item) Current() source.Entry {
	if len(it.Versions) == 0 {
		return source.Entry{Path: it.Path}
	}
	return it.Versions[len(it.Versions)-1]
}

// Size is the plaintext size of all the item's versions.
func (it Item) Size() int64 {
	var n int64
	for _, v := range it.Versions {
		n += v.Size
	}
	return n
}

// Outcome is what happened to one source file.
type Outcome string

// Item outcomes: the words of the report, stored as they are shown.
const (
	OutcomePending   Outcome = "pending" // planned, not imported yet
	OutcomeImported  Outcome = "imported"
	OutcomeRenamed   Outcome = "renamed" // imported under a name the naming policy chose
	OutcomeFailed    Outcome = "failed"
	OutcomeSkipped   Outcome = "skipped"
	OutcomeCancelled Outcome = "cancelled"
)

// ImportedOutcome is the outcome of an item the job imported.
func ImportedOutcome(renamed bool) Outcome {
	if renamed {
		return OutcomeRenamed
	}
	return OutcomeImported
}

// ItemResult is the per-item row behind the report, one per source file
// (its versions travel together). Its key is (MigrationID, SourcePath,
// VersionID); writes are upserts.
type ItemResult struct {
	MigrationID string
	SourcePath  string
	VersionID   string // empty for the current version
	TargetPath  string
	BatchID     string
	Size        int64
	Outcome     Outcome
	Renamed     bool
	// Reason says why an item was skipped, renamed or failed, in words a
	// user can act on, never containing a secret (the store does not check).
	Reason string
	// SourceETag identifies the source version read (the blob's ETag).
	SourceETag string
	// ManifestID is the item's File@Id in the package: the target list
	// item's unique id in SharePoint.
	ManifestID string
	// JobID and Attempt are the migration job and batch attempt that
	// decided the outcome; ResultCode is SharePoint's error code for a
	// failed item, when an error event named it.
	JobID      string
	Attempt    int
	ResultCode string
	// AuthorOutcome says whether the author asked for reached SharePoint;
	// AuthorLogin is the login asked for (mapped) or the one SharePoint
	// could not resolve (fallback), AuthorFallback what it used instead.
	AuthorOutcome  AuthorOutcome
	AuthorLogin    string
	AuthorFallback string
	// Verification is the item's result in the last verify run that
	// checked it (zero: never verified). The engine's writes of the row
	// clear it: a result written again is a new import, not yet verified.
	Verification ItemVerification
	Updated      time.Time
	// ETag is the row's concurrency token as read (verification writes are
	// conditional on it).
	ETag string
}

// AuthorOutcome is what became of an item's author in SharePoint.
type AuthorOutcome string

// Author outcomes, as the report shows them.
const (
	// AuthorMapped: the package named an author and SharePoint raised no
	// warning about it.
	AuthorMapped AuthorOutcome = "mapped"
	// AuthorFallback: SharePoint could not resolve the author and used
	// System Account or a deleted-user placeholder instead.
	AuthorFallback AuthorOutcome = "fallback"
	// AuthorNotApplicable: no author was sent (none in the source, authors
	// not preserved) or the item was not imported.
	AuthorNotApplicable AuthorOutcome = "not-applicable"
)

// Fallback identities SharePoint applies for an unresolved author (spec
// §6.3 UserGroup rules).
const (
	FallbackSystemAccount = "System Account"
	FallbackDeletedUser   = "deleted user"
)

// Verification statuses of an item, as the report shows them; the first
// three are shared/verify's.
const (
	VerifyPassed      = "passed"
	VerifyFailed      = "failed"
	VerifyMissing     = "missing"
	VerifyNotCompared = "not-compared" // reported imported, but no longer in the source
	VerifyNone        = "not-verified" // not checked by the last verify run
)

// ItemVerification is one item's result in one verify run.
type ItemVerification struct {
	Status string // passed, failed, missing, not-compared
	Reason string // the problems found, joined with "; "
	At     time.Time
	// TargetItemID and TargetListItemID are the driveItem id and the
	// SharePoint list item id Graph answered for the item's path.
	TargetItemID     string
	TargetListItemID string
}

// VerificationSummary is a migration's last verify run: its time and
// counts (items not checked by it show as not verified).
type VerificationSummary struct {
	At                                   time.Time
	Passed, Failed, Missing, NotCompared int64
}

// Ref is one row of the in-flight index: a non-terminal batch or (BatchID
// empty) migration, with its status at its last write. The entity is the
// truth; read it before acting.
type Ref struct {
	MigrationID string
	BatchID     string
	ContainerID string
	Status      string
	NextPollAt  time.Time
	Updated     time.Time
}
