package pipeline

import (
	"fmt"
	"time"

	"github.com/spemigrate/spemigrate/shared/source"
)

// MigrationStatus is where a migration is in its life.
type MigrationStatus string

// Migration statuses. Only MigrationRunning is not terminal.
const (
	MigrationRunning             MigrationStatus = "running"
	MigrationCompleted           MigrationStatus = "completed"
	MigrationCompletedWithErrors MigrationStatus = "completedWithErrors"
	MigrationFailed              MigrationStatus = "failed"
	MigrationCancelled           MigrationStatus = "cancelled"
)

// Terminal reports whether the migration is finished.
func (s MigrationStatus) Terminal() bool { return s != MigrationRunning && s != "" }

// BatchStatus is where a batch is in the state machine (see the package doc).
type BatchStatus string

// Batch statuses.
const (
	BatchPlanned             BatchStatus = "planned"
	BatchStaged              BatchStatus = "staged"
	BatchSubmitting          BatchStatus = "submitting"
	BatchRunning             BatchStatus = "running"
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

// Migration is the pipeline's view of one migration entity.
type Migration struct {
	ID string
	// ContainerID is the target SharePoint Embedded container (= drive id).
	ContainerID string
	// Request is the user's migration request as submitted (JSON). The
	// pipeline does not interpret it; [Sources] and [Namer] do.
	Request []byte

	Status MigrationStatus
	// CancelRequested is set by Cancel; running jobs finish, the rest stop.
	CancelRequested bool
	Reason          string

	// Planning position: the next page to plan and the source cursor it
	// starts at. PlanDone is set once the source has no more pages.
	PlanPage   int
	PlanCursor string
	PlanDone   bool

	Counters MigrationCounters

	Created time.Time
	Updated time.Time
	// ETag is the store's concurrency token; updates are conditional on it.
	ETag string
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
	FilesMigrated    int64
	FilesFailed      int64
	BytesMigrated    int64
	Errors           int64
	Warnings         int64
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

	// SealedContainers is the provisioned containerInfo (SAS URLs and key),
	// sealed by the [Sealer]; SASExpiry is its earlier SAS expiry (not
	// secret) so the 12-hour rule can be checked without unsealing.
	SealedContainers string
	SASExpiry        time.Time
	ProvisionedAt    time.Time

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
	Progress      BatchProgress
	FilesMigrated int64
	FilesFailed   int64
	BytesMigrated int64

	Updated time.Time
	ETag    string
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

// Outcome is what happened to one source entry.
type Outcome string

// Item outcomes.
const (
	OutcomePending   Outcome = "pending" // planned, not imported yet
	OutcomeMigrated  Outcome = "migrated"
	OutcomeFailed    Outcome = "failed"
	OutcomeSkipped   Outcome = "skipped"
	OutcomeCancelled Outcome = "cancelled"
)

// ItemResult is the per-item record a user reads in the report, one per
// source file (its versions travel together). Its key is (MigrationID,
// SourcePath); writes are upserts.
type ItemResult struct {
	MigrationID string
	SourcePath  string
	TargetPath  string
	BatchID     string
	Size        int64
	Outcome     Outcome
	Renamed     bool
	// Reason says why an item was skipped, renamed or failed (naming
	// decisions and import errors), never containing a secret.
	Reason string
}

// Ref names a migration (BatchID empty) or a batch in the in-flight index.
type Ref struct {
	MigrationID string
	BatchID     string
}

// Step names a pipeline step, i.e. a queue.
type Step string

// Steps.
const (
	StepPlan   Step = "plan"
	StepStage  Step = "stage"
	StepSubmit Step = "submit"
	StepPoll   Step = "poll"
)

// Next is a message a step asks to send: the ids of the work, never data.
type Next struct {
	Step        Step
	MigrationID string
	BatchID     string // all but plan
	Page        int    // plan
	Attempt     int    // stage, submit, poll: the batch attempt
	Seq         int    // poll: the batch's poll sequence within the attempt
	// NotBefore schedules the message; zero sends it now.
	NotBefore time.Time
	// Nonce distinguishes a re-drive from the original, so that duplicate
	// detection on the queue does not swallow it.
	Nonce string
}

// MessageID is deterministic, so the queue's duplicate detection drops the
// same message sent twice (for example by a step re-run after a crash).
func (n Next) MessageID() string {
	var id string
	switch n.Step {
	case StepPlan:
		id = fmt.Sprintf("%s/%s/p%d", n.Step, n.MigrationID, n.Page)
	case StepPoll:
		id = fmt.Sprintf("%s/%s/%s/a%d/s%d", n.Step, n.MigrationID, n.BatchID, n.Attempt, n.Seq)
	default:
		id = fmt.Sprintf("%s/%s/%s/a%d", n.Step, n.MigrationID, n.BatchID, n.Attempt)
	}
	if n.Nonce != "" {
		id += "/" + n.Nonce
	}
	return id
}
