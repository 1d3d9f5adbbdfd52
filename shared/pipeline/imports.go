package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

// ImportLog is the [Imports] over shared/state: one row per container and
// library path (state.Store.PutImports / GetImport).
type ImportLog struct {
	State *state.Store
	// Concurrency bounds the point reads of one plan page (default 8).
	Concurrency int
}

// Unchanged implements [Imports].
func (l ImportLog) Unchanged(ctx context.Context, m *Migration, items []Item) (map[int]string, error) {
	r, err := DecodeRequest(m)
	if err != nil {
		return nil, err
	}
	if !r.Options.IsIncremental() {
		return nil, nil
	}
	src := sourceKey(r)
	var (
		mu    sync.Mutex
		out   = map[int]string{}
		first error
		wg    sync.WaitGroup
		sem   chan struct{}
	)
	if n := l.Concurrency; n > 0 {
		sem = make(chan struct{}, n)
	} else {
		sem = make(chan struct{}, 8)
	}
	for i, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			prev, err := l.State.GetImport(ctx, m.ContainerID, it.Target)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, state.ErrNotFound):
			case err != nil:
				if first == nil {
					first = fmt.Errorf("read earlier import of %q: %w", it.Target, err)
				}
			case prev.MigrationID != m.ID && sameVersion(prev, src, it):
				out[i] = prev.MigrationID
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return out, nil
}

// sameVersion reports whether prev recorded the import of exactly it's
// current source version from the same source file: the same ETag, or,
// for a source without ETags, the same size and last-modified time.
func sameVersion(prev state.Import, src string, it Item) bool {
	cur := it.Current()
	if prev.Source != src || prev.SourcePath != it.Path || prev.Versions != int64(len(it.Versions)) || prev.Size != cur.Size {
		return false
	}
	if cur.ETag != "" || prev.ETag != "" {
		return cur.ETag == prev.ETag
	}
	return !cur.Modified.IsZero() && cur.Modified.Equal(prev.Modified)
}

// Record implements [Imports].
func (l ImportLog) Record(ctx context.Context, m *Migration, batchID string, items []Item) error {
	r, err := DecodeRequest(m)
	if err != nil {
		return err
	}
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
