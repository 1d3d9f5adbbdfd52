package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/google/uuid"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/naming"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/spepackage"
	"github.com/spemigrate/spemigrate/shared/staging"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Components are the production collaborators the handlers build once per
// process; [NewEngine] wires them into an [Engine].
type Components struct {
	State  *state.Store
	Sealer *state.Sealer
	Graph  *graph.Client
	Queue  *queue.Sender
	// Staging is the template for each batch's stager (block size, buffers,
	// concurrency, blob client options); Source is set per migration.
	Staging staging.Options
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
	Logger     *slog.Logger
	Clock      Clock
}

// NewEngine wires the production components into an engine.
func NewEngine(c Components, cfg Config) (*Engine, error) {
	deps, err := c.Deps()
	if err != nil {
		return nil, err
	}
	return New(deps, cfg)
}

// Deps returns the engine's dependencies built from c (for callers that
// wrap some of them, e.g. tests injecting faults).
func (c Components) Deps() (Deps, error) {
	if c.State == nil || c.Sealer == nil || c.Graph == nil || c.Queue == nil {
		return Deps{}, errors.New("pipeline: State, Sealer, Graph and Queue are required")
	}
	if c.FirstIntID <= 0 {
		c.FirstIntID = 1000
	}
	targets := &TargetCache{Graph: c.Graph}
	sources := &RequestSources{Getenv: c.Getenv, Credential: c.Credential, BlobClient: c.Staging.ClientOptions, Policy: c.Policy}
	return Deps{
		Store:   NewTableStore(c.State, c.Sealer),
		Graph:   c.Graph,
		Stager:  &StagingStager{Options: c.Staging, Sources: sources, Targets: targets, State: c.State, FirstIntID: c.FirstIntID, Clock: c.Clock},
		Namer:   &NamingPolicy{Claims: c.State, Targets: targets},
		Planner: StagingPlanner{},
		Sealer:  c.Sealer,
		Sources: sources,
		Sender:  QueueSender{c.Queue},
		Imports: ImportLog{State: c.State},
		Clock:   c.Clock,
		Logger:  c.Logger,
	}, nil
}

// DecodeRequest decodes a migration's stored request.
func DecodeRequest(m *Migration) (request.Request, error) {
	r, err := request.DecodeBytes(m.Request)
	if err != nil {
		return request.Request{}, fmt.Errorf("migration %s: stored request: %w", m.ID, err)
	}
	return r, nil
}

// ---- queue ----

// QueueSender sends the steps' messages through shared/queue.
type QueueSender struct{ Q *queue.Sender }

// Send implements [Sender].
func (s QueueSender) Send(ctx context.Context, msgs []Next) error {
	qm := make([]queue.Message, len(msgs))
	for i, n := range msgs {
		qm[i] = ToQueue(n)
	}
	return s.Q.Send(ctx, qm...)
}

// ToQueue converts a step's next message to its queue form.
func ToQueue(n Next) queue.Message {
	var m queue.Message
	switch n.Step {
	case StepPlan:
		m = queue.Provision(n.MigrationID, n.Page)
	case StepStage:
		m = queue.StageBatch(n.MigrationID, n.BatchID, n.Attempt)
	case StepSubmit:
		m = queue.Submit(n.MigrationID, n.BatchID, n.Attempt)
	case StepPoll:
		m = queue.Poll(n.MigrationID, n.BatchID, n.Attempt, n.Seq)
	}
	m.Nonce, m.NotBefore = n.Nonce, n.NotBefore
	return m
}

// FromQueue converts a received queue message to the step it asks for;
// handlers pass the result to [Engine.Run].
func FromQueue(m queue.Message) (Next, error) {
	n := Next{MigrationID: m.MigrationID, BatchID: m.BatchID, Page: m.Page, Attempt: m.Attempt, Seq: m.Seq, Nonce: m.Nonce}
	switch m.Step {
	case queue.StepProvision:
		n.Step = StepPlan
	case queue.StepStageBatch:
		n.Step = StepStage
	case queue.StepSubmit:
		n.Step = StepSubmit
	case queue.StepPoll:
		n.Step = StepPoll
	default:
		return Next{}, fmt.Errorf("pipeline: queue message has unknown step %q", m.Step)
	}
	return n, nil
}

// ---- sources ----

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

// Source implements [Sources].
func (rs *RequestSources) Source(ctx context.Context, m *Migration) (source.Source, error) {
	r, err := DecodeRequest(m)
	if err != nil {
		return nil, err
	}
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

// ---- target ----

// TargetCache resolves (once per container) the SharePoint ids a package
// and the naming policy need.
type TargetCache struct {
	Graph interface {
		Target(ctx context.Context, containerID string) (graph.Target, error)
	}
	mu sync.Mutex
	m  map[string]graph.Target
}

// Get returns the container's library target.
func (tc *TargetCache) Get(ctx context.Context, containerID string) (graph.Target, error) {
	tc.mu.Lock()
	t, ok := tc.m[containerID]
	tc.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := tc.Graph.Target(ctx, containerID)
	if err != nil {
		return t, err
	}
	tc.mu.Lock()
	if tc.m == nil {
		tc.m = map[string]graph.Target{}
	}
	tc.m[containerID] = t
	tc.mu.Unlock()
	return t, nil
}

// nsRoot is spemigrate's UUID namespace for package namespaces.
var nsRoot = uuid.MustParse("6d1f3a52-7c1e-4b7e-9a57-2f0c3b1d9e44")

// Namespace is the package namespace for a target (container and
// destination folder), not for a run: re-running a migration into the same
// place replaces what an earlier run imported (spec §6.5).
func Namespace(containerID, folder string) uuid.UUID {
	return uuid.NewSHA1(nsRoot, []byte(containerID+"\x00"+strings.ToLower(strings.Trim(folder, "/"))))
}

// destPath prefixes a target path with the request's destination folder.
// The folder is created by the package like any other (deterministic id), so
// an existing folder of that name that spemigrate did not create collides.
func destPath(r request.Request, p string) string {
	f := strings.Trim(r.Target.Folder, "/")
	if f == "" {
		return p
	}
	return f + "/" + p
}

// ---- naming ----

// NamingPolicy is the [Namer] over shared/naming with persistent claims.
type NamingPolicy struct {
	Claims  naming.Claims
	Targets *TargetCache

	mu      sync.Mutex
	mappers map[string]*naming.Mapper
}

// Name implements [Namer].
func (np *NamingPolicy) Name(ctx context.Context, m *Migration, p string, size int64) (Decision, error) {
	mp, r, err := np.mapper(ctx, m)
	if err != nil {
		return Decision{}, err
	}
	d, err := mp.Map(ctx, destPath(r, p), size)
	if err != nil {
		return Decision{}, err
	}
	return decision(d), nil
}

// NamePage implements [PageNamer]: one naming.Mapper.MapPage, whose claims
// go to Table Storage in batches (state.Store.ClaimMany).
func (np *NamingPolicy) NamePage(ctx context.Context, m *Migration, entries []NameEntry) ([]Decision, error) {
	mp, r, err := np.mapper(ctx, m)
	if err != nil {
		return nil, err
	}
	es := make([]naming.Entry, len(entries))
	for i, en := range entries {
		es[i] = naming.Entry{Path: destPath(r, en.Path), Size: en.Size}
	}
	ds, err := mp.MapPage(ctx, es)
	if err != nil {
		return nil, err
	}
	out := make([]Decision, len(ds))
	for i, d := range ds {
		out[i] = decision(d)
	}
	return out, nil
}

func decision(d naming.Decision) Decision {
	switch d.Action {
	case naming.Skip:
		return Decision{Skip: true, Reason: d.Reason}
	case naming.Rename:
		return Decision{Target: d.Target, Renamed: true, Reason: d.Reason}
	}
	return Decision{Target: d.Target}
}

func (np *NamingPolicy) mapper(ctx context.Context, m *Migration) (*naming.Mapper, request.Request, error) {
	r, err := DecodeRequest(m)
	if err != nil {
		return nil, r, err
	}
	np.mu.Lock()
	mp, ok := np.mappers[m.ID]
	np.mu.Unlock()
	if ok {
		return mp, r, nil
	}
	pol := naming.Policy{Replacement: r.Options.Naming.Replacement}
	if r.Options.Naming.InvalidChars == request.InvalidCharsSkip {
		pol.Invalid = naming.SkipInvalid
	}
	if r.Options.Naming.Collisions == request.CollisionsSkip {
		pol.Collisions = naming.SkipCollisions
	}
	if np.Targets != nil {
		t, err := np.Targets.Get(ctx, m.ContainerID)
		if err != nil {
			return nil, r, fmt.Errorf("resolve target library: %w", err)
		}
		pol.LibraryURL = strings.TrimRight(t.ServerRelativeWebURL, "/") + "/" + t.LibraryFolder
	}
	mp, err = naming.NewMapper(m.ID, pol, np.Claims)
	if err != nil {
		return nil, r, err
	}
	np.mu.Lock()
	if np.mappers == nil || len(np.mappers) > 64 {
		// A mapper only caches folder decisions; the claims are the truth.
		np.mappers = map[string]*naming.Mapper{}
	}
	np.mappers[m.ID] = mp
	np.mu.Unlock()
	return mp, r, nil
}

// ---- planning ----

// StagingPlanner is the [Planner] over staging.Plan with the request's
// batch limits.
type StagingPlanner struct{}

// Plan implements [Planner].
func (StagingPlanner) Plan(m *Migration, items []Item) ([][]Item, error) {
	r, err := DecodeRequest(m)
	if err != nil {
		return nil, err
	}
	lim := staging.Limits{MaxItems: r.Options.Batch.MaxItems, MaxBytes: r.Options.Batch.MaxBytes}
	if lim.MaxItems <= 0 || lim.MaxBytes <= 0 {
		lim = staging.DefaultLimits
	}
	byTarget := make(map[string]Item, len(items))
	sitems := make([]staging.Item, len(items))
	for i, it := range items {
		sitems[i] = staging.Item{Path: it.Target, Versions: it.Versions}
		byTarget[it.Target] = it
	}
	bs, err := staging.Plan(sitems, lim)
	if err != nil {
		return nil, err
	}
	out := make([][]Item, len(bs))
	for i, b := range bs {
		for _, si := range b.Items {
			out[i] = append(out[i], byTarget[si.Path])
		}
	}
	return out, nil
}

// ---- staging ----

// SourceOpener opens the source a request names.
type SourceOpener interface {
	Open(r request.Request) (source.Source, error)
}

// StagingStager is the [Stager] over shared/staging.
type StagingStager struct {
	Options    staging.Options
	Sources    SourceOpener
	Targets    *TargetCache
	State      *state.Store
	FirstIntID int64
	Clock      Clock

	// folderIDs remembers folders' list-item ids (container id + "\x00" +
	// path key -> id): a folder's id never changes once claimed, and the
	// batches of a migration share their folders, so each process claims
	// a folder once instead of once per batch.
	folderIDs     sync.Map
	folderIDCount atomic.Int64
}

// maxFolderIDs bounds the folder id memory of a process.
const maxFolderIDs = 200_000

// prefetchIDs claims the list-item ids of items and their folders in
// batches; folders this process has seen are answered from memory, so on a
// first run the transactions hold new paths only and do not fail.
func (ss *StagingStager) prefetchIDs(ctx context.Context, ids *IntIDs, containerID string, items []Item) error {
	folders, files := libraryPaths(items)
	var missing []string
	for _, f := range folders {
		if id, ok := ss.folderIDs.Load(containerID + "\x00" + libraryPathKey(f)); ok {
			ids.known[libraryPathKey(f)] = id.(int)
			continue
		}
		missing = append(missing, f)
	}
	if err := ids.Prefetch(ctx, append(missing, files...)); err != nil {
		return err
	}
	for _, f := range missing {
		if id, ok := ids.known[libraryPathKey(f)]; ok && ss.folderIDCount.Load() < maxFolderIDs {
			if _, loaded := ss.folderIDs.LoadOrStore(containerID+"\x00"+libraryPathKey(f), id); !loaded {
				ss.folderIDCount.Add(1)
			}
		}
	}
	return nil
}

// Stage implements [Stager].
func (ss *StagingStager) Stage(ctx context.Context, m *Migration, b *Batch, items []Item, info graph.ContainerInfo) (StageResult, error) {
	r, err := DecodeRequest(m)
	if err != nil {
		return StageResult{}, err
	}
	src, err := ss.Sources.Open(r)
	if err != nil {
		return StageResult{}, fmt.Errorf("open source: %w", err)
	}
	gt, err := ss.Targets.Get(ctx, m.ContainerID)
	if err != nil {
		return StageResult{}, fmt.Errorf("resolve target library: %w", err)
	}
	target, err := packageTarget(gt)
	if err != nil {
		return StageResult{}, err
	}
	key, err := spepackage.DecodeKey(info.EncryptionKey)
	if err != nil {
		return StageResult{}, errors.New("provisioned encryption key is malformed")
	}
	opts := ss.Options
	opts.Source = src
	if ss.Clock != nil && opts.Now == nil {
		opts.Now = ss.Clock
	}
	stager, err := staging.New(opts)
	if err != nil {
		return StageResult{}, err
	}
	st := spepackage.SourceAzureStorage
	if r.Source.Kind == request.KindLocalFolder {
		st = spepackage.SourceFileShare
	}
	// The batch's files and their folders claim their ids in a few Table
	// transactions before the manifest asks for them one by one.
	ids := NewIntIDs(ss.State, m.ContainerID, ss.FirstIntID, 64)
	if err := ss.prefetchIDs(ctx, ids, m.ContainerID, items); err != nil {
		return StageResult{}, err
	}
	req := staging.Request{
		Containers: staging.Containers{DataURL: info.DataContainerURI, MetadataURL: info.MetadataContainerURI, Key: key},
		Target:     target,
		Namespace:  Namespace(m.ContainerID, ""),
		SourceType: st,
		IDs:        ids,
	}
	if !r.Options.PreserveAuthors() {
		req.Identities = func(source.Entry) (spepackage.Identity, spepackage.Identity) {
			return spepackage.Identity{}, spepackage.Identity{}
		}
	} else if len(r.Options.UserMap) > 0 {
		req.Identities = staging.MetadataIdentities(r.Options.UserMap)
	}
	for _, it := range items {
		req.Batch.Items = append(req.Batch.Items, staging.Item{Path: it.Target, Versions: it.Versions})
		req.Batch.Bytes += it.Size()
		req.Batch.Blobs += len(it.Versions)
	}
	res, err := stager.Stage(ctx, req)
	if errors.Is(err, staging.ErrSASExpiring) || errors.Is(err, staging.ErrSASRejected) {
		return StageResult{}, fmt.Errorf("%w: %w", ErrSASTooShort, err)
	}
	if err != nil {
		return StageResult{}, err
	}
	out := StageResult{Failed: map[int]string{}}
	for i, ir := range res.Items {
		if ir.Error != "" && i < len(items) {
			out.Failed[i] = ir.Error
		}
	}
	return out, nil
}

// FileID implements [FileIDer]: the manifest's File@Id of an item.
func (ss *StagingStager) FileID(m *Migration, it Item) string {
	return spepackage.ObjectID(Namespace(m.ContainerID, ""), it.Target).String()
}

func packageTarget(t graph.Target) (spepackage.Target, error) {
	var pt spepackage.Target
	var err error
	pt.SiteURL, pt.LibraryFolder = t.SiteURL, t.LibraryFolder
	if pt.WebID, err = uuid.Parse(t.WebID); err != nil {
		return pt, fmt.Errorf("target web id: %w", err)
	}
	if pt.ListID, err = uuid.Parse(t.ListID); err != nil {
		return pt, fmt.Errorf("target list id: %w", err)
	}
	if pt.RootFolderID, err = uuid.Parse(t.RootFolderID); err != nil {
		return pt, fmt.Errorf("target root folder id: %w", err)
	}
	return pt, nil
}

// libraryPaths lists the folders above items' targets and the targets,
// each once, parents before children.
func libraryPaths(items []Item) (folders, files []string) {
	seen := map[string]bool{}
	for _, it := range items {
		t := strings.Trim(it.Target, "/")
		files = append(files, t)
		segs := strings.Split(t, "/")
		for i := 1; i < len(segs); i++ {
			p := strings.Join(segs[:i], "/")
			if !seen[p] {
				seen[p] = true
				folders = append(folders, p)
			}
		}
	}
	return folders, files
}
