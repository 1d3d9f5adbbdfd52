package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// Counters are stored as one property each, under these names.
var counterNames = []string{"Entries", "Items", "Skipped", "Unchanged", "Renamed", "BytesPlanned",
	"Batches", "BatchesDone", "BatchesFailed", "BatchesCancelled", "BatchesWithErrors",
	"FilesMigrated", "FilesFailed", "BytesMigrated", "Errors", "Warnings"}

func (c *MigrationCounters) fields() []*int64 {
	return []*int64{&c.Entries, &c.Items, &c.Skipped, &c.Unchanged, &c.Renamed, &c.BytesPlanned,
		&c.Batches, &c.BatchesDone, &c.BatchesFailed, &c.BatchesCancelled, &c.BatchesWithErrors,
		&c.FilesMigrated, &c.FilesFailed, &c.BytesMigrated, &c.Errors, &c.Warnings}
}

// maxStringProp is Table Storage's limit for one string property (64 KiB
// of UTF-16).
const maxStringProp = 32 << 10

const migrationRK = "m"

// requestSealContext binds a sealed request to its migration's row, so a
// sealed request copied to another row does not open.
func requestSealContext(id string) string { return "Migrations/" + id + "/Request" }

// migrationCodec turns a Migration into properties and back; the request
// is sealed and opened here and nowhere else.
func (s *Store) migrationProps(m *Migration) (props, error) {
	p := props{}
	p.setStr("ContainerID", m.ContainerID)
	if m.Request.V != 0 {
		body, err := json.Marshal(m.Request)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		if len(body) > maxStringProp*3/4 {
			return nil, fmt.Errorf("state: migration %s: request is %d bytes; at most %d fit in one entity", m.ID, len(body), maxStringProp*3/4)
		}
		sealed, err := s.sealer.SealFor(string(body), requestSealContext(m.ID))
		if err != nil {
			return nil, fmt.Errorf("seal request: %w", err)
		}
		p.setStr("Request", sealed)
	}
	p.setStr("Status", string(m.Status))
	p.setBool("CancelRequested", m.CancelRequested)
	p.setStr("Reason", truncate(m.Reason))
	for i, f := range m.Counters.fields() {
		p.setI64(counterNames[i], *f)
	}
	p.setI64("PlanPage", int64(m.PlanPage))
	p.setStr("PlanCursor", m.PlanCursor)
	p.setBool("PlanDone", m.PlanDone)
	p.setTime("Created", m.Created)
	p.setTime("Updated", m.Updated)
	verificationProps(p, m.Verification)
	return p, nil
}

func (s *Store) migrationFrom(e rawEntity) (*Migration, error) {
	p := e.p
	m := &Migration{
		ID: e.pk, ContainerID: p.str("ContainerID"),
		Status: MigrationStatus(p.str("Status")), CancelRequested: p.boolean("CancelRequested"), Reason: p.str("Reason"),
		PlanPage: int(p.i64("PlanPage")), PlanCursor: p.str("PlanCursor"), PlanDone: p.boolean("PlanDone"),
		Created: p.time("Created"), Updated: p.time("Updated"), ETag: string(e.etag),
	}
	for i, f := range m.Counters.fields() {
		*f = p.i64(counterNames[i])
	}
	m.Verification = verificationFrom(p)
	if sealed := p.str("Request"); sealed != "" {
		body, err := s.sealer.OpenFor(sealed, requestSealContext(m.ID))
		if err != nil {
			return nil, fmt.Errorf("migration %s: open request: %w", m.ID, err)
		}
		// Validated when it was accepted: decode only, so that a rule added
		// later cannot make a running migration unreadable.
		if err := json.Unmarshal([]byte(body), &m.Request); err != nil {
			return nil, fmt.Errorf("migration %s: stored request: malformed", m.ID)
		}
	}
	return m, nil
}

func truncate(s string) string {
	if len(s) > maxStringProp {
		return s[:maxStringProp]
	}
	return s
}

// indexedMigration encodes m and, while it is not terminal, writes its
// in-flight row first (an index row may outlive its entity, never the
// reverse).
func (s *Store) indexedMigration(ctx context.Context, m *Migration) ([]byte, error) {
	p, err := s.migrationProps(m)
	if err != nil {
		return nil, err
	}
	if !m.Status.Terminal() {
		if err := s.putInFlight(ctx, Ref{MigrationID: m.ID, ContainerID: m.ContainerID, Status: string(m.Status), Updated: m.Updated}); err != nil {
			return nil, err
		}
	}
	return marshalEntity(m.ID, migrationRK, p)
}

// CreateMigration stores m if no migration with its ID exists, and sets its
// ETag; [ErrExists] if one does. A non-terminal migration is indexed in
// flight first.
func (s *Store) CreateMigration(ctx context.Context, m *Migration) error {
	if err := checkKey("migration id", m.ID); err != nil {
		return err
	}
	if m.Status == "" {
		m.Status = MigrationRunning
	}
	now := s.now().UTC()
	if m.Created.IsZero() {
		m.Created = now
	}
	m.Updated = now
	data, err := s.indexedMigration(ctx, m)
	if err != nil {
		return err
	}
	resp, err := s.migrations.AddEntity(ctx, data, nil)
	if isConflict(err) {
		return fmt.Errorf("migration %s: %w", m.ID, ErrExists)
	}
	if err != nil {
		return storageErr("create migration "+m.ID, err)
	}
	m.ETag = string(resp.ETag)
	return nil
}

// GetMigration reads one migration; ErrNotFound if absent.
func (s *Store) GetMigration(ctx context.Context, id string) (*Migration, error) {
	if err := checkKey("migration id", id); err != nil {
		return nil, err
	}
	e, found, err := getRaw(ctx, s.migrations, id, migrationRK, "get migration "+id)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("migration %s: %w", id, ErrNotFound)
	}
	return s.migrationFrom(e)
}

// ReplaceMigration writes m if the stored migration still has m.ETag and
// sets the new ETag; [ErrStale] when another writer got there first (re-read
// and decide again: [Update] does). It maintains the in-flight index.
func (s *Store) ReplaceMigration(ctx context.Context, m *Migration) error {
	if m.ETag == "" {
		return fmt.Errorf("state: replace migration %s: no ETag (read it first)", m.ID)
	}
	m.Updated = s.now().UTC()
	data, err := s.indexedMigration(ctx, m)
	if err != nil {
		return err
	}
	etag := azcore.ETag(m.ETag)
	resp, err := s.migrations.UpdateEntity(ctx, data, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	if isPrecondition(err) || isNotFound(err) {
		return fmt.Errorf("migration %s: %w", m.ID, ErrStale)
	}
	if err != nil {
		return storageErr("update migration "+m.ID, err)
	}
	m.ETag = string(resp.ETag)
	if m.Status.Terminal() {
		return s.deleteInFlight(ctx, m.ID, "")
	}
	return nil
}

// ListMigrations returns up to n migrations after the page token ("" for
// the first page) and the token of the next page ("" when done).
func (s *Store) ListMigrations(ctx context.Context, pageToken string, n int) ([]*Migration, string, error) {
	if n <= 0 || n > 1000 {
		n = 1000
	}
	filter := "RowKey eq " + quote(migrationRK)
	if pageToken != "" {
		filter = "PartitionKey gt " + quote(pageToken) + " and " + filter
	}
	var out []*Migration
	var derr error
	err := s.list(ctx, s.migrations, filter, n, func(e rawEntity) {
		m, err := s.migrationFrom(e)
		if err != nil {
			derr = errors.Join(derr, err)
			return
		}
		out = append(out, m)
	})
	if err = errors.Join(err, derr); err != nil {
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
