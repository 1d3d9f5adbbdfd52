package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/graph"
)

// rolelessToken is a managed identity that was never granted the Graph role.
type rolelessToken struct{}

func (rolelessToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	enc := base64.RawURLEncoding.EncodeToString
	return azcore.AccessToken{Token: enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(`{"aud":"https://graph.microsoft.com"}`)) + ".x", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func TestCheckGraphPermissionModes(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	ctx := context.Background()
	if err := checkGraphPermission(ctx, handlers.PermissionCheckWarn, rolelessToken{}, nil, log); err != nil {
		t.Errorf("warn: %v; want nil", err)
	}
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "FileStorageContainer.Selected") {
		t.Errorf("warn logged %q; want a warning naming FileStorageContainer.Selected", buf.String())
	}
	if err := checkGraphPermission(ctx, handlers.PermissionCheckRequire, rolelessToken{}, nil, log); !errors.Is(err, graph.ErrPermissionMissing) {
		t.Errorf("require: %v; want ErrPermissionMissing", err)
	}
	buf.Reset()
	if err := checkGraphPermission(ctx, handlers.PermissionCheckOff, rolelessToken{}, nil, log); err != nil || buf.Len() != 0 {
		t.Errorf("off: %v, logged %q; want nothing", err, buf.String())
	}
}
