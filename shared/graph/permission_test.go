package graph_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/spemigrate/spemigrate/shared/graph"
)

// jwtCred hands out an unsigned JWT with the given claims and records the
// scopes it was asked for.
type jwtCred struct {
	claims map[string]any
	raw    string
	err    error
	scopes []string
}

func (c *jwtCred) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.scopes = o.Scopes
	if c.err != nil {
		return azcore.AccessToken{}, c.err
	}
	tok := c.raw
	if tok == "" {
		b, _ := json.Marshal(c.claims)
		enc := base64.RawURLEncoding.EncodeToString
		tok = enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(b) + ".c2lnbmF0dXJl"
	}
	return azcore.AccessToken{Token: tok, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func TestCheckPermission(t *testing.T) {
	ctx := context.Background()
	ok := &jwtCred{claims: map[string]any{"aud": "https://graph.microsoft.com", "roles": []string{"Sites.Read.All", "FileStorageContainer.Selected"}}}
	if err := graph.CheckPermission(ctx, ok, ""); err != nil {
		t.Errorf("token with the role: %v", err)
	}
	if len(ok.scopes) != 1 || ok.scopes[0] != graph.DefaultScope {
		t.Errorf("scopes = %v, want [%s]", ok.scopes, graph.DefaultScope)
	}

	for name, c := range map[string]*jwtCred{
		"other roles": {claims: map[string]any{"roles": []string{"Sites.Read.All"}}},
		"no roles":    {claims: map[string]any{"aud": "x"}},
	} {
		err := graph.CheckPermission(ctx, c, "https://graph.example/.default")
		if !errors.Is(err, graph.ErrPermissionMissing) || !strings.Contains(err.Error(), "FileStorageContainer.Selected") ||
			!strings.Contains(err.Error(), "https://graph.example/.default") {
			t.Errorf("%s: %v; want ErrPermissionMissing naming the permission and scope", name, err)
		}
		if name == "other roles" && !strings.Contains(err.Error(), "only Sites.Read.All") {
			t.Errorf("%s: %v; want the roles it has", name, err)
		}
	}

	bad := &jwtCred{raw: "not-a-jwt-secretvalue"}
	if err := graph.CheckPermission(ctx, bad, ""); err == nil || errors.Is(err, graph.ErrPermissionMissing) || strings.Contains(err.Error(), "secretvalue") {
		t.Errorf("opaque token: %v; want a decode error without the token", err)
	}
	failing := &jwtCred{err: errors.New("identity endpoint unreachable")}
	if err := graph.CheckPermission(ctx, failing, ""); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("token failure: %v", err)
	}
	if err := graph.CheckPermission(ctx, graph.StaticToken("local-emulator"), ""); err != nil {
		t.Errorf("static credential: %v; want it skipped", err)
	}
}
