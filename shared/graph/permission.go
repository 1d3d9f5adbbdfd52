package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// PermissionFileStorageContainerSelected is the application permission
// (app role) the migration API needs on Microsoft Graph. Admin consent, or
// an app-role assignment for a managed identity, puts it in the token's
// roles claim.
const PermissionFileStorageContainerSelected = "FileStorageContainer.Selected"

// ErrPermissionMissing matches the error of [CheckPermission] when the token
// lacks the permission (as opposed to not getting a token at all).
var ErrPermissionMissing = errors.New("graph permission missing")

// CheckPermission gets a token from cred for scope (empty: [DefaultScope])
// and reports whether it carries FileStorageContainer.Selected in its roles
// claim. The token is decoded, not verified: this is a diagnosis at
// start-up, so that a missing grant is named before the first migration
// fails with a bare 403; Graph still decides. A static credential (local
// emulators) is not a JWT and is not checked.
//
// The error never contains the token.
func CheckPermission(ctx context.Context, cred azcore.TokenCredential, scope string) error {
	if _, ok := cred.(StaticToken); ok {
		return nil
	}
	if scope == "" {
		scope = DefaultScope
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		return fmt.Errorf("graph permission check: get a token for %s: %w", scope, err)
	}
	roles, err := tokenRoles(tok.Token)
	if err != nil {
		return fmt.Errorf("graph permission check: %w", err)
	}
	if slices.Contains(roles, PermissionFileStorageContainerSelected) {
		return nil
	}
	have := "no application permissions"
	if len(roles) > 0 {
		have = "only " + strings.Join(roles, ", ")
	}
	return fmt.Errorf("%w: the Graph token for %s has %s; grant the application permission %s to this app's identity (admin consent, or an app-role assignment for a managed identity: infra/scripts/graph-setup.sh), then restart the app so it gets a new token",
		ErrPermissionMissing, scope, have, PermissionFileStorageContainerSelected)
}

// tokenRoles returns the roles claim of a JWT access token without
// verifying its signature.
func tokenRoles(jwt string) ([]string, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, errors.New("the access token is not a JWT (want header.payload.signature)")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, errors.New("the access token's payload is not base64url")
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, errors.New("the access token's payload is not a JSON object with a roles array")
	}
	return claims.Roles, nil
}
