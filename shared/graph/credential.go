package graph

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Credential kinds for [CredentialConfig.Kind].
const (
	CredentialDefault           = ""                  // DefaultAzureCredential
	CredentialManagedIdentity   = "managedIdentity"   // system- or user-assigned
	CredentialClientSecret      = "clientSecret"      // app registration + secret
	CredentialClientCertificate = "clientCertificate" // app registration + PEM/PKCS#12 cert
	CredentialWorkloadIdentity  = "workloadIdentity"  // federated token file (AKS, etc.)
	// CredentialStatic sends a fixed bearer token. Meant for local emulators
	// that accept any token; never use it against Microsoft Graph.
	CredentialStatic = "static"
)

// CredentialConfig chooses how the app authenticates to Graph. Only the
// fields the chosen Kind needs are read; the rest are ignored.
//
//	Kind               fields used
//	"" (default)       TenantID (optional), ClientID (optional, user-assigned MI)
//	managedIdentity    ClientID (optional: a user-assigned identity's client id)
//	clientSecret       TenantID, ClientID, ClientSecret
//	clientCertificate  TenantID, ClientID, CertificatePath, CertificatePassword (optional)
//	workloadIdentity   TenantID, ClientID, TokenFilePath (all optional: read from
//	                   AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE)
//	static             StaticToken
//
// Cloud and AuthorityHost choose the Microsoft Entra authority for every
// kind except static: Cloud is "" or "public" (default), "usGovernment" or
// "china"; AuthorityHost, when set, overrides it with an explicit
// authority URL. Pair them with the matching Graph root ([CloudGraphURL])
// in [Options.BaseURL].
type CredentialConfig struct {
	Kind                string
	Cloud               string
	AuthorityHost       string
	TenantID            string
	ClientID            string
	ClientSecret        string
	CertificatePath     string
	CertificatePassword string
	TokenFilePath       string
	StaticToken         string
}

// NewCredential builds the azidentity credential cfg describes. Errors name
// the missing field.
func NewCredential(cfg CredentialConfig) (azcore.TokenCredential, error) {
	need := func(field, v string) error {
		if v == "" {
			return fmt.Errorf("graph credential %q: %s is required", cfg.Kind, field)
		}
		return nil
	}
	co, err := cfg.clientOptions()
	if err != nil {
		return nil, err
	}
	switch cfg.Kind {
	case CredentialDefault:
		return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: co, TenantID: cfg.TenantID})
	case CredentialManagedIdentity:
		opts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
		if cfg.ClientID != "" {
			opts.ID = azidentity.ClientID(cfg.ClientID)
		}
		return azidentity.NewManagedIdentityCredential(opts)
	case CredentialClientSecret:
		if err := errors.Join(need("TenantID", cfg.TenantID), need("ClientID", cfg.ClientID), need("ClientSecret", cfg.ClientSecret)); err != nil {
			return nil, err
		}
		return azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: co})
	case CredentialClientCertificate:
		if err := errors.Join(need("TenantID", cfg.TenantID), need("ClientID", cfg.ClientID), need("CertificatePath", cfg.CertificatePath)); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(cfg.CertificatePath)
		if err != nil {
			return nil, fmt.Errorf("graph credential: read CertificatePath: %w", err)
		}
		var pw []byte
		if cfg.CertificatePassword != "" {
			pw = []byte(cfg.CertificatePassword)
		}
		certs, key, err := azidentity.ParseCertificates(data, pw)
		if err != nil {
			return nil, fmt.Errorf("graph credential: parse %s: %w", cfg.CertificatePath, err)
		}
		return azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ClientID, certs, key, &azidentity.ClientCertificateCredentialOptions{ClientOptions: co})
	case CredentialWorkloadIdentity:
		return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: co, TenantID: cfg.TenantID, ClientID: cfg.ClientID, TokenFilePath: cfg.TokenFilePath,
		})
	case CredentialStatic:
		if err := need("StaticToken", cfg.StaticToken); err != nil {
			return nil, err
		}
		return StaticToken(cfg.StaticToken), nil
	}
	return nil, fmt.Errorf("graph credential: unknown Kind %q: use managedIdentity, clientSecret, clientCertificate, workloadIdentity, static or leave empty for DefaultAzureCredential", cfg.Kind)
}

// StaticToken is a TokenCredential returning a fixed token, for local
// emulators and tests.
type StaticToken string

// GetToken implements azcore.TokenCredential.
func (s StaticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// The national clouds [CredentialConfig.Cloud] knows.
const (
	CloudPublic       = "public"
	CloudUSGovernment = "usGovernment"
	CloudChina        = "china"
)

// CloudGraphURL is the Graph root of a national cloud, for
// [Options.BaseURL]. The migration API's availability differs per cloud
// (spec §2.0).
func CloudGraphURL(name string) (string, error) {
	switch name {
	case "", CloudPublic:
		return DefaultBaseURL, nil
	case CloudUSGovernment:
		return "https://graph.microsoft.us", nil
	case CloudChina:
		return "https://microsoftgraph.chinacloudapi.cn", nil
	}
	return "", fmt.Errorf("graph: unknown cloud %q: use %s, %s or %s", name, CloudPublic, CloudUSGovernment, CloudChina)
}

func (cfg CredentialConfig) clientOptions() (azcore.ClientOptions, error) {
	var co azcore.ClientOptions
	switch cfg.Cloud {
	case "", CloudPublic:
		co.Cloud = cloud.AzurePublic
	case CloudUSGovernment:
		co.Cloud = cloud.AzureGovernment
	case CloudChina:
		co.Cloud = cloud.AzureChina
	default:
		return co, fmt.Errorf("graph credential: unknown Cloud %q: use %s, %s or %s", cfg.Cloud, CloudPublic, CloudUSGovernment, CloudChina)
	}
	if cfg.AuthorityHost != "" {
		u, err := url.Parse(cfg.AuthorityHost)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return co, fmt.Errorf("graph credential: AuthorityHost %q: use an https URL such as https://login.microsoftonline.us/", cfg.AuthorityHost)
		}
		co.Cloud.ActiveDirectoryAuthorityHost = cfg.AuthorityHost
	}
	return co, nil
}
