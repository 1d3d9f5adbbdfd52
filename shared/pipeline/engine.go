package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Config tunes the engine. Zero values take the defaults noted.
type Config struct {
	// PageSize is how many source entries one plan message handles
	// (default 1000).
	PageSize int
	// MaxAttempts bounds the provision→stage→submit→poll rounds of a batch
	// whose job fails as a whole (default 3).
	MaxAttempts int
	// PollInterval is the wait between polls of a running job (default
	// 60 s, spec §8); IdlePollInterval applies once no event has arrived
	// for IdleAfter (defaults 5 min and 1 h).
	PollInterval     time.Duration
	IdlePollInterval time.Duration
	IdleAfter        time.Duration
	// MinSASValidity is how long the SAS must still be valid when a job is
	// created (default 12 h, spec §4).
	MinSASValidity time.Duration
	// SubmitLease is how long a submit intent blocks another submit of the
	// same batch attempt (default 5 min; longer than one create call).
	SubmitLease time.Duration
	// StuckAfter is how long a batch may sit in planned, staged or
	// submitting, or a running migration may go without an update, before
	// the drain re-drives it (default 15 min). PollGrace is how late a poll
	// may be before the drain re-drives it (default 2 min).
	StuckAfter time.Duration
	PollGrace  time.Duration
	// DrainLimit bounds the in-flight entries one drain looks at (default
	// 1000).
	DrainLimit int
	// ThrottleBackoff is used when a throttled response has no Retry-After
	// (default 30 s).
	ThrottleBackoff time.Duration
	// MaxJobsPerContainer caps the jobs in flight (being created or
	// running) per target container (default 20; negative: no cap): a large
	// migration then feeds SharePoint's queue steadily instead of creating
	// thousands of jobs that are postponed, throttled or time out. The cap
	// is soft: concurrent submits may pass it by a few. A batch over the cap
	// waits JobSlotWait (default 1 min) and looks again.
	MaxJobsPerContainer int
	JobSlotWait         time.Duration
	// ImportLogs says when a completed job's import log is read:
	// [LogsAuto] (default), [LogsAlways] or [LogsOff]. ImportLogWait is how
	// long after the job's final event its log may take to appear (default
	// 10 min; SharePoint copies it when the job leaves its queue).
	ImportLogs    string
	ImportLogWait time.Duration
	// InvalidPackageErrors are the texts (case-insensitive substrings) of
	// job-level fatal errors by which SharePoint rejects the import package
	// itself: a batch whose job ends with one fails at once, because a
	// restaged package would be the same. Default
	// [DefaultInvalidPackageErrors]; other fatal errors are retried with a
	// new attempt.
	InvalidPackageErrors []string
}

// DefaultInvalidPackageErrors are the fatal-error texts that mean the
// package was rejected as invalid. SharePoint documents none; these are the
// validation failures of the manifest schemas and of ExportSettings,
// SystemData and UserGroup that the migration API's published samples and
// the emulator report (docs/graph-emulator.md).
var DefaultInvalidPackageErrors = []string{
	"manifest validation failed",
	"schema validation",
	"manifest is invalid",
	"invalid manifest",
	"attribute is required",
	"duplicate user",
	"lists no manifestfile",
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.PageSize <= 0 {
		c.PageSize = 1000
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3
	}
	if c.DrainLimit <= 0 {
		c.DrainLimit = 1000
	}
	def(&c.PollInterval, 60*time.Second)
	def(&c.IdlePollInterval, 5*time.Minute)
	def(&c.IdleAfter, time.Hour)
	def(&c.MinSASValidity, 12*time.Hour)
	def(&c.SubmitLease, 5*time.Minute)
	def(&c.StuckAfter, 15*time.Minute)
	def(&c.PollGrace, 2*time.Minute)
	def(&c.ThrottleBackoff, 30*time.Second)
	def(&c.JobSlotWait, time.Minute)
	def(&c.ImportLogWait, 10*time.Minute)
	if c.InvalidPackageErrors == nil {
		c.InvalidPackageErrors = DefaultInvalidPackageErrors
	}
	if c.ImportLogs == "" {
		c.ImportLogs = LogsAuto
	}
	if c.MaxJobsPerContainer == 0 {
		c.MaxJobsPerContainer = 20
	}
	return c
}

// Deps are the engine's collaborators. All are required except Imports,
// Clock and Logger.
type Deps struct {
	Store   Store
	Graph   Graph
	Stager  Stager
	Namer   Namer
	Planner Planner
	Sources Sources
	Sender  Sender
	// Imports is optional: without it nothing is recorded and every planned
	// file is imported (options.incremental has no effect).
	Imports Imports
	// Targets is optional: without it a start does not check its target
	// container up front (a wrong one fails the migration later).
	Targets TargetChecker
	// JobLogs is optional: without it SharePoint's import logs are not
	// read, and a job's outcome rests on its events alone.
	JobLogs JobLogs
	Clock   Clock
	Logger  *slog.Logger
}

// Engine runs the steps. It holds no per-migration state: every step reads
// the store, so any number of engines may run the same migration.
type Engine struct {
	Deps
	cfg Config
	log *slog.Logger
}

// New returns an engine over deps.
func New(deps Deps, cfg Config) (*Engine, error) {
	var missing []string
	for name, v := range map[string]any{
		"Store": deps.Store, "Graph": deps.Graph, "Stager": deps.Stager, "Namer": deps.Namer,
		"Planner": deps.Planner, "Sources": deps.Sources, "Sender": deps.Sender,
	} {
		if v == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("pipeline: missing dependencies: %v", missing)
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Engine{Deps: deps, cfg: cfg.withDefaults(), log: log}, nil
}

// Run dispatches one step message to its step; the handlers of the step
// queues call it.
func (e *Engine) Run(ctx context.Context, msg queue.Message) error {
	switch msg.Step {
	case queue.StepProvision:
		return e.Provision(ctx, msg.MigrationID, msg.Page)
	case queue.StepStageBatch:
		return e.StageBatch(ctx, msg.MigrationID, msg.BatchID)
	case queue.StepSubmit:
		return e.Submit(ctx, msg.MigrationID, msg.BatchID)
	case queue.StepPoll:
		return e.Poll(ctx, msg.MigrationID, msg.BatchID, msg.Attempt, msg.Seq)
	}
	return MarkPermanent(fmt.Errorf("pipeline: unknown step %q", msg.Step))
}

func (e *Engine) now() time.Time { return e.Clock().UTC() }

func (e *Engine) send(ctx context.Context, msgs ...queue.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := e.Sender.Send(ctx, msgs...); err != nil {
		return fmt.Errorf("send %s: %w", msgs[0].Step, err)
	}
	return nil
}

// updateBatch applies mutate to the batch through state.Update, the one
// conditional-update loop: on a lost race it re-reads and calls mutate
// again, so the decision is always made on fresh state. mutate returns false
// to write nothing. The returned batch is the stored one (written or not).
func (e *Engine) updateBatch(ctx context.Context, b *state.Batch, mutate func(b *state.Batch) (bool, error)) (*state.Batch, bool, error) {
	reload := func(ctx context.Context) (*state.Batch, error) { return e.Store.GetBatch(ctx, b.MigrationID, b.ID) }
	got, wrote, err := state.Update(ctx, b, reload, e.Store.ReplaceBatch, mutate)
	if err != nil {
		return b, false, fmt.Errorf("update batch %s: %w", b.ID, err)
	}
	return got, wrote, nil
}

// updateMigration is updateBatch for the migration entity.
func (e *Engine) updateMigration(ctx context.Context, m *state.Migration, mutate func(m *state.Migration) (bool, error)) (*state.Migration, bool, error) {
	reload := func(ctx context.Context) (*state.Migration, error) { return e.Store.GetMigration(ctx, m.ID) }
	got, wrote, err := state.Update(ctx, m, reload, e.Store.ReplaceMigration, mutate)
	if err != nil {
		return m, false, fmt.Errorf("update migration %s: %w", m.ID, err)
	}
	return got, wrote, nil
}

func (e *Engine) load(ctx context.Context, migrationID, batchID string) (*state.Migration, *state.Batch, error) {
	m, err := e.Store.GetMigration(ctx, migrationID)
	if err != nil {
		return nil, nil, fmt.Errorf("load migration %s: %w", migrationID, err)
	}
	if batchID == "" {
		return m, nil, nil
	}
	b, err := e.Store.GetBatch(ctx, migrationID, batchID)
	if err != nil {
		return nil, nil, fmt.Errorf("load batch %s/%s: %w", migrationID, batchID, err)
	}
	return m, b, nil
}

// throttled reports whether err is a Graph throttle and when to retry.
func (e *Engine) throttled(err error) (time.Time, bool) {
	d, ok := graph.RetryAfter(err)
	if !ok {
		return time.Time{}, false
	}
	if d <= 0 {
		d = e.cfg.ThrottleBackoff
	}
	return e.now().Add(d), true
}

func (e *Engine) batchLog(b *state.Batch) *slog.Logger {
	return e.log.With("migration", b.MigrationID, "batch", b.ID, "attempt", b.Attempt)
}
