// Package wiring connects the engine's interfaces (shared/pipeline) to the
// production packages: Table Storage state, the naming policy, staging,
// sources, the import log and list-item ids. Each adapter has its own file;
// cmd/handler builds every dependency once and passes it in.
package wiring

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spemigrate/spemigrate/shared/request"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/joblog"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/staging"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Components are the production collaborators cmd/handler builds once per
// process; [Deps] wires them into the engine's dependencies.
type Components struct {
	State *state.Store
	Graph *graph.Client
	Queue *queue.Sender
	// Stager stages every batch of the process: its buffer pool and MD5
	// lanes are the process's staging memory bound.
	Stager *staging.Stager
	// Targets resolves containers once per process; nil builds one over
	// Graph. Pass the same cache to whatever else resolves containers.
	Targets *TargetCache
	// BlobClient configures the clients of blob sources (transport, retry).
	BlobClient *container.ClientOptions
	// Getenv resolves a blob source's connectionSetting (an app setting
	// name); nil refuses such sources.
	Getenv func(string) string
	// Policy, when set, is checked again as each source is opened (the
	// entry points check it first); see RequestSources.Policy.
	Policy *request.Policy
	// Credential reads blob sources whose credential is managedIdentity
	// when the request names no clientId; nil creates a managed identity
	// credential on demand.
	Credential azcore.TokenCredential
	// FirstIntID is the lowest SharePoint list-item id handed out (default
	// 1000, above what a new container's library holds).
	FirstIntID int64
	// IntIDBase is IntIDBaseLibrary (default: above the library's highest
	// id, read through the drive's delta) or IntIDBaseFixed (FirstIntID).
	IntIDBase string
	Logger    *slog.Logger
	Clock     pipeline.Clock
}

// Deps returns the engine's dependencies built from c, each once.
func Deps(c Components) (pipeline.Deps, error) {
	if c.State == nil || c.Graph == nil || c.Queue == nil || c.Stager == nil {
		return pipeline.Deps{}, errors.New("wiring: State, Graph, Queue and Stager are required")
	}
	if c.FirstIntID <= 0 {
		c.FirstIntID = 1000
	}
	switch c.IntIDBase {
	case "":
		c.IntIDBase = IntIDBaseLibrary
	case IntIDBaseLibrary, IntIDBaseFixed:
	default:
		return pipeline.Deps{}, fmt.Errorf("wiring: IntIDBase %q: use %q or %q", c.IntIDBase, IntIDBaseLibrary, IntIDBaseFixed)
	}
	if c.Targets == nil {
		c.Targets = &TargetCache{Graph: c.Graph}
	}
	sources := &RequestSources{Getenv: c.Getenv, Credential: c.Credential, BlobClient: c.BlobClient, Policy: c.Policy}
	return pipeline.Deps{
		Store: c.State,
		Graph: c.Graph,
		Stager: &StagingStager{Stager: c.Stager, Sources: sources, Targets: c.Targets, State: c.State, FirstIntID: c.FirstIntID,
			Folders: &FolderRefs{Graph: c.Graph, State: c.State},
			IntBase: &IntIDBase{Graph: c.Graph, State: c.State, Strategy: c.IntIDBase, First: c.FirstIntID}},
		Namer:   &NamingPolicy{Claims: c.State, Targets: c.Targets},
		Planner: StagingPlanner{},
		Sources: sources,
		Sender:  c.Queue,
		Imports: ImportLog{State: c.State},
		Targets: c.Targets,
		JobLogs: &joblog.Reader{},
		Clock:   c.Clock,
		Logger:  c.Logger,
	}, nil
}
