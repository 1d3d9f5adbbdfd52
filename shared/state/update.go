package state

import (
	"context"
	"errors"
	"fmt"
)

// MaxRaces bounds how often [Update] re-reads after losing an ETag race
// before it gives up with [ErrContended].
const MaxRaces = 8

// Update is the one conditional read-modify-write loop for every entity:
// mutate is applied to a copy of cur (the entity as the caller read it) and
// the copy is written with replace, which must be conditional on the copy's
// ETag and fail with [ErrStale] when it no longer matches. On a lost race
// the entity is read again with reload and mutate called again, so every
// decision is made on fresh state: mutate must decide from the entity it is
// given and have no side effects it cannot repeat. mutate returns false to
// write nothing. Update returns the entity as stored (written or not) and
// whether it wrote.
func Update[T any](ctx context.Context, cur *T, reload func(context.Context) (*T, error), replace func(context.Context, *T) error, mutate func(*T) (bool, error)) (*T, bool, error) {
	for range MaxRaces {
		cp := *cur
		write, err := mutate(&cp)
		if err != nil || !write {
			return cur, false, err
		}
		err = replace(ctx, &cp)
		if err == nil {
			return &cp, true, nil
		}
		if !errors.Is(err, ErrStale) {
			return cur, false, err
		}
		if cur, err = reload(ctx); err != nil {
			return nil, false, fmt.Errorf("re-read after a lost race: %w", err)
		}
	}
	return cur, false, ErrContended
}
