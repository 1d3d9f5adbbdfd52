package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/spemigrate/spemigrate/handlers"
	spv "github.com/spemigrate/spemigrate/shared/verify"
)

// driveReader is the read-only Graph reader POST /api/migrations/{id}/verify
// uses, with the same endpoint, credential and trusted roots as the Graph
// client: the same credential (one token cache). shared/graph has no drive
// content calls; verification streams whole files, which the client's JSON
// pipeline is not built for.
func driveReader(cfg handlers.Config, cred azcore.TokenCredential) (*spv.Graph, error) {
	var err error
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
