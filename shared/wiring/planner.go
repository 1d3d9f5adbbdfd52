package wiring

import (
	"github.com/spemigrate/spemigrate/shared/staging"
	"github.com/spemigrate/spemigrate/shared/state"
)

// StagingPlanner is the [pipeline.Planner] over staging.Plan with the request's
// batch limits.
type StagingPlanner struct{}

// Plan implements [pipeline.Planner].
func (StagingPlanner) Plan(m *state.Migration, items []state.Item) ([][]state.Item, error) {
	r := m.Request
	lim := staging.Limits{MaxItems: r.Options.Batch.MaxItems, MaxBytes: r.Options.Batch.MaxBytes}
	if lim.MaxItems <= 0 || lim.MaxBytes <= 0 {
		lim = staging.DefaultLimits
	}
	byTarget := make(map[string]state.Item, len(items))
	sitems := make([]staging.Item, len(items))
	for i, it := range items {
		sitems[i] = staging.Item{Path: it.Target, Versions: it.Versions}
		byTarget[it.Target] = it
	}
	bs, err := staging.Plan(sitems, lim)
	if err != nil {
		return nil, err
	}
	out := make([][]state.Item, len(bs))
	for i, b := range bs {
		for _, si := range b.Items {
			out[i] = append(out[i], byTarget[si.Path])
		}
	}
	return out, nil
}
