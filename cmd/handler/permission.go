package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/graph"
)

// checkGraphPermission tells at start-up whether the Graph token carries
// FileStorageContainer.Selected, so a missing grant is named in the log
// instead of surfacing as a 403 in the first migration. mode is
// SPEMIGRATE_GRAPH_PERMISSION_CHECK: warn logs, require returns the error
// (the handler does not start), off skips. The wait is bounded because the
// host gives the handler little time to start listening.
func checkGraphPermission(ctx context.Context, mode string, cred azcore.TokenCredential, scopes []string, log *slog.Logger) error {
	if mode == handlers.PermissionCheckOff {
		return nil
	}
	scope := ""
	if len(scopes) > 0 {
		scope = scopes[0]
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := graph.CheckPermission(ctx, cred, scope)
	if err == nil || mode != handlers.PermissionCheckRequire {
		if err != nil {
			log.Warn("Graph permission check failed; migrations will fail until it is fixed (SPEMIGRATE_GRAPH_PERMISSION_CHECK=require stops the handler instead)", "err", err)
		}
		return nil
	}
	return err
}
