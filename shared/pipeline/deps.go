package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/source"
)

// Store errors. Implementations return (or wrap) these so the engine can
// tell a lost race from a failure.
var (
	ErrNotFound = errors.New("pipeline: not found")
	ErrExists   = errors.New("pipeline: already exists")
	// ErrConflict: the entity changed since it was read (ETag mismatch).
	ErrConflict = errors.New("pipeline: concurrent update")
)

// ErrSASTooShort is returned (wrapped) by a [Stager] that refuses to stage
// into containers whose SAS expires too soon; the engine re-provisions.
var ErrSASTooShort = errors.New("pipeline: SAS expires too soon")

// Store holds the truth: migrations, batches, their items, progress events
// and per-item results. Updates are conditional on the entity's ETag and
// set the new ETag on success; a stale ETag yields [ErrConflict].
//
// The store keeps the in-flight index: a non-terminal batch, and a
// migration that is running, are listed by InFlight; terminal ones are not.
type Store interface {
	CreateMigration(ctx context.Context, m *Migration) error // ErrExists
	GetMigration(ctx context.Context, id string) (*Migration, error)
	UpdateMigration(ctx context.Context, m *Migration) error

	// CreateBatch stores a new batch with its items; ErrExists if the
	// batch id is taken (its items are then left as they were).
	CreateBatch(ctx context.Context, b *Batch, items []Item) error
	// PutBatchItems rewrites a batch's items (same order and count), to
	// record staging errors.
	PutBatchItems(ctx context.Context, migrationID, batchID string, items []Item) error
	GetBatch(ctx context.Context, migrationID, batchID string) (*Batch, error)
	UpdateBatch(ctx context.Context, b *Batch) error
	ListBatches(ctx context.Context, migrationID string) ([]*Batch, error)
	BatchItems(ctx context.Context, migrationID, batchID string) ([]Item, error)

	// PutEvents upserts progress events by event id, so a page read twice
	// stores each event once. ListEvents returns one job's events.
	PutEvents(ctx context.Context, migrationID, batchID string, events []graph.Event) error
	ListEvents(ctx context.Context, migrationID, batchID, jobID string) ([]graph.Event, error)

	// PutItemResults upserts per-item results.
	PutItemResults(ctx context.Context, results []ItemResult) error

	// InFlight lists up to limit entries of the in-flight index.
	InFlight(ctx context.Context, limit int) ([]Ref, error)
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
	Stage(ctx context.Context, m *Migration, b *Batch, items []Item, info graph.ContainerInfo) (StageResult, error)
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
	Name(ctx context.Context, m *Migration, path string, size int64) (Decision, error)
}

// PageNamer is a [Namer] that names a page of files at once, in a few
// round trips instead of one per file; the engine uses it when the Namer
// provides it. Decisions come back in the order of entries.
type PageNamer interface {
	NamePage(ctx context.Context, m *Migration, entries []NameEntry) ([]Decision, error)
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
	Plan(m *Migration, items []Item) ([][]Item, error)
}

// Sealer seals secrets before they are stored.
type Sealer interface {
	Seal(plaintext []byte) (string, error)
	Open(sealed string) ([]byte, error)
}

// Sources opens a migration's source.
type Sources interface {
	Source(ctx context.Context, m *Migration) (source.Source, error)
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
	Unchanged(ctx context.Context, m *Migration, items []Item) (map[int]string, error)
	// Record notes that items of batch batchID were imported by m.
	// Recording the same items again is harmless.
	Record(ctx context.Context, m *Migration, batchID string, items []Item) error
}

// Sender sends the steps' next messages (scheduled when NotBefore is set).
type Sender interface {
	Send(ctx context.Context, msgs []Next) error
}

// Clock returns the current time; tests substitute one.
type Clock func() time.Time
