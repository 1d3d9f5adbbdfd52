package wiring

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/spemigrate/spemigrate/shared/state"
)

// The list-item int id base strategies (SPEMIGRATE_INT_ID_BASE).
const (
	// IntIDBaseLibrary allocates above the highest id the library holds,
	// read from the drive's changes once per migration.
	IntIDBaseLibrary = "library"
	// IntIDBaseFixed allocates from the first id only (a library known to
	// be empty, or one whose delta cannot be read).
	IntIDBaseFixed = "fixed"
)

// DeltaReader reads a drive's highest list-item id since a delta link.
type DeltaReader interface {
	MaxListItemID(ctx context.Context, driveID, deltaLink string) (maxID int64, nextDelta string, err error)
}

// IntIDBase decides the floor list-item ids are reserved from in a
// container. Graph has no "highest list item id" query, so with
// [IntIDBaseLibrary] the drive's delta is read (ids of every item the
// first time, then only the changes since the stored delta link), once
// per migration and container, and the highest id seen is kept in the
// container's state row beside the delta link: ids are then reserved
// above max(highest seen, reserved before), so they never collide with an
// item the library held when the migration started.
type IntIDBase struct {
	Graph    DeltaReader
	State    *state.Store
	Strategy string // IntIDBaseLibrary (default) or IntIDBaseFixed
	First    int64  // the lowest id ever handed out

	mu     sync.Mutex
	floors map[string]int64 // container + "\x00" + migration -> floor
	// calls shares one delta read among the batches that start together.
	calls singleflight.Group
}

// Floor returns the lowest id to reserve from for a migration into a
// container.
func (b *IntIDBase) Floor(ctx context.Context, containerID, migrationID string) (int64, error) {
	if b.Strategy == IntIDBaseFixed || b.Graph == nil {
		return b.First, nil
	}
	key := containerID + "\x00" + migrationID
	b.mu.Lock()
	f, ok := b.floors[key]
	b.mu.Unlock()
	if ok {
		return f, nil
	}
	v, err, _ := b.calls.Do(key, func() (any, error) { return b.read(ctx, containerID, migrationID) })
	if err != nil {
		return 0, err
	}
	f = v.(int64)
	b.mu.Lock()
	if b.floors == nil {
		b.floors = map[string]int64{}
	}
	if len(b.floors) > 10_000 {
		clear(b.floors) // a long-lived process: forget old migrations
	}
	b.floors[key] = f
	b.mu.Unlock()
	return f, nil
}

// read is Floor from the container's state row, reading the drive's
// changes when this migration has not yet.
func (b *IntIDBase) read(ctx context.Context, containerID, migrationID string) (int64, error) {
	t, err := b.State.GetTarget(ctx, containerID)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return 0, fmt.Errorf("read target container %s: %w", containerID, err)
	}
	highest := t.LibraryMaxIntID
	if t.ScannedFor != migrationID {
		seen, link, err := b.Graph.MaxListItemID(ctx, containerID, t.DeltaLink)
		if err != nil {
			return 0, fmt.Errorf("read the highest list item id of container %s: %w", containerID, err)
		}
		t, err = b.State.UpdateTarget(ctx, containerID, func(t *state.Target) error {
			t.LibraryMaxIntID = max(t.LibraryMaxIntID, seen)
			t.DeltaLink, t.ScannedFor = link, migrationID
			return nil
		})
		if err != nil {
			return 0, err
		}
		highest = t.LibraryMaxIntID
	}
	return max(b.First, highest+1), nil
}
