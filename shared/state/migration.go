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
	Items            int64 // items planned
	Bytes            int64 // bytes planned
	Batches          int64 // batches planned (migrations only)
	BatchesCompleted int64
	BatchesFailed    int64
	Imported         int64 // per-item outcomes
	Renamed          int64
	Skipped          int64
	Failed           int64
	FilesProcessed   int64 // from progress events
	BytesProcessed   int64
	ObjectsProcessed int64
	Errors           int64
	Warnings         int64
}

func (c Counters) put(p props) {
	p.setI64("Items", c.Items)
	p.setI64("Bytes", c.Bytes)
	p.setI64("Batches", c.Batches)
	p.setI64("BatchesCompleted", c.BatchesCompleted)
	p.setI64("BatchesFailed", c.BatchesFailed)
	p.setI64("Imported", c.Imported)
	p.setI64("Renamed", c.Renamed)
	p.setI64("Skipped", c.Skipped)
	p.setI64("Failed", c.Failed)
	p.setI64("FilesProcessed", c.FilesProcessed)
	p.setI64("BytesProcessed", c.BytesProcessed)
	p.setI64("ObjectsProcessed", c.ObjectsProcessed)
	p.setI64("Errors", c.Errors)
	p.setI64("Warnings", c.Warnings)
}

func countersFrom(p props) Counters {
	return Counters{
		Items: p.i64("Items"), Bytes: p.i64("Bytes"), Batches: p.i64("Batches"),
		BatchesCompleted: p.i64("BatchesCompleted"), BatchesFailed: p.i64("BatchesFailed"),
		Imported: p.i64("Imported"), Renamed: p.i64("Renamed"), Skipped: p.i64("Skipped"), Failed: p.i64("Failed"),
		FilesProcessed: p.i64("FilesProcessed"), BytesProcessed: p.i64("BytesProcessed"),
		ObjectsProcessed: p.i64("ObjectsProcessed"), Errors: p.i64("Errors"), Warnings: p.i64("Warnings"),
	}
}

// maxStringProp is Table Storage's limit for one string property (64 KiB
// of UTF-16).
const maxStringProp = 32 << 10

// Migration is one user request to move a source into a container.
type Migration struct {
	ID string
	// ClientRequestID is the caller's idempotency key, if it sent one.
	ClientRequestID string
	// Request is the request as accepted (JSON), at most 32 KiB.
	Request string
	State   MigrationState
	// Reason says why the migration failed or was cancelled.
	Reason string
	Counters
	// SourceCursor is where planning resumes in the source listing.
	SourceCursor string
	// PlanComplete is set once the whole source has been planned.
	PlanComplete bool
	// NextBatch is the index the next planned batch gets.
	NextBatch int64
	// NextIntID is the next SharePoint list-item int id to allocate; ids are
	// never reused within a migration.
	NextIntID int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// ETag is the version read; writes are conditional on it.
	ETag azcore.ETag
}

const migrationRK = "m"

func (m *Migration) props() props {
	p := props{}
	p.setStr("ClientRequestID", m.ClientRequestID)
	p.setStr("Request", m.Request)
	p.setStr("State", string(m.State))
	p.setStr("Reason", m.Reason)
	m.Counters.put(p)
	p.setStr("SourceCursor", m.SourceCursor)
	p.setBool("PlanComplete", m.PlanComplete)
	p.setI64("NextBatch", m.NextBatch)
	p.setI64("NextIntID", m.NextIntID)
	p.setTime("CreatedAt", m.CreatedAt)
	p.setTime("UpdatedAt", m.UpdatedAt)
	return p
}

func migrationFrom(e rawEntity) Migration {
	p := e.p
	return Migration{
		ID: e.pk, ClientRequestID: p.str("ClientRequestID"), Request: p.str("Request"),
		State: MigrationState(p.str("State")), Reason: p.str("Reason"), Counters: countersFrom(p),
		SourceCursor: p.str("SourceCursor"), PlanComplete: p.boolean("PlanComplete"),
		NextBatch: p.i64("NextBatch"), NextIntID: p.i64("NextIntID"),
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
// client's idempotency key to make submission idempotent.
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
	resp, err := s.migrations.GetEntity(ctx, id, migrationRK, nil)
	if isNotFound(err) {
		return Migration{}, fmt.Errorf("migration %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Migration{}, storageErr("get migration "+id, err)
	}
	e, err := unmarshalEntity(resp.Value, resp.ETag)
	if err != nil {
		return Migration{}, err
	}
	return migrationFrom(e), nil
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
		m.ID, m.CreatedAt, m.UpdatedAt = read.ID, read.CreatedAt, s.now().UTC()
		if err := m.validate(); err != nil {
			return read, err
		}
		data, err := marshalEntity(m.ID, migrationRK, m.props())
		if err != nil {
			return read, err
		}
		etag := read.ETag
		resp, err := s.migrations.UpdateEntity(ctx, data, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
		if isPrecondition(err) {
			continue
		}
		if err != nil {
			return read, storageErr("update migration "+id, err)
		}
		m.ETag = resp.ETag
		return m, nil
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
