package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/graph"
	spv "github.com/spemigrate/spemigrate/shared/verify"
)

// driveReader is the read-only Graph reader POST /api/migrations/{id}/verify
// uses, with the same endpoint, credential and trusted roots as the Graph
// client (shared/graph has no drive content calls; verification streams
// whole files, which the client's JSON pipeline is not built for).
func driveReader(cfg handlers.Config) (*spv.Graph, error) {
	cred, err := graph.NewCredential(graph.CredentialConfig{
		Kind: cfg.Graph.Credential, TenantID: cfg.Graph.TenantID, ClientID: cfg.Graph.ClientID, ClientSecret: cfg.Graph.ClientSecret,
		CertificatePath: cfg.Graph.CertificatePath, CertificatePassword: cfg.Graph.CertificatePassword, StaticToken: cfg.Graph.StaticToken,
		Cloud: cfg.Graph.Cloud,
	})
	if err != nil {
		return nil, fmt.Errorf("SPEMIGRATE_GRAPH_CREDENTIAL: %w", err)
	}
	hc := &http.Client{Timeout: 10 * time.Minute}
	if cfg.Graph.CAFile != "" {
		if hc, err = trustingClient(cfg.Graph.CAFile); err != nil {
			return nil, fmt.Errorf("SPEMIGRATE_GRAPH_CA_FILE: %w", err)
		}
	}
	base := strings.TrimRight(cfg.Graph.BaseURL, "/")
	base = strings.TrimSuffix(strings.TrimSuffix(base, "/v1.0"), "/beta")
	if base == "" {
		base = "https://graph.microsoft.com"
	}
	return &spv.Graph{BaseURL: base, Credential: cred, Client: hc}, nil
}
