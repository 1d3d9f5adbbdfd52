package wiring

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/spemigrate/spemigrate/shared/naming"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/scan"
	"github.com/spemigrate/spemigrate/shared/state"
)

// NamingPolicy is the [pipeline.Namer] over shared/naming with persistent claims.
type NamingPolicy struct {
	Claims  naming.Claims
	Targets *TargetCache

	mu      sync.Mutex
	mappers map[string]*naming.Mapper
}

// Name implements [pipeline.Namer].
func (np *NamingPolicy) Name(ctx context.Context, m *state.Migration, p string, size int64) (pipeline.Decision, error) {
	mp, r, err := np.mapper(ctx, m)
	if err != nil {
		return pipeline.Decision{}, err
	}
	d, err := mp.Map(ctx, destPath(r, p), size)
	if err != nil {
		return pipeline.Decision{}, err
	}
	return decision(d), nil
}

// NamePage implements [pipeline.PageNamer]: one naming.Mapper.MapPage, whose claims
// go to Table Storage in batches (state.Store.ClaimMany).
func (np *NamingPolicy) NamePage(ctx context.Context, m *state.Migration, entries []pipeline.NameEntry) ([]pipeline.Decision, error) {
	mp, r, err := np.mapper(ctx, m)
	if err != nil {
		return nil, err
	}
	es := make([]naming.Entry, len(entries))
	for i, en := range entries {
		es[i] = naming.Entry{Path: destPath(r, en.Path), Size: en.Size}
	}
	ds, err := mp.MapPage(ctx, es)
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.Decision, len(ds))
	for i, d := range ds {
		out[i] = decision(d)
	}
	return out, nil
}

func decision(d naming.Decision) pipeline.Decision {
	switch d.Action {
	case naming.Skip:
		return pipeline.Decision{Skip: true, Reason: d.Reason}
	case naming.Rename:
		return pipeline.Decision{Target: d.Target, Renamed: true, Reason: d.Reason}
	}
	return pipeline.Decision{Target: d.Target}
}

func (np *NamingPolicy) mapper(ctx context.Context, m *state.Migration) (*naming.Mapper, request.Request, error) {
	r := m.Request
	np.mu.Lock()
	mp, ok := np.mappers[m.ID]
	np.mu.Unlock()
	if ok {
		return mp, r, nil
	}
	pol := scan.NamingPolicy(r) // the readiness scan names with the same policy
	if np.Targets != nil {
		t, err := np.Targets.Get(ctx, m.ContainerID)
		if err != nil {
			return nil, r, fmt.Errorf("resolve target library: %w", err)
		}
		pol.LibraryURL = strings.TrimRight(t.ServerRelativeWebURL, "/") + "/" + t.LibraryFolder
	}
	mp, err := naming.NewMapper(m.ID, pol, np.Claims)
	if err != nil {
		return nil, r, err
	}
	np.mu.Lock()
	if np.mappers == nil || len(np.mappers) > 64 {
		// A mapper only caches folder decisions; the claims are the truth.
		np.mappers = map[string]*naming.Mapper{}
	}
	np.mappers[m.ID] = mp
	np.mu.Unlock()
	return mp, r, nil
}
