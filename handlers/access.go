package handlers

import (
	"context"
	"fmt"

	"github.com/spemigrate/spemigrate/shared/request"
)

// Starter starts a migration under id (the shape of provision.Starter and
// schedules.Starter).
type Starter interface {
	StartMigration(ctx context.Context, id string, req request.Request) (created bool, err error)
}

// GuardStarter returns a Starter that refuses, before next sees it, any
// request the policy does not allow. The refusal is a request.Error, so the
// provision queue records it as a rejected migration (not retried) and the
// schedules timer logs it.
func GuardStarter(p request.Policy, next Starter) Starter {
	return guardedStarter{policy: p, next: next}
}

type guardedStarter struct {
	policy request.Policy
	next   Starter
}

func (g guardedStarter) StartMigration(ctx context.Context, id string, req request.Request) (bool, error) {
	if err := g.policy.Check(req); err != nil {
		return false, fmt.Errorf("migration %s refused by this deployment's policy: %w", id, err)
	}
	return g.next.StartMigration(ctx, id, req)
}
