package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
)

// GraphToken is a bearer token the emulator's strict profile accepts: a JWT
// of the app "spemigrate-local" holding FileStorageContainer.Selected
// (graphemu.Token("spemigrate-local", graphemu.Permission)). Local clients
// send it.
const GraphToken = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJhcHBpZCI6InNwZW1pZ3JhdGUtbG9jYWwiLCJyb2xlcyI6WyJGaWxlU3RvcmFnZUNvbnRhaW5lci5TZWxlY3RlZCJdfQ."

// GraphOptions tunes the in-process Graph SPE emulator.
type GraphOptions struct {
	// Containers are added to the default container (graphemu.DefaultContainer).
	Containers []graphemu.Container
	// Knobs select the emulator's [UNCERTAIN] behaviours. Left zero, the
	// emulator runs [DefaultGraphKnobs] (the strict profile); a test that
	// sets any knob gets exactly the knobs it sets.
	Knobs graphemu.Knobs
	// Lenient runs the emulator's own defaults (docs/graph-emulator.md)
	// instead of the strict profile, for tests of a lenient behaviour.
	Lenient bool
	// JobFaults apply to every job (e.g. a slow queue for a demo).
	JobFaults graphemu.JobFaults
	// FaultsFile is a JSON fault file (see docs/graph-emulator.md).
	FaultsFile string
}

// graphFields are the Stack fields describing the Graph emulator.
type graphFields struct {
	// GraphURL is the emulator's base URL without /v1.0 (https://127.0.0.1:port).
	GraphURL string
	// GraphCAFile is a PEM file (under Dir) with the emulator's certificate,
	// for processes that must trust it.
	GraphCAFile string
	// GraphAdminURL is the fault-injection and call-count endpoint.
	GraphAdminURL string
	// SPEContainerID and friends describe the default SPE container.
	SPEContainerID   string
	SPEWebID         string
	SPEListID        string
	SPERootFolderID  string
	SPESiteURL       string
	SPELibraryFolder string
	// Graph is the in-process server (tests may inject faults through it).
	Graph *graphemu.Server
}

// DefaultGraphKnobs is the emulator profile of the local stack, and so of
// every test that does not ask for its own: graphemu.Strict(), a container
// in use, a directory with leavers, every paging quirk, totalErrors above
// the error events, error events never sent and import logs that come late.
func DefaultGraphKnobs() graphemu.Knobs { return graphemu.Strict() }

func (o GraphOptions) knobs() graphemu.Knobs {
	if o.Lenient || !reflect.DeepEqual(o.Knobs, graphemu.Knobs{}) {
		return o.Knobs
	}
	return DefaultGraphKnobs()
}

func (s *Stack) startGraph(ctx context.Context) error {
	if !s.opts.Graph {
		return nil
	}
	if s.BlobEndpoint == "" {
		if err := EnsureNodeTools(ctx, s.Root, s.log); err != nil {
			return err
		}
		if err := s.startAzurite(ctx); err != nil {
			return err
		}
	}
	def := graphemu.DefaultContainer()
	cfg := graphemu.Config{
		Containers: append([]graphemu.Container{def}, s.opts.GraphOptions.Containers...),
		Storage:    graphemu.Storage{BlobEndpoint: s.BlobEndpoint, Account: AzuriteAccount, Key: AzuriteKey},
		DataDir:    filepath.Join(s.Dir, "graph"),
		Knobs:      s.opts.GraphOptions.knobs(),
		JobFaults:  s.opts.GraphOptions.JobFaults,
		FaultsFile: s.opts.GraphOptions.FaultsFile,
	}
	srv, err := graphemu.New(cfg)
	if err != nil {
		return fmt.Errorf("stack: graph emulator: %w", err)
	}
	srv.SetLogger(s.log.With("service", "graph"))
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("stack: graph emulator: %w", err)
	}
	s.OnClose(srv.Close)
	ca := filepath.Join(s.Dir, "graph-ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM(), 0o644); err != nil {
		return fmt.Errorf("stack: graph emulator certificate: %w", err)
	}
	s.graphFields = graphFields{
		GraphURL: srv.URL(), GraphCAFile: ca, GraphAdminURL: srv.AdminURL(),
		SPEContainerID: def.ID, SPEWebID: def.WebID, SPEListID: def.ListID, SPERootFolderID: def.RootFolderID,
		SPESiteURL: def.SiteURL, SPELibraryFolder: def.LibraryFolder,
		Graph: srv,
	}
	s.log.Info("started", "service", "graph", "url", srv.URL())
	return nil
}
