package wiring

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

// ImportLog is the [pipeline.Imports] over shared/state: one row per container and
// library path (state.Store.PutImports / GetImports). A page's lookups are
// one range query, or one read while nothing was ever imported into the
// container.
type ImportLog struct {
	State *state.Store
}

// Unchanged implements [pipeline.Imports].
func (l ImportLog) Unchanged(ctx context.Context, m *state.Migration, items []state.Item) (map[int]string, error) {
	r := m.Request
	if !r.Options.IsIncremental() {
		return nil, nil
	}
	src := sourceKey(r)
	targets := make([]string, len(items))
	for i, it := range items {
		targets[i] = it.Target
	}
	prev, err := l.State.GetImports(ctx, m.ContainerID, targets)
	if err != nil {
		return nil, fmt.Errorf("read earlier imports: %w", err)
	}
	out := map[int]string{}
	for i, p := range prev {
		if p.MigrationID != m.ID && sameVersion(p, src, items[i]) {
			out[i] = p.MigrationID
		}
	}
	return out, nil
}

// sameVersion reports whether prev recorded the import of exactly it's
// current source version from the same source file: the same ETag, or,
// for a source without ETags, the same size and last-modified time.
func sameVersion(prev state.Import, src string, it state.Item) bool {
	cur := it.Current()
	if prev.Source != src || prev.SourcePath != it.Path || prev.Versions != int64(len(it.Versions)) || prev.Size != cur.Size {
		return false
	}
	if cur.ETag != "" || prev.ETag != "" {
		return cur.ETag == prev.ETag
	}
	return !cur.Modified.IsZero() && cur.Modified.Equal(prev.Modified)
}

// Record implements [pipeline.Imports].
func (l ImportLog) Record(ctx context.Context, m *state.Migration, batchID string, items []state.Item) error {
	r := m.Request
	src := sourceKey(r)
	ims := make([]state.Import, len(items))
	for i, it := range items {
		cur := it.Current()
		ims[i] = state.Import{
			ContainerID: m.ContainerID, LibraryPath: it.Target, Source: src, SourcePath: it.Path,
			ETag: cur.ETag, Size: cur.Size, Modified: cur.Modified, Versions: int64(len(it.Versions)),
			MigrationID: m.ID, BatchID: batchID,
		}
	}
	return l.State.PutImports(ctx, ims)
}

// sourceKey identifies a request's source without its secrets: kind, the
// container URL without its query (a rotated SAS is the same source) or the
// local folder, and the prefix.
func sourceKey(r request.Request) string {
	s := r.Source
	loc := s.Path
	if s.Kind == request.KindAzureBlob {
		loc = s.ContainerURL
		if u, err := url.Parse(s.ContainerURL); err == nil {
			u.RawQuery, u.Fragment, u.User = "", "", nil
			u.Host = strings.ToLower(u.Host)
			loc = strings.TrimRight(u.String(), "/")
		} else if i := strings.IndexByte(loc, '?'); i >= 0 {
			loc = loc[:i]
		}
	}
	return s.Kind + "|" + loc + "|" + s.Prefix
}
