package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// Target is what spemigrate keeps per target container (one SharePoint
// Embedded container is one document library), shared by every migration
// into it: list-item int ids are unique per library, not per migration.
type Target struct {
	ContainerID string
	// NextIntID is the next SharePoint list-item int id to reserve in the
	// container's library; ids are never handed out twice.
	NextIntID int64
	// HasImports is set before the first import into the container is
	// recorded ([Store.PutImports]): while it is false, no file in the
	// container can be unchanged since an earlier import, and a planner
	// need not look.
	HasImports bool
	// LibraryMaxIntID is the highest list-item int id seen in the library
	// by reading its changes (drive delta), and DeltaLink where the next
	// read starts; ScannedFor is the migration that read them last, so
	// each migration reads the changes once.
	LibraryMaxIntID int64
	DeltaLink       string
	ScannedFor      string
	UpdatedAt       time.Time
	// ETag is the version read; writes are conditional on it.
	ETag azcore.ETag
}

const targetRK = "t"

func (t *Target) props() props {
	p := props{}
	p.setI64("NextIntID", t.NextIntID)
	p.setBool("HasImports", t.HasImports)
	p.setI64("LibraryMaxIntID", t.LibraryMaxIntID)
	p.setStr("DeltaLink", t.DeltaLink)
	p.setStr("ScannedFor", t.ScannedFor)
	p.setTime("UpdatedAt", t.UpdatedAt)
	return p
}

func targetFrom(e rawEntity) Target {
	return Target{ContainerID: e.pk, NextIntID: e.p.i64("NextIntID"), HasImports: e.p.boolean("HasImports"),
		LibraryMaxIntID: e.p.i64("LibraryMaxIntID"), DeltaLink: e.p.str("DeltaLink"), ScannedFor: e.p.str("ScannedFor"),
		UpdatedAt: e.p.time("UpdatedAt"), ETag: e.etag}
}

// GetTarget reads a container's entity; ErrNotFound if no migration has
// reserved anything in it yet.
func (s *Store) GetTarget(ctx context.Context, containerID string) (Target, error) {
	if err := checkKey("container id", containerID); err != nil {
		return Target{}, err
	}
	e, found, err := getRaw(ctx, s.targets, containerID, targetRK, "get target container "+containerID)
	if err != nil {
		return Target{}, err
	}
	if !found {
		return Target{}, fmt.Errorf("target container %s: %w", containerID, ErrNotFound)
	}
	return targetFrom(e), nil
}

// UpdateTarget reads the container's entity (a zero one if absent), applies
// fn and writes the result conditionally through [Update]: an insert that
// fails because another writer created the row, or a replace whose ETag no
// longer matches, re-reads and calls fn again. fn returning ErrNoChange ends
// without a write.
func (s *Store) UpdateTarget(ctx context.Context, containerID string, fn func(*Target) error) (Target, error) {
	if err := checkKey("container id", containerID); err != nil {
		return Target{}, err
	}
	reload := func(ctx context.Context) (*Target, error) {
		t, err := s.GetTarget(ctx, containerID)
		if errors.Is(err, ErrNotFound) {
			return &Target{ContainerID: containerID}, nil
		}
		return &t, err
	}
	cur, err := reload(ctx)
	if err != nil {
		return Target{}, err
	}
	got, _, err := Update(ctx, cur, reload, s.putTarget, func(t *Target) (bool, error) {
		if err := fn(t); err != nil {
			if errors.Is(err, ErrNoChange) {
				return false, nil
			}
			return false, err
		}
		return true, nil
	})
	if err != nil {
		return Target{}, fmt.Errorf("update target container %s: %w", containerID, err)
	}
	return *got, nil
}

// putTarget inserts a target read as absent (no ETag) or replaces one
// conditionally; a lost race either way is ErrStale.
func (s *Store) putTarget(ctx context.Context, t *Target) error {
	t.UpdatedAt = s.now().UTC()
	data, err := marshalEntity(t.ContainerID, targetRK, t.props())
	if err != nil {
		return err
	}
	if t.ETag == "" {
		resp, err := s.targets.AddEntity(ctx, data, nil)
		if isConflict(err) {
			return ErrStale
		}
		if err != nil {
			return storageErr("create target container "+t.ContainerID, err)
		}
		t.ETag = resp.ETag
		return nil
	}
	etag := t.ETag
	resp, err := s.targets.UpdateEntity(ctx, data, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	if isPrecondition(err) || isNotFound(err) {
		return ErrStale
	}
	if err != nil {
		return storageErr("update target container "+t.ContainerID, err)
	}
	t.ETag = resp.ETag
	return nil
}

// ReserveIntIDs reserves n consecutive list-item int ids in a container's
// library and returns the first: at least floor (ids the library may hold
// already), after every id reserved before by any migration.
func (s *Store) ReserveIntIDs(ctx context.Context, containerID string, floor, n int64) (int64, error) {
	if n <= 0 {
		return 0, fmt.Errorf("state: reserve list item ids: count %d must be positive", n)
	}
	var from int64
	_, err := s.UpdateTarget(ctx, containerID, func(t *Target) error {
		from = max(t.NextIntID, floor)
		t.NextIntID = from + n
		return nil
	})
	if err != nil {
		return 0, err
	}
	return from, nil
}

// containerClaimPK scopes claims to a container. Migration ids cannot
// contain "|", so these partitions never meet a migration's claims.
func containerClaimPK(containerID string) string { return "container|" + containerID }

// ClaimInContainer is [Store.Claim] scoped to a target container instead of
// a migration: every migration into the container sees the same holders
// (list-item ids per library path).
func (s *Store) ClaimInContainer(ctx context.Context, containerID, key, owner string) (existingOwner string, err error) {
	if err := checkKey("container id", containerID); err != nil {
		return "", err
	}
	return s.claim(ctx, containerClaimPK(containerID), key, owner)
}
