package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// Sealer seals the template (it may hold a SAS URL) before it is stored.
// *state.Sealer implements it.
type Sealer interface {
	SealFor(plaintext, context string) (string, error)
	OpenFor(sealed, context string) (string, error)
}

// TableStore keeps schedules in one Table Storage table, partition
// "schedule", one row per schedule. The template is stored sealed; its
// redacted form is stored beside it for people reading the table.
type TableStore struct {
	table  *aztables.Client
	svc    *aztables.ServiceClient
	name   string
	sealer Sealer
}

const partition = "schedule"

// NewTableStore returns a store on table <prefix>Schedules.
func NewTableStore(svc *aztables.ServiceClient, prefix string, sealer Sealer) *TableStore {
	name := prefix + "Schedules"
	return &TableStore{table: svc.NewClient(name), svc: svc, name: name, sealer: sealer}
}

// CreateTable creates the table if it does not exist.
func (s *TableStore) CreateTable(ctx context.Context) error {
	_, err := s.svc.CreateTable(ctx, s.name, nil)
	if err != nil && !hasCode(err, string(aztables.TableAlreadyExists)) {
		return fmt.Errorf("create table %s: %w", s.name, clean(err))
	}
	return nil
}

type entity struct {
	PartitionKey     string `json:"PartitionKey"`
	RowKey           string `json:"RowKey"`
	Cron             string `json:"Cron"`
	Template         string `json:"Template"`         // sealed request JSON
	TemplateRedacted string `json:"TemplateRedacted"` // for people reading the table
	Created          string `json:"Created"`
	LastSlot         string `json:"LastSlot,omitempty"`
	LastMigrationID  string `json:"LastMigrationID,omitempty"`
}

func sealContext(id string) string { return "Schedules/" + id + "/Template" }

func (s *TableStore) toEntity(sc *Schedule) ([]byte, error) {
	full, err := json.Marshal(sc.Request)
	if err != nil {
		return nil, err
	}
	sealed, err := s.sealer.SealFor(string(full), sealContext(sc.ID))
	if err != nil {
		return nil, fmt.Errorf("seal template: %w", err)
	}
	red, _ := json.Marshal(sc.Request.Redacted())
	e := entity{PartitionKey: partition, RowKey: sc.ID, Cron: sc.Cron, Template: sealed, TemplateRedacted: string(red),
		Created: sc.Created.UTC().Format(time.RFC3339Nano), LastMigrationID: sc.LastMigrationID}
	if !sc.LastSlot.IsZero() {
		e.LastSlot = sc.LastSlot.UTC().Format(time.RFC3339)
	}
	return json.Marshal(e)
}

func (s *TableStore) fromEntity(data []byte, etag azcore.ETag) (*Schedule, error) {
	var e entity
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("decode schedule entity: %w", err)
	}
	plain, err := s.sealer.OpenFor(e.Template, sealContext(e.RowKey))
	if err != nil {
		return nil, fmt.Errorf("schedule %s: open template: %w", e.RowKey, err)
	}
	sc := &Schedule{ID: e.RowKey, Cron: e.Cron, LastMigrationID: e.LastMigrationID, ETag: string(etag)}
	if err := json.Unmarshal([]byte(plain), &sc.Request); err != nil {
		return nil, fmt.Errorf("schedule %s: template is malformed", e.RowKey)
	}
	sc.Created, _ = time.Parse(time.RFC3339Nano, e.Created)
	if e.LastSlot != "" {
		sc.LastSlot, _ = time.Parse(time.RFC3339, e.LastSlot)
	}
	return sc, nil
}

// Create stores a new schedule; ErrExists if the id is taken.
func (s *TableStore) Create(ctx context.Context, sc *Schedule) error {
	b, err := s.toEntity(sc)
	if err != nil {
		return err
	}
	resp, err := s.table.AddEntity(ctx, b, nil)
	if err != nil {
		if statusIs(err, http.StatusConflict) {
			return ErrExists
		}
		return fmt.Errorf("add schedule %s: %w", sc.ID, clean(err))
	}
	sc.ETag = string(resp.ETag)
	return nil
}

// Get returns one schedule; ErrNotFound if there is none.
func (s *TableStore) Get(ctx context.Context, id string) (*Schedule, error) {
	resp, err := s.table.GetEntity(ctx, partition, id, nil)
	if err != nil {
		if statusIs(err, http.StatusNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("get schedule %s: %w", id, clean(err))
	}
	return s.fromEntity(resp.Value, resp.ETag)
}

// List returns every schedule, by id.
func (s *TableStore) List(ctx context.Context) ([]*Schedule, error) {
	filter := "PartitionKey eq '" + partition + "'"
	pager := s.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	var out []*Schedule
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", clean(err))
		}
		for _, raw := range page.Entities {
			var meta struct {
				ETag string `json:"odata.etag"`
			}
			_ = json.Unmarshal(raw, &meta)
			sc, err := s.fromEntity(raw, azcore.ETag(meta.ETag))
			if err != nil {
				return nil, err
			}
			out = append(out, sc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Delete removes a schedule; ErrNotFound if there is none.
func (s *TableStore) Delete(ctx context.Context, id string) error {
	_, err := s.table.DeleteEntity(ctx, partition, id, nil)
	if err != nil {
		if statusIs(err, http.StatusNotFound) {
			return ErrNotFound
		}
		return fmt.Errorf("delete schedule %s: %w", id, clean(err))
	}
	return nil
}

// MarkSlot records the started slot, conditionally on sc.ETag.
func (s *TableStore) MarkSlot(ctx context.Context, sc *Schedule, slot time.Time, migrationID string) error {
	next := *sc
	next.LastSlot, next.LastMigrationID = slot, migrationID
	b, err := s.toEntity(&next)
	if err != nil {
		return err
	}
	etag := azcore.ETag(sc.ETag)
	resp, err := s.table.UpdateEntity(ctx, b, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	if err != nil {
		if statusIs(err, http.StatusPreconditionFailed) || statusIs(err, http.StatusNotFound) {
			return ErrConflict
		}
		return fmt.Errorf("update schedule %s: %w", sc.ID, clean(err))
	}
	sc.LastSlot, sc.LastMigrationID, sc.ETag = slot, migrationID, string(resp.ETag)
	return nil
}

func statusIs(err error, status int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}

func hasCode(err error, code string) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.ErrorCode == code
}

// clean drops the response body azcore puts in its error text.
func clean(err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("table storage HTTP %d %s", re.StatusCode, re.ErrorCode)
	}
	return err
}
