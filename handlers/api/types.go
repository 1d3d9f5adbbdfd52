// Package api is spemigrate's HTTP API, served by the Function App under
// /api (the api-* functions) as a plain net/http handler: start, list, read
// and cancel migrations, read their per-item reports, and manage schedules.
// docs/api.md documents it with curl examples.
//
// Nothing in a response carries a secret: requests are shown redacted, and
// internal errors are logged, not returned.
package api

import (
	"context"
	"errors"
	"time"

	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/schedule"
)

// Errors a Backend returns (wrapped or not).
var (
	ErrNotFound = errors.New("migration not found")
	// ErrIDConflict: the id (or idempotency key) was used before for a
	// different request.
	ErrIDConflict = errors.New("migration id already used for a different request")
)

// Backend is what the API needs from the engine and its state.
type Backend interface {
	// Start starts a migration under id, or returns the existing one when
	// id exists with the same request (created is then false).
	Start(ctx context.Context, id string, req request.Request) (m Migration, created bool, err error)
	// List returns recent migrations, newest first, a page at a time.
	List(ctx context.Context, pageToken string, limit int) (ms []Migration, next string, err error)
	// Get returns one migration with its batches.
	Get(ctx context.Context, id string) (Migration, error)
	// Items returns a page of per-item results.
	Items(ctx context.Context, id, pageToken string, limit int) (items []Item, next string, err error)
	// Cancel asks the migration to stop: queued jobs are deleted, unstarted
	// batches cancelled, running jobs finish. Cancelling a finished migration
	// changes nothing.
	Cancel(ctx context.Context, id string) (Migration, error)
}

// ScheduleStore keeps schedules; *schedule.TableStore implements it.
type ScheduleStore interface {
	Create(ctx context.Context, s *schedule.Schedule) error
	Get(ctx context.Context, id string) (*schedule.Schedule, error)
	List(ctx context.Context) ([]*schedule.Schedule, error)
	Delete(ctx context.Context, id string) error
}

// Migration statuses as the API shows them.
const (
	StatusRunning             = "running"
	StatusCancelling          = "cancelling" // cancel requested, running jobs finishing
	StatusCompleted           = "completed"
	StatusCompletedWithErrors = "completedWithErrors"
	StatusFailed              = "failed"
	StatusCancelled           = "cancelled"
)

// Migration is a migration as the API shows it.
type Migration struct {
	ID              string    `json:"id"`
	Status          string    `json:"status"`
	CancelRequested bool      `json:"cancelRequested,omitempty"`
	Reason          string    `json:"reason,omitempty"`
	Created         time.Time `json:"created"`
	Updated         time.Time `json:"updated"`
	// Request is the request as submitted, redacted.
	Request *request.Request `json:"request,omitempty"`
	// SummaryCode is the outcome in one word (see the vocabulary in
	// docs/api.md): running, succeeded, succeededWithRenames,
	// succeededWithWarnings, partial, failed, cancelled.
	SummaryCode string           `json:"summaryCode"`
	Counters    Counters         `json:"counters"`
	Verified    *VerifiedSummary `json:"verification,omitempty"`
	Batches     []Batch          `json:"batches,omitempty"`
}

// Summary codes (state.SummaryCode), as the API and the CLI show them.
const (
	SummaryRunning               = "running"
	SummarySucceeded             = "succeeded"
	SummarySucceededWithRenames  = "succeededWithRenames"
	SummarySucceededWithWarnings = "succeededWithWarnings"
	SummaryPartial               = "partial"
	SummaryFailed                = "failed"
	SummaryCancelled             = "cancelled"
)

// VerifiedSummary is the migration's last verify run: when, and what it
// found.
type VerifiedSummary struct {
	At          time.Time `json:"at"`
	Passed      int64     `json:"passed"`
	Failed      int64     `json:"failed"`
	Missing     int64     `json:"missing"`
	NotCompared int64     `json:"notCompared"`
}

// Terminal reports whether the migration has finished.
func (m Migration) Terminal() bool {
	switch m.Status {
	case StatusCompleted, StatusCompletedWithErrors, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Counters are a migration's totals.
type Counters struct {
	Entries      int64 `json:"entries"`      // source entries seen so far
	Items        int64 `json:"items"`        // entries planned for import
	Skipped      int64 `json:"skipped"`      // skipped by the naming policy or as unchanged
	Unchanged    int64 `json:"unchanged"`    // of skipped: unchanged since an earlier import (options.incremental)
	Renamed      int64 `json:"renamed"`      // imported under another name
	BytesPlanned int64 `json:"bytesPlanned"` // bytes of planned items
	PlanDone     bool  `json:"planDone"`     // the whole source has been read

	Batches          int64 `json:"batches"`
	BatchesDone      int64 `json:"batchesDone"`
	BatchesFailed    int64 `json:"batchesFailed"`
	BatchesCancelled int64 `json:"batchesCancelled"`
	// BatchesWithErrors completed with errors: failed items, or errors
	// SharePoint counted without naming an item.
	BatchesWithErrors int64 `json:"batchesWithErrors"`
	FilesMigrated     int64 `json:"filesMigrated"`
	FilesFailed       int64 `json:"filesFailed"`
	BytesMigrated     int64 `json:"bytesMigrated"`
	Errors            int64 `json:"errors"`
	Warnings          int64 `json:"warnings"`
}

// Batch is one import package of a migration.
type Batch struct {
	ID            string    `json:"id"`
	Status        string    `json:"status"`
	Attempt       int       `json:"attempt"`
	Items         int       `json:"items"`
	Bytes         int64     `json:"bytes"`
	JobID         string    `json:"jobId,omitempty"`
	FilesMigrated int64     `json:"filesMigrated"`
	FilesFailed   int64     `json:"filesFailed"`
	BytesMigrated int64     `json:"bytesMigrated"`
	Reason        string    `json:"reason,omitempty"`
	Updated       time.Time `json:"updated,omitzero"`
	// FilesProcessed and BytesProcessed are the running job's latest
	// progress (SharePoint's counters, which may count versions).
	FilesProcessed int64 `json:"filesProcessed,omitempty"`
	BytesProcessed int64 `json:"bytesProcessed,omitempty"`
	// Postponed is set while SharePoint holds the job back.
	Postponed *Postponed `json:"postponed,omitempty"`
}

// Postponed is SharePoint's latest postponement of a batch's job.
type Postponed struct {
	Reason      string    `json:"reason"`
	NextPickup  time.Time `json:"nextPickup,omitzero"`
	JobsInQueue int64     `json:"jobsInQueue,omitempty"`
}

// Item outcomes in the report.
const (
	OutcomeImported  = "imported"
	OutcomeRenamed   = "renamed" // imported under a name the naming policy chose
	OutcomeSkipped   = "skipped"
	OutcomeFailed    = "failed"
	OutcomePending   = "pending"
	OutcomeCancelled = "cancelled"
)

// Item is one source entry's outcome.
type Item struct {
	SourcePath string `json:"sourcePath"`
	VersionID  string `json:"versionId,omitempty"`
	TargetPath string `json:"targetPath,omitempty"`
	BatchID    string `json:"batchId,omitempty"`
	Size       int64  `json:"size"`
	Outcome    string `json:"outcome"`
	Reason     string `json:"reason,omitempty"`
	// SourceETag is the source version read; ManifestID the item's id in
	// the package (the SharePoint list item's unique id); JobID and Attempt
	// the migration job and batch attempt that decided the outcome;
	// ResultCode SharePoint's error code for a failed item.
	SourceETag string `json:"sourceETag,omitempty"`
	ManifestID string `json:"manifestId,omitempty"`
	JobID      string `json:"jobId,omitempty"`
	Attempt    int    `json:"attempt,omitempty"`
	ResultCode string `json:"resultCode,omitempty"`
	// TargetItemID and TargetListItemID are the driveItem id and the
	// SharePoint list item id the last verify run found at the target path.
	TargetItemID     string `json:"targetItemId,omitempty"`
	TargetListItemID string `json:"targetListItemId,omitempty"`
	// AuthorOutcome is mapped, fallback or not-applicable; AuthorLogin the
	// login sent (mapped) or the one that did not resolve (fallback);
	// AuthorFallback what SharePoint used instead.
	AuthorOutcome  string `json:"authorOutcome,omitempty"`
	AuthorLogin    string `json:"authorLogin,omitempty"`
	AuthorFallback string `json:"authorFallback,omitempty"`
	// Verification is the item's result in the migration's last verify
	// run (passed, failed, missing, not-compared) or not-verified;
	// VerificationReason the problems found; VerifiedAt that run's time.
	Verification       string    `json:"verification"`
	VerificationReason string    `json:"verificationReason,omitempty"`
	VerifiedAt         time.Time `json:"verifiedAt,omitzero"`
	// Extension is the file name's last extension, lower-cased.
	Extension string `json:"extension,omitempty"`
}

// Schedule is a schedule as the API shows it.
type Schedule struct {
	ID              string          `json:"id"`
	Cron            string          `json:"cron"`
	Request         request.Request `json:"request"` // redacted
	Created         time.Time       `json:"created"`
	NextRun         time.Time       `json:"nextRun,omitzero"`
	LastSlot        time.Time       `json:"lastSlot,omitzero"`
	LastMigrationID string          `json:"lastMigrationId,omitempty"`
}
