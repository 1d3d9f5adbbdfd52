package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/state"
)

// ErrSASTooShort is returned (wrapped) by a [Stager] that refuses to stage
// into containers whose SAS expires too soon; the engine re-provisions.
var ErrSASTooShort = errors.New("pipeline: SAS expires too soon")

// Store holds the truth: migrations, batches, their items, progress events
// and per-item results; *state.Store implements it. Creates return
// state.ErrExists when the entity exists; Replace writes are conditional on
// the entity's ETag, set the new ETag on success, and return state.ErrStale
// when it no longer matches (state.Update is the loop over them).
//
// The store keeps the in-flight index: a non-terminal batch, and a
// running migration, are listed by InFlight; terminal ones are not.
type Store interface {
	CreateMigration(ctx context.Context, m *state.Migration) error
	GetMigration(ctx context.Context, id string) (*state.Migration, error)
	ReplaceMigration(ctx context.Context, m *state.Migration) error

	// CreateBatch stores a new batch with its items.
	CreateBatch(ctx context.Context, b *state.Batch, items []state.Item) error
	// PutBatchItems rewrites a batch's items (same order and count), to
	// record staging errors.
	PutBatchItems(ctx context.Context, migrationID, batchID string, items []state.Item) error
	GetBatch(ctx context.Context, migrationID, batchID string) (*state.Batch, error)
	ReplaceBatch(ctx context.Context, b *state.Batch) error
	ListBatches(ctx context.Context, migrationID string) ([]*state.Batch, error)
	BatchItems(ctx context.Context, migrationID, batchID string) ([]state.Item, error)

	// PutEvents stores progress events once by event id, so a page read
	// twice stores each event once. ListEvents returns one job's events.
	PutEvents(ctx context.Context, migrationID, batchID string, events []graph.Event) (int, error)
	ListEvents(ctx context.Context, migrationID, batchID, jobID string) ([]graph.Event, error)

	// PutResults upserts per-item results.
	PutResults(ctx context.Context, results []state.ItemResult) error

	// InFlight lists up to limit entries of the in-flight index;
	// ForgetInFlight drops a row whose entity is terminal or gone.
	InFlight(ctx context.Context, limit int) ([]state.Ref, error)
	ForgetInFlight(ctx context.Context, migrationID, batchID string) error
	// JobsInFlight counts, up to limit, a container's batches whose job is
	// being created or running.
	JobsInFlight(ctx context.Context, containerID string, limit int) (int, error)
}

// Graph is the part of the Graph SPE migration API the steps call.
// *graph.Client satisfies it. Errors are matched with the graph package's
// sentinels (graph.ErrThrottled with graph.RetryAfter,
// graph.ErrReprovisionNeeded, graph.ErrJobNotFound, graph.ErrProgressExpired).
type Graph interface {
	ProvisionContainers(ctx context.Context, containerID string) (graph.ContainerInfo, error)
	CreateJob(ctx context.Context, containerID string, info graph.ContainerInfo) (string, error)
	DeleteJob(ctx context.Context, containerID, jobID string) error
	Events(ctx context.Context, containerID, jobID, cursor string) (graph.EventBatch, error)
}

// Stager encrypts and uploads one batch's content, then its manifests, into
// the provisioned containers. Staging the same batch again writes the same
// blob names. It returns [ErrSASTooShort] (wrapped) when the SAS does not
// leave enough time to submit. Items whose source cannot be read are left
// out of the package and reported in StageResult.Failed (by index into
// items) with a reason free of secrets.
type Stager interface {
	Stage(ctx context.Context, m *state.Migration, b *state.Batch, items []state.Item, info graph.ContainerInfo) (StageResult, error)
}

// StageResult is what a [Stager] reports about one staged batch.
type StageResult struct {
	Failed map[int]string
}

// Namer applies the migration's naming policy to one source file (path and
// size of its current version): the target path, or a skip, with the
// reason. It must answer the same for the same path when asked again
// (planning may re-run after a crash), which includes case-insensitive
// collision claims.
type Namer interface {
	Name(ctx context.Context, m *state.Migration, path string, size int64) (Decision, error)
}

// PageNamer is a [Namer] that names a page of files at once, in a few
// round trips instead of one per file; the engine uses it when the Namer
// provides it. Decisions come back in the order of entries.
type PageNamer interface {
	NamePage(ctx context.Context, m *state.Migration, entries []NameEntry) ([]Decision, error)
}

// NameEntry is one file for [PageNamer.NamePage].
type NameEntry struct {
	Path string
	Size int64
}

// Decision is a [Namer]'s answer.
type Decision struct {
	Target  string // target path; empty when Skip
	Skip    bool
	Renamed bool
	Reason  string // why skipped or renamed
}

// Planner groups one page's items into batches (staging limits: count,
// bytes, large files alone). It must be deterministic.
type Planner interface {
	Plan(m *state.Migration, items []state.Item) ([][]state.Item, error)
}

// TargetChecker checks a new migration's target container before it is
// stored: a container that does not exist or that the app may not use is a
// *request.Error naming target.containerId; anything else is transient.
type TargetChecker interface {
	CheckTarget(ctx context.Context, containerID string) error
}

// Sources opens a migration's source.
type Sources interface {
	Source(ctx context.Context, m *state.Migration) (source.Source, error)
}

// Imports remembers, per target container and library path, which source
// file version was imported there last, so a re-run can leave unchanged
// files alone (request option incremental).
type Imports interface {
	// Unchanged returns, by index into items (planned into m's container,
	// Target set), the id of the earlier migration that imported exactly
	// the item's current source version at its target path. It returns
	// nothing when m's request is not incremental, and never names m
	// itself (a re-planned page must not skip what m imported).
	Unchanged(ctx context.Context, m *state.Migration, items []state.Item) (map[int]string, error)
	// Record notes that items of batch batchID were imported by m.
	// Recording the same items again is harmless.
	Record(ctx context.Context, m *state.Migration, batchID string, items []state.Item) error
}

// Sender sends the steps' next messages (scheduled when NotBefore is set);
// *queue.Sender implements it.
type Sender interface {
	Send(ctx context.Context, msgs ...queue.Message) error
}

// Clock returns the current time; tests substitute one.
type Clock func() time.Time
