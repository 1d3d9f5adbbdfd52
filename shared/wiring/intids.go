package wiring

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/spemigrate/spemigrate/shared/spepackage"
	"github.com/spemigrate/spemigrate/shared/state"
)

// IntIDs hands out SharePoint list-item int ids for one target container
// (one library): ids are reserved from the container's counter
// (state.Store.ReserveIntIDs, a conditional write), and each library path
// claims its id in the container's claims (insert-if-absent), so the same
// path gets the same id on every staging, in every process and in every
// migration into the container (a re-run replaces), and no id is handed to
// two paths. Ids reserved but not used (the path held an id already, or a
// concurrent claimant won) are never reused (gaps are harmless).
//
// [IntIDs.Prefetch] claims a whole batch's paths up front, in a handful of
// Table transactions; IntID then answers from memory, and claims one path
// at a time only for a path Prefetch was not given.
type IntIDs struct {
	st          *state.Store
	containerID string
	first       int64
	block       int64

	mu        sync.Mutex
	known     map[string]int // spepackage.PathKey of a library path -> claimed id
	next, end int64
}

// NewIntIDs returns the allocator for a target container; first is the
// lowest id to hand out (above the library's existing items), block how
// many ids one counter write reserves for paths claimed one at a time.
func NewIntIDs(st *state.Store, containerID string, first, block int64) *IntIDs {
	if block <= 0 {
		block = 64
	}
	return &IntIDs{st: st, containerID: containerID, first: first, block: block, known: map[string]int{}}
}

// Prefetch claims ids for libraryPaths (files and folders) at once: one
// counter write reserves an id per path not known yet, and one
// state.Store.ClaimManyInContainer offers them; a path that already holds
// an id keeps it.
func (a *IntIDs) Prefetch(ctx context.Context, libraryPaths []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var keys []string
	seen := map[string]bool{}
	for _, p := range libraryPaths {
		k := spepackage.PathKey(p)
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		if _, ok := a.known[k]; !ok {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	from, err := a.st.ReserveIntIDs(ctx, a.containerID, a.first, int64(len(keys)))
	if err != nil {
		return fmt.Errorf("reserve %d list item ids in container %s: %w", len(keys), a.containerID, err)
	}
	claimKeys := make([]string, len(keys))
	cands := make([]string, len(keys))
	for i, k := range keys {
		claimKeys[i] = "intid|" + k
		cands[i] = strconv.FormatInt(from+int64(i), 10)
	}
	owners, err := a.st.ClaimManyInContainer(ctx, a.containerID, claimKeys, cands)
	if err != nil {
		return fmt.Errorf("claim %d list item ids in container %s: %w", len(keys), a.containerID, err)
	}
	for i, k := range keys {
		id, err := strconv.ParseInt(owners[i], 10, 32)
		if err != nil {
			return fmt.Errorf("claimed list item id for %q is malformed", k)
		}
		a.known[k] = int(id)
	}
	return nil
}

// IntID implements spepackage.IntIDs.
func (a *IntIDs) IntID(ctx context.Context, libraryPath string) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := spepackage.PathKey(libraryPath)
	if id, ok := a.known[k]; ok {
		return id, nil
	}
	if a.next >= a.end {
		if err := a.reserve(ctx); err != nil {
			return 0, err
		}
	}
	cand := strconv.FormatInt(a.next, 10)
	owner, err := a.st.ClaimInContainer(ctx, a.containerID, "intid|"+k, cand)
	if err != nil {
		return 0, fmt.Errorf("claim list item id for %q: %w", libraryPath, err)
	}
	if owner == cand {
		a.next++
	}
	id, err := strconv.ParseInt(owner, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("claimed list item id for %q is malformed", libraryPath)
	}
	a.known[k] = int(id)
	return int(id), nil
}

func (a *IntIDs) reserve(ctx context.Context) error {
	from, err := a.st.ReserveIntIDs(ctx, a.containerID, a.first, a.block)
	if err != nil {
		return fmt.Errorf("reserve list item ids in container %s: %w", a.containerID, err)
	}
	a.next, a.end = from, from+a.block
	return nil
}
