// Package state keeps spemigrate's durable truth in Azure Table Storage:
// migrations, their batches, the progress events each batch's job produced,
// per-item results for the report, and the case-insensitive name claims the
// naming policy uses to detect collisions.
//
// Queue messages carry only ids; handlers load entities from here, decide,
// and move state forward with ETag-conditional writes. A writer that loses a
// race re-reads and decides again ([Store.UpdateMigration],
// [Store.UpdateBatch]), so duplicate and concurrent deliveries converge.
//
// Secrets (the provisioned SAS URLs and the AES key) are sealed with
// AES-256-GCM before they are written; see [Sealer].
//
// Tables (names prefixed by [Options.TablePrefix]):
//
//	Migrations  PK=migration id, RK="m"
//	Batches     PK=migration id, RK=batch id
//	InFlight    PK="inflight", RK=migration id + "|" + batch id — one row per
//	            non-terminal batch and per non-terminal migration (batch id
//	            empty), so the drain timer's cost follows the work in
//	            flight, not history
//	Events      PK=migration id + "|" + batch id, RK=event id
//	Items       PK=migration id + "|" + batch id, RK=sequence: a batch's items
//	Results     PK=migration id, RK=sha256(source path, version): the report,
//	            with the last verify run's result merged in per row
//	Claims      PK=migration id (naming collisions) or "container|" + container
//	            id (list-item ids per library path), RK=sha256 of the key
//	Targets     PK=container id, RK="t": the container's list-item id counter
//	            and whether any import into it was recorded
//	Imports     PK=container id, RK=the lower-cased library path with the
//	            characters keys refuse (and %, ~) as %XX, or "~" + its
//	            sha256 when over 900 bytes: what was last imported there
//	            (for incremental re-runs; one range query per plan page)
package state

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// Errors; test with errors.Is.
var (
	ErrNotFound = errors.New("state: not found")
	// ErrStale: a Replace lost a race (the ETag no longer matches).
	ErrStale = errors.New("state: entity changed since it was read")
	// ErrExists: a Create found the entity already stored.
	ErrExists = errors.New("state: already exists")
	// ErrContended: an update gave up after too many lost races; the
	// caller should try again later (a queue message is redelivered).
	ErrContended = errors.New("state: too many concurrent updates")
	// ErrNoChange, returned by an update function, ends the update without
	// writing; Update then returns the entity as read and a nil error.
	ErrNoChange = errors.New("state: no change")
)

// Options configure a [Store].
type Options struct {
	// TablePrefix is prepended to every table name (letters and digits
	// only), so several deployments or tests can share an account.
	TablePrefix string
	// SealKey is base64 of the 32-byte AES key that seals secrets; required.
	SealKey string
	// MaxAttempts bounds how often an update re-reads after losing a race
	// (default 20).
	MaxAttempts int
	// Now is the clock; nil uses time.Now. Tests set it.
	Now func() time.Time
}

// Store reads and writes spemigrate's state. Safe for concurrent use.
type Store struct {
	migrations, batches, inflight, events, items, results, claims, targets, imports *aztables.Client

	svc         *aztables.ServiceClient
	names       []string
	sealer      *Sealer
	maxAttempts int
	now         func() time.Time
	flagged     sync.Map // container id -> true: HasImports known set
	// importScan is how many rows beyond 4 per path GetImports scans
	// before it reads the rest one by one (tests lower it).
	importScan int
}

var prefixRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,40}$`)

// New returns a Store on svc. Call [Store.CreateTables] once (idempotent)
// before first use.
func New(svc *aztables.ServiceClient, opts Options) (*Store, error) {
	if opts.TablePrefix != "" && !prefixRE.MatchString(opts.TablePrefix) {
		return nil, fmt.Errorf("state: TablePrefix %q: use letters and digits, starting with a letter", opts.TablePrefix)
	}
	if opts.SealKey == "" {
		return nil, errors.New("state: SealKey is required (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)")
	}
	sealer, err := NewSealer(opts.SealKey)
	if err != nil {
		return nil, err
	}
	s := &Store{svc: svc, sealer: sealer, maxAttempts: opts.MaxAttempts, now: opts.Now, importScan: 1000}
	if s.maxAttempts <= 0 {
		s.maxAttempts = 20
	}
	if s.now == nil {
		s.now = time.Now
	}
	p := opts.TablePrefix
	for _, t := range []struct {
		c    **aztables.Client
		name string
	}{{&s.migrations, "Migrations"}, {&s.batches, "Batches"}, {&s.inflight, "InFlight"}, {&s.events, "Events"}, {&s.items, "Items"}, {&s.results, "Results"}, {&s.claims, "Claims"}, {&s.targets, "Targets"}, {&s.imports, "Imports"}} {
		*t.c = svc.NewClient(p + t.name)
		s.names = append(s.names, p+t.name)
	}
	return s, nil
}

// Sealer is the store's sealer, for whatever else the process seals with
// the same key (the schedule table's templates), so the key is held once.
func (s *Store) Sealer() *Sealer { return s.sealer }

// NewFromConnectionString is New over a storage connection string.
func NewFromConnectionString(conn string, opts Options) (*Store, error) {
	svc, err := aztables.NewServiceClientFromConnectionString(conn, nil)
	if err != nil {
		return nil, fmt.Errorf("state: storage connection string: %w", err)
	}
	return New(svc, opts)
}

// CreateTables creates the tables that do not exist yet.
func (s *Store) CreateTables(ctx context.Context) error {
	for _, name := range s.names {
		_, err := s.svc.CreateTable(ctx, name, nil)
		if err != nil && !hasCode(err, string(aztables.TableAlreadyExists)) {
			return fmt.Errorf("state: create table %s: %w", name, err)
		}
	}
	return nil
}

// TableNames lists the store's tables (for tests and clean-up tooling).
func (s *Store) TableNames() []string { return append([]string(nil), s.names...) }

func hasCode(err error, code string) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && strings.EqualFold(re.ErrorCode, code)
}

func statusIs(err error, status int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}

func isNotFound(err error) bool     { return statusIs(err, http.StatusNotFound) }
func isConflict(err error) bool     { return statusIs(err, http.StatusConflict) }
func isPrecondition(err error) bool { return statusIs(err, http.StatusPreconditionFailed) }

// storageErr reduces an SDK error to status and code: azcore's ResponseError
// text embeds the whole response body.
func storageErr(op string, err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return &StorageError{Op: op, StatusCode: re.StatusCode, Code: re.ErrorCode}
	}
	return fmt.Errorf("state: %s: %w", op, err)
}

// StorageError is a Table Storage failure, without the response body.
type StorageError struct {
	Op         string
	StatusCode int
	Code       string
}

func (e *StorageError) Error() string {
	return fmt.Sprintf("state: %s: table storage HTTP %d %s", e.Op, e.StatusCode, e.Code)
}

// getRaw reads one entity. A missing entity is found=false with no error;
// any other failure is a storage error naming op.
func getRaw(ctx context.Context, c *aztables.Client, pk, rk, op string) (e rawEntity, found bool, err error) {
	resp, err := c.GetEntity(ctx, pk, rk, nil)
	if isNotFound(err) {
		return rawEntity{}, false, nil
	}
	if err != nil {
		return rawEntity{}, false, storageErr(op, err)
	}
	e, err = unmarshalEntity(resp.Value, resp.ETag)
	if err != nil {
		return rawEntity{}, false, err
	}
	return e, true, nil
}
