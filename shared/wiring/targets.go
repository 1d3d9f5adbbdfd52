package wiring

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/request"
)

// TargetCache resolves (once per container) the SharePoint ids a package
// and the naming policy need.
type TargetCache struct {
	Graph interface {
		Target(ctx context.Context, containerID string) (graph.Target, error)
	}
	mu sync.Mutex
	m  map[string]graph.Target
}

// Get returns the container's library target.
func (tc *TargetCache) Get(ctx context.Context, containerID string) (graph.Target, error) {
	tc.mu.Lock()
	t, ok := tc.m[containerID]
	tc.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := tc.Graph.Target(ctx, containerID)
	if err != nil {
		return t, err
	}
	tc.mu.Lock()
	if tc.m == nil {
		tc.m = map[string]graph.Target{}
	}
	tc.m[containerID] = t
	tc.mu.Unlock()
	return t, nil
}

// CheckTarget implements pipeline.TargetChecker.
func (tc *TargetCache) CheckTarget(ctx context.Context, containerID string) error {
	_, err := tc.Get(ctx, containerID)
	var msg string
	switch {
	case err == nil:
		return nil
	case errors.Is(err, graph.ErrNotFound):
		msg = "no SharePoint Embedded container with this id; check the id (b!…) and that the container exists"
	case errors.Is(err, graph.ErrAccessDenied):
		msg = "the app may not use this container; grant its container type to the app registration"
	default:
		return fmt.Errorf("look up target container: %w", err)
	}
	return &request.Error{Fields: []request.FieldError{{Field: "target.containerId", Message: msg}}}
}

// nsRoot is spemigrate's UUID namespace for package namespaces.
var nsRoot = uuid.MustParse("6d1f3a52-7c1e-4b7e-9a57-2f0c3b1d9e44")

// Namespace is the package namespace for a target (container and
// destination folder), not for a run: re-running a migration into the same
// place replaces what an earlier run imported (spec §6.5).
func Namespace(containerID, folder string) uuid.UUID {
	return uuid.NewSHA1(nsRoot, []byte(containerID+"\x00"+strings.ToLower(strings.Trim(folder, "/"))))
}

// destPath prefixes a target path with the request's destination folder.
// The folder is created by the package like any other (deterministic id)
// unless the container holds it already; then FolderRefs has the package
// reference it by its GUID.
func destPath(r request.Request, p string) string {
	f := strings.Trim(r.Target.Folder, "/")
	if f == "" {
		return p
	}
	return f + "/" + p
}
