package wiring

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/state"
)

// RequestSources opens the source a migration's request names.
type RequestSources struct {
	Getenv     func(string) string
	Credential azcore.TokenCredential
	BlobClient *container.ClientOptions
	// Policy, when set, refuses a source the deployment does not allow even
	// if a stored request got past the entry points (an older version, a
	// setting narrowed since); a local folder is opened at the real path the
	// policy resolved. Nil checks nothing (tests of the engine alone).
	Policy *request.Policy
}

// Source implements [pipeline.Sources].
func (rs *RequestSources) Source(ctx context.Context, m *state.Migration) (source.Source, error) {
	r := m.Request
	return rs.Open(r)
}

// Open opens a request's source.
func (rs *RequestSources) Open(r request.Request) (source.Source, error) {
	s := r.Source
	if rs.Policy != nil {
		if err := rs.Policy.Check(r); err != nil {
			return nil, fmt.Errorf("source refused by this deployment's policy: %w", err)
		}
	}
	opts := source.BlobOptions{Prefix: s.Prefix, Versions: r.Options.Versions, Client: rs.BlobClient}
	switch s.Kind {
	case request.KindLocalFolder:
		root := s.Path
		if s.Prefix != "" {
			root = filepath.Join(root, filepath.FromSlash(s.Prefix))
		}
		if rs.Policy != nil {
			real, err := rs.Policy.LocalRoot(s)
			if err != nil {
				return nil, fmt.Errorf("source refused by this deployment's policy: %w", err)
			}
			root = real
		}
		return source.NewLocal(root)
	case request.KindAzureBlob:
	default:
		return nil, fmt.Errorf("source.kind %q is not supported", s.Kind)
	}
	switch s.Credential {
	case request.CredentialSAS:
		return source.NewBlobFromSASURL(s.ContainerURL, opts)
	case request.CredentialConnectionString:
		conn := s.ConnectionString
		if conn == "" && s.ConnectionSetting != "" {
			if rs.Getenv == nil {
				return nil, fmt.Errorf("source.connectionSetting %q: app settings are not available here", s.ConnectionSetting)
			}
			if conn = rs.Getenv(s.ConnectionSetting); conn == "" {
				return nil, fmt.Errorf("source.connectionSetting %q: the app setting is empty or missing", s.ConnectionSetting)
			}
		}
		name := path.Base(strings.TrimRight(source.Redact(s.ContainerURL), "/"))
		if i := strings.IndexByte(name, '?'); i >= 0 {
			name = name[:i]
		}
		return source.NewBlobFromConnectionString(conn, name, opts)
	case request.CredentialManagedIdentity:
		cred := rs.Credential
		if cred == nil || s.ClientID != "" {
			o := &azidentity.ManagedIdentityCredentialOptions{}
			if s.ClientID != "" {
				o.ID = azidentity.ClientID(s.ClientID)
			}
			c, err := azidentity.NewManagedIdentityCredential(o)
			if err != nil {
				return nil, fmt.Errorf("source: managed identity: %w", err)
			}
			cred = c
		}
		return source.NewBlob(s.ContainerURL, cred, opts)
	}
	return nil, fmt.Errorf("source.credential %q is not supported", s.Credential)
}
