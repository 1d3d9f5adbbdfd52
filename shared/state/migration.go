package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// MigrationState is where a migration stands.
type MigrationState string

// Migration states. Completed, Failed and Cancelled are terminal.
const (
	MigrationAccepted   MigrationState = "accepted"   // stored, not yet planned
	MigrationPlanning   MigrationState = "planning"   // source being enumerated into batches
	MigrationRunning    MigrationState = "running"    // all batches planned, some in flight
	MigrationCancelling MigrationState = "cancelling" // cancel requested, batches winding down
	MigrationCompleted  MigrationState = "completed"
	MigrationFailed     MigrationState = "failed"
	MigrationCancelled  MigrationState = "cancelled"
)

// Terminal reports whether no further work happens in this state.
func (s MigrationState) Terminal() bool {
	return s == MigrationCompleted || s == MigrationFailed || s == MigrationCancelled
}

// Counters are the running totals kept on migrations and batches. Which
// fields a step maintains is the pipeline's choice; all are stored.
type Counters struct {
	Entries          int64 // source entries seen by planning
	Items            int64 // items planned
	Bytes            int64 // bytes planned
	Batches          int64 // batches planned (migrations only)
	BatchesCompleted int64
	BatchesFailed    int64
	BatchesCancelled int64
	Imported         int64 // per-item outcomes
	Renamed          int64
	Skipped          int64
	Unchanged        int64 // of Skipped: unchanged since an earlier import (incremental re-runs)
	Failed           int64
	BytesImported    int64
	FilesProcessed   int64 // from the latest progress event
	BytesProcessed   int64
	ObjectsProcessed int64
	ExpectedObjects  int64
	Errors           int64
	Warnings         int64
}

var counterNames = []string{"Entries", "Items", "Bytes", "Batches", "BatchesCompleted", "BatchesFailed", "BatchesCancelled",
	"Imported", "Renamed", "Skipped", "Unchanged", "Failed", "BytesImported",
	"FilesProcessed", "BytesProcessed", "ObjectsProcessed", "ExpectedObjects", "Errors", "Warnings"}

func (c *Counters) fields() []*int64 {
	return []*int64{&c.Entries, &c.Items, &c.Bytes, &c.Batches, &c.BatchesCompleted, &c.BatchesFailed, &c.BatchesCancelled,
		&c.Imported, &c.Renamed, &c.Skipped, &c.Unchanged, &c.Failed, &c.BytesImported,
		&c.FilesProcessed, &c.BytesProcessed, &c.ObjectsProcessed, &c.ExpectedObjects, &c.Errors, &c.Warnings}
}

func (c Counters) put(p props) {
	for i, f := range c.fields() {
		p.setI64(counterNames[i], *f)
	}
}

func countersFrom(p props) Counters {
	var c Counters
	for i, f := range c.fields() {
		*f = p.i64(counterNames[i])
	}
	return c
}

// maxStringProp is Table Storage's limit for one string property (64 KiB
// of UTF-16).
const maxStringProp = 32 << 10

// Migration is one user request to move a source into a container.
type Migration struct {
	ID string
	// ClientRequestID is the caller's idempotency key, if it sent one.
	ClientRequestID string
	// ContainerID is the target SharePoint Embedded container.
	ContainerID string
	// Request is the request as accepted (JSON), at most 32 KiB.
	Request string
	State   MigrationState
	// CancelRequested is set by a cancel; steps wind down.
	CancelRequested bool
	// Reason says why the migration failed or was cancelled.
	Reason string
	Counters
	// Planning position: PlanPage is the next source page to plan,
	// SourceCursor where it starts; PlanComplete once the source is done.
	PlanPage     int64
	SourceCursor string
	PlanComplete bool
	// NextBatch is the index the next planned batch gets.
	NextBatch int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// ETag is the version read; writes are conditional on it.
	ETag azcore.ETag
}

const migrationRK = "m"

func (m *Migration) props() props {
	p := props{}
	p.setStr("ClientRequestID", m.ClientRequestID)
	p.setStr("ContainerID", m.ContainerID)
	p.setStr("Request", m.Request)
	p.setStr("State", string(m.State))
	p.setBool("CancelRequested", m.CancelRequested)
	p.setStr("Reason", m.Reason)
	m.Counters.put(p)
	p.setI64("PlanPage", m.PlanPage)
	p.setStr("SourceCursor", m.SourceCursor)
	p.setBool("PlanComplete", m.PlanComplete)
	p.setI64("NextBatch", m.NextBatch)
	p.setTime("CreatedAt", m.CreatedAt)
	p.setTime("UpdatedAt", m.UpdatedAt)
	return p
}

func migrationFrom(e rawEntity) Migration {
	p := e.p
	return Migration{
		ID: e.pk, ClientRequestID: p.str("ClientRequestID"), ContainerID: p.str("ContainerID"), Request: p.str("Request"),
		State: MigrationState(p.str("State")), CancelRequested: p.boolean("CancelRequested"),
		Reason: p.str("Reason"), Counters: countersFrom(p),
		PlanPage: p.i64("PlanPage"), SourceCursor: p.str("SourceCursor"), PlanComplete: p.boolean("PlanComplete"),
		NextBatch: p.i64("NextBatch"),
		CreatedAt: p.time("CreatedAt"), UpdatedAt: p.time("UpdatedAt"), ETag: e.etag,
	}
}

func (m *Migration) validate() error {
	if err := checkKey("migration id", m.ID); err != nil {
		return err
	}
	if len(m.Request) > maxStringProp {
		return fmt.Errorf("state: migration %s: request is %d bytes; at most %d fit in one entity", m.ID, len(m.Request), maxStringProp)
	}
	if len(m.Reason) > maxStringProp {
		m.Reason = m.Reason[:maxStringProp]
	}
	return nil
}

// CreateMigration stores m if no migration with its ID exists. If one does,
// it returns the stored one and created=false: derive the ID from the
// client's idempotency key to make submission idempotent. A non-terminal
// migration is listed by [Store.InFlight].
func (s *Store) CreateMigration(ctx context.Context, m Migration) (stored Migration, created bool, err error) {
	if m.State == "" {
		m.State = MigrationAccepted
	}
	now := s.now().UTC()
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	m.UpdatedAt = now
	if err := m.validate(); err != nil {
		return Migration{}, false, err
	}
	if !m.State.Terminal() {
		if err := s.putInFlight(ctx, m.ID, "", string(m.State), time.Time{}, m.UpdatedAt); err != nil {
			return Migration{}, false, err
		}
	}
	data, err := marshalEntity(m.ID, migrationRK, m.props())
	if err != nil {
		return Migration{}, false, err
	}
	resp, err := s.migrations.AddEntity(ctx, data, nil)
	if isConflict(err) {
		got, gerr := s.GetMigration(ctx, m.ID)
		return got, false, gerr
	}
	if err != nil {
		return Migration{}, false, storageErr("create migration "+m.ID, err)
	}
	m.ETag = resp.ETag
	return m, true, nil
}

// GetMigration reads one migration; ErrNotFound if absent.
func (s *Store) GetMigration(ctx context.Context, id string) (Migration, error) {
	if err := checkKey("migration id", id); err != nil {
		return Migration{}, err
	}
	e, found, err := getRaw(ctx, s.migrations, id, migrationRK, "get migration "+id)
	if err != nil {
		return Migration{}, err
	}
	if !found {
		return Migration{}, fmt.Errorf("migration %s: %w", id, ErrNotFound)
	}
	return migrationFrom(e), nil
}

// ReplaceMigration writes m if the stored migration still has m.ETag, and
// returns it with its new ETag; [ErrStale] when another writer got there
// first (re-read and decide again). It maintains the in-flight index.
// Prefer [Store.UpdateMigration], which does the re-read loop.
func (s *Store) ReplaceMigration(ctx context.Context, m Migration) (Migration, error) {
	if m.ETag == "" {
		return Migration{}, fmt.Errorf("state: replace migration %s: no ETag (read it first)", m.ID)
	}
	m.UpdatedAt = s.now().UTC()
	if err := m.validate(); err != nil {
		return Migration{}, err
	}
	if !m.State.Terminal() {
		if err := s.putInFlight(ctx, m.ID, "", string(m.State), time.Time{}, m.UpdatedAt); err != nil {
			return Migration{}, err
		}
	}
	data, err := marshalEntity(m.ID, migrationRK, m.props())
	if err != nil {
		return Migration{}, err
	}
	etag := m.ETag
	resp, err := s.migrations.UpdateEntity(ctx, data, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	if isPrecondition(err) || isNotFound(err) {
		return Migration{}, fmt.Errorf("migration %s: %w", m.ID, ErrStale)
	}
	if err != nil {
		return Migration{}, storageErr("update migration "+m.ID, err)
	}
	m.ETag = resp.ETag
	if m.State.Terminal() {
		if err := s.deleteInFlight(ctx, m.ID, ""); err != nil {
			return m, err
		}
	}
	return m, nil
}

// UpdateMigration reads the migration, applies fn, and writes the result
// conditionally on the ETag it read. When another writer got there first it
// re-reads and calls fn again, so fn must decide from the entity it is given
// (and be free of side effects it cannot repeat). fn returning ErrNoChange
// ends without a write; any other error is returned as is.
func (s *Store) UpdateMigration(ctx context.Context, id string, fn func(*Migration) error) (Migration, error) {
	for attempt := 0; attempt < s.maxAttempts; attempt++ {
		m, err := s.GetMigration(ctx, id)
		if err != nil {
			return Migration{}, err
		}
		read := m
		if err := fn(&m); err != nil {
			if errors.Is(err, ErrNoChange) {
				return read, nil
			}
			return read, err
		}
		m.ID, m.CreatedAt, m.ETag = read.ID, read.CreatedAt, read.ETag
		got, err := s.ReplaceMigration(ctx, m)
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return read, err
		}
		return got, nil
	}
	return Migration{}, fmt.Errorf("update migration %s: %w", id, ErrConflict)
}

// ListMigrations returns up to n migrations after the page token ("" for
// the first page) and the token of the next page ("" when done).
func (s *Store) ListMigrations(ctx context.Context, pageToken string, n int) ([]Migration, string, error) {
	if n <= 0 || n > 1000 {
		n = 1000
	}
	filter := "RowKey eq " + quote(migrationRK)
	if pageToken != "" {
		filter = "PartitionKey gt " + quote(pageToken) + " and " + filter
	}
	var out []Migration
	err := s.list(ctx, s.migrations, filter, n, func(e rawEntity) { out = append(out, migrationFrom(e)) })
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) == n {
		next = out[n-1].ID
	}
	return out, next, nil
}

// list runs a query, calling f for each entity, stopping after limit
// entities (0 = all).
func (s *Store) list(ctx context.Context, c *aztables.Client, filter string, limit int, f func(rawEntity)) error {
	opts := &aztables.ListEntitiesOptions{Filter: &filter}
	if limit > 0 && limit <= 1000 {
		top := int32(limit)
		opts.Top = &top
	}
	pager := c.NewListEntitiesPager(opts)
	seen := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return storageErr("query", err)
		}
		for _, raw := range page.Entities {
			e, err := unmarshalEntity(raw, "")
			if err != nil {
				return err
			}
			f(e)
			seen++
			if limit > 0 && seen >= limit {
				return nil
			}
		}
	}
	return nil
}
