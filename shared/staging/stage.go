package staging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/spepackage"
)

// Options configure a [Stager]. Zero values take the defaults noted.
type Options struct {
	// Source streams the files' bytes when a Request names none. A Stager
	// lives for the process (its buffer pool and MD5 lanes bound staging's
	// memory per process), so callers staging several sources pass each
	// batch's in its Request instead.
	Source source.Source
	// BlockSize is the size of one staged block (default 4 MiB).
	BlockSize int
	// Buffers is how many block buffers exist at once, shared by every
	// upload in flight: memory is about Buffers × BlockSize (default 8).
	Buffers int
	// FileConcurrency is how many files are uploaded at once (default 8:
	// eight streams fill the MD5 SIMD lanes twice as well as four, which
	// cuts staging CPU per byte by about a tenth; memory stays bounded by
	// Buffers).
	FileConcurrency int
	// BlockConcurrency is how many blocks of one file are in flight at once
	// (default 4).
	BlockConcurrency int
	// MinSASValidity is how long a container SAS must still be valid when
	// a batch is staged; default [MinSASValidity] (12 h, the SPE guide's
	// minimum). The pipeline adds its own margin for the submit step.
	MinSASValidity time.Duration
	// Package tunes the manifests (SystemData build numbers, DirName form,
	// version cap); the zero value takes spepackage's defaults.
	Package spepackage.Options
	// Now defaults to time.Now.
	Now func() time.Time
	// ClientOptions configure the blob clients (transport, retries).
	ClientOptions *container.ClientOptions
	// Logger defaults to slog.Default(). It never receives URLs or keys.
	Logger *slog.Logger
	// NoMD5Lanes turns off the SIMD MD5 lanes (see
	// [spepackage.MD5Server]) and hashes every blob with crypto/md5. The
	// lanes are used only when a Stage call uploads at least
	// [MinMD5Lanes] files at once and the CPU has AVX2; they change the
	// CPU cost, never the MD5.
	NoMD5Lanes bool
}

// MinMD5Lanes is how many files must be uploaded at once for the SIMD MD5
// lanes to cost less CPU than crypto/md5: measured on AVX-512, 2 streams
// cost 10 % more, 3 about the same, 4 save a quarter of the MD5 work and 8
// more than half.
const MinMD5Lanes = 4

// Stager stages batches. It is safe for concurrent use; all its Stage calls
// share one buffer pool.
type Stager struct {
	opts Options
	log  *slog.Logger
	bufs *bufferPool

	// The MD5 lanes run while at least one Stage call uses them and stop
	// when the last one returns, so a Stager needs no Close.
	lanesMu    sync.Mutex
	lanes      *spepackage.MD5Server
	lanesUsers int
}

// acquireLanes returns the shared MD5 server for a Stage call that uploads
// streams files at once, or nil (crypto/md5) when lanes would not pay.
func (s *Stager) acquireLanes(streams int) *spepackage.MD5Server {
	if s.opts.NoMD5Lanes || streams < MinMD5Lanes {
		return nil
	}
	s.lanesMu.Lock()
	defer s.lanesMu.Unlock()
	if s.lanes == nil {
		s.lanes = spepackage.NewMD5Server()
		if s.lanes == nil {
			return nil // no AVX2
		}
	}
	s.lanesUsers++
	return s.lanes
}

func (s *Stager) releaseLanes(l *spepackage.MD5Server) {
	if l == nil {
		return
	}
	s.lanesMu.Lock()
	defer s.lanesMu.Unlock()
	s.lanesUsers--
	if s.lanesUsers == 0 {
		// Close stops the server once its last reader is done.
		s.lanes.Close()
		s.lanes = nil
	}
}

// New checks opts and returns a Stager.
func New(opts Options) (*Stager, error) {
	if opts.BlockSize == 0 {
		opts.BlockSize = 4 << 20
	}
	if opts.BlockSize < 64<<10 || opts.BlockSize > 100<<20 {
		return nil, fmt.Errorf("staging: Options.BlockSize %d is out of range: use 64 KiB to 100 MiB", opts.BlockSize)
	}
	if opts.Buffers == 0 {
		opts.Buffers = 8
	}
	if opts.FileConcurrency == 0 {
		opts.FileConcurrency = 8
	}
	if opts.BlockConcurrency == 0 {
		opts.BlockConcurrency = 4
	}
	if opts.Buffers < 1 || opts.FileConcurrency < 1 || opts.BlockConcurrency < 1 {
		return nil, errors.New("staging: Options.Buffers, FileConcurrency and BlockConcurrency must be positive")
	}
	if opts.MinSASValidity == 0 {
		opts.MinSASValidity = MinSASValidity
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Stager{opts: opts, log: log, bufs: newBufferPool(opts.Buffers, opts.BlockSize)}, nil
}

// Containers are the provisioned containers and key (spec §2.1). They are
// secrets: never log or store them in plaintext.
type Containers struct {
	DataURL     string // SAS URL of the data (content) container
	MetadataURL string // SAS URL of the metadata (manifest) container
	Key         []byte // 32-byte AES-256 key
}

// String hides the secrets if a Containers value is ever printed.
func (Containers) String() string { return "staging.Containers{redacted}" }

// LogValue hides the secrets from slog.
func (c Containers) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Request is one batch to stage.
type Request struct {
	// Source streams this batch's files; nil uses Options.Source.
	Source     source.Source
	Batch      Batch
	Containers Containers
	Target     spepackage.Target
	// Namespace seeds every object id (see spepackage); keep it stable for
	// a target so re-runs replace rather than duplicate.
	Namespace  uuid.UUID
	SourceType spepackage.SourceType
	IDs        spepackage.IntIDs
	// Identities maps a source entry to its author and last editor.
	// Nil uses [MetadataIdentities] with no user map.
	Identities func(source.Entry) (author, modifiedBy spepackage.Identity)
}

// Blob is one uploaded, encrypted blob.
type Blob struct {
	Name       string // name inside its container
	PlainSize  int64  // bytes read from the source (FileSize)
	StoredSize int64  // ciphertext bytes stored
	MD5        []byte // MD5 of the stored bytes (the blob's Content-MD5)
	IV         string // base64, as in the blob's IV metadata
	Snapshot   string // the snapshot taken after upload
}

// ItemResult is what happened to one batch item.
type ItemResult struct {
	Path        string
	LibraryPath string
	ID          uuid.UUID // File@Id
	IntID       int       // 0 when the item failed
	Blobs       []Blob    // one per version, oldest first
	Author      spepackage.AuthorChoice
	// Error is set when the item's source could not be read; the item is
	// then not in the manifest. It contains no secrets.
	Error string
}

// Result is a staged batch: ready to submit once Stage returns it.
type Result struct {
	Items     []ItemResult // in batch order
	Manifests []Blob       // in upload order
	// Package reports every object in Manifest.xml, including parent
	// folders the package creates.
	Package spepackage.Report
	Staged  int // items in the manifest
	Failed  int // items left out (see ItemResult.Error)
	// When Staged is 0 the manifests describe an empty package; there is
	// nothing worth submitting.
}

// BlobName is the data-container blob of a file version: derived from the
// file's deterministic id, so restaging writes the same names.
func BlobName(namespace uuid.UUID, libraryPath string, version int) string {
	return spepackage.ObjectID(namespace, libraryPath).String() + "/" + strconv.Itoa(version+1) + ".bin"
}

// MetadataIdentities reads author and editor from blob metadata
// ("author" or "createdby", "modifiedby" or "lastmodifiedby"; keys are
// lower-case in source entries). users, when non-nil, maps a source identity
// (compared case-insensitively) to the target UPN.
func MetadataIdentities(users map[string]string) func(source.Entry) (spepackage.Identity, spepackage.Identity) {
	lower := make(map[string]string, len(users))
	for k, v := range users {
		lower[strings.ToLower(strings.TrimSpace(k))] = v
	}
	look := func(e source.Entry, keys ...string) spepackage.Identity {
		for _, k := range keys {
			v := strings.TrimSpace(e.Metadata[k])
			if v == "" {
				continue
			}
			if m, ok := lower[strings.ToLower(v)]; ok {
				v = m
			}
			return spepackage.Identity{Login: v}
		}
		return spepackage.Identity{}
	}
	return func(e source.Entry) (spepackage.Identity, spepackage.Identity) {
		a := look(e, "author", "createdby")
		m := look(e, "modifiedby", "lastmodifiedby")
		if m == (spepackage.Identity{}) {
			m = a
		}
		return a, m
	}
}

// Stage uploads one batch's content and then its manifests. It returns an
// error wrapping [ErrSASExpiring] before uploading anything when either SAS
// has less than the minimum validity left, and an error for any storage
// failure (the batch can be staged again as a whole); per-item source
// failures are reported in the Result instead.
func (s *Stager) Stage(ctx context.Context, req Request) (*Result, error) {
	if req.Source == nil {
		req.Source = s.opts.Source
	}
	if err := s.check(req); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	for _, u := range []string{req.Containers.DataURL, req.Containers.MetadataURL} {
		if err := CheckSAS(u, now, s.opts.MinSASValidity); err != nil {
			return nil, fmt.Errorf("stage batch: %w", err)
		}
	}
	data, err := container.NewClientWithNoCredential(req.Containers.DataURL, s.opts.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("stage batch: data container %s: %s", StripQuery(req.Containers.DataURL), redactText(err.Error()))
	}
	meta, err := container.NewClientWithNoCredential(req.Containers.MetadataURL, s.opts.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("stage batch: metadata container %s: %s", StripQuery(req.Containers.MetadataURL), redactText(err.Error()))
	}
	idf := req.Identities
	if idf == nil {
		idf = MetadataIdentities(nil)
	}

	res := &Result{Items: make([]ItemResult, len(req.Batch.Items))}
	lanes := s.acquireLanes(min(s.opts.FileConcurrency, len(req.Batch.Items)))
	defer s.releaseLanes(lanes)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.FileConcurrency)
	for i, it := range req.Batch.Items {
		g.Go(func() error {
			ir, err := s.stageItem(gctx, data, req, it, lanes)
			res.Items[i] = ir
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("stage batch: %w", err)
	}

	items := make([]spepackage.Item, 0, len(res.Items))
	for i, ir := range res.Items {
		if ir.Error != "" {
			res.Failed++
			s.log.WarnContext(ctx, "item not staged", "path", ir.Path, "error", ir.Error)
			continue
		}
		res.Staged++
		items = append(items, packageItem(req.Batch.Items[i], ir, idf))
	}

	var mu sync.Mutex
	create := func(name string) (io.WriteCloser, error) {
		return s.pipeUpload(ctx, meta, name, req.Containers.Key, func(b Blob) {
			mu.Lock()
			res.Manifests = append(res.Manifests, b)
			mu.Unlock()
		}), nil
	}
	rep, err := spepackage.Build(ctx, spepackage.Package{
		Target: req.Target, Namespace: req.Namespace, SourceType: req.SourceType,
		IDs: req.IDs, Items: items, Options: s.opts.Package,
	}, create)
	if err != nil {
		return nil, fmt.Errorf("stage batch: manifests: %w", err)
	}
	res.Package = rep
	byPath := make(map[string]spepackage.ItemReport, len(rep.Items))
	for _, r := range rep.Items {
		byPath[r.LibraryPath] = r
	}
	for i := range res.Items {
		ir := &res.Items[i]
		if r, ok := byPath[ir.LibraryPath]; ok && ir.Error == "" {
			ir.IntID, ir.Author = r.IntID, r.Author
		}
	}
	s.log.InfoContext(ctx, "batch staged", "items", len(res.Items), "staged", res.Staged, "failed", res.Failed)
	return res, nil
}

func (s *Stager) check(req Request) error {
	switch {
	case req.Source == nil:
		return errors.New("stage batch: Request.Source is nil: pass the migration's source (or set Options.Source)")
	case len(req.Containers.Key) != spepackage.KeySize:
		return fmt.Errorf("stage batch: Containers.Key is %d bytes, want %d: decode the provisioned encryptionKey with spepackage.DecodeKey", len(req.Containers.Key), spepackage.KeySize)
	case req.Containers.DataURL == "" || req.Containers.MetadataURL == "":
		return errors.New("stage batch: Containers.DataURL and MetadataURL are required: pass the provisioned SAS URLs")
	case req.Containers.DataURL == req.Containers.MetadataURL:
		return errors.New("stage batch: data and metadata containers must differ")
	case req.Namespace == uuid.Nil:
		return errors.New("stage batch: Namespace is empty: pass the target's stable namespace UUID")
	case req.IDs == nil:
		return errors.New("stage batch: IDs is nil: pass the migration's list-item id allocator")
	}
	if err := req.Target.Validate(); err != nil {
		return fmt.Errorf("stage batch: %w", err)
	}
	for _, it := range req.Batch.Items {
		if len(it.Versions) == 0 {
			return fmt.Errorf("stage batch: item %q has no Versions", it.Path)
		}
	}
	return nil
}

// packageItem describes a staged item for the manifest. Sizes are what was
// actually read, which is what the blob holds even if the source changed
// since it was listed.
func packageItem(it Item, ir ItemResult, idf func(source.Entry) (spepackage.Identity, spepackage.Identity)) spepackage.Item {
	first := it.Versions[0]
	created := first.Created
	if created.IsZero() {
		// A file cannot be younger than its first version.
		created = first.Modified
	}
	author, _ := idf(first)
	pi := spepackage.Item{Path: it.Path, Created: created, Author: author}
	for v, e := range it.Versions {
		_, editor := idf(e)
		pi.Versions = append(pi.Versions, spepackage.Version{
			BlobName:   ir.Blobs[v].Name,
			Size:       ir.Blobs[v].PlainSize,
			Modified:   e.Modified,
			ModifiedBy: editor,
		})
	}
	return pi
}

// sourceError marks a failure to read the source, which fails only its item.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

func (s *Stager) stageItem(ctx context.Context, data *container.Client, req Request, it Item, lanes *spepackage.MD5Server) (ItemResult, error) {
	lib := req.Target.LibraryPath(it.Path)
	ir := ItemResult{Path: it.Path, LibraryPath: lib, ID: spepackage.ObjectID(req.Namespace, lib)}
	for v, e := range it.Versions {
		name := BlobName(req.Namespace, lib, v)
		b, err := s.stageEntry(ctx, data, req.Source, name, e, req.Containers.Key, lanes)
		var se *sourceError
		if errors.As(err, &se) {
			ir.Blobs = nil
			ir.Error = redactText(fmt.Sprintf("read source %s: %v", e.Path, se.err))
			return ir, nil
		}
		if err != nil {
			return ir, err
		}
		ir.Blobs = append(ir.Blobs, b)
	}
	return ir, nil
}

func (s *Stager) stageEntry(ctx context.Context, data *container.Client, src source.Source, name string, e source.Entry, key []byte, lanes *spepackage.MD5Server) (Blob, error) {
	rc, err := src.Open(ctx, e)
	if err != nil {
		if ctx.Err() != nil {
			return Blob{}, ctx.Err()
		}
		return Blob{}, &sourceError{err}
	}
	defer rc.Close()
	return s.upload(ctx, data, name, sourceReader{rc}, key, lanes)
}
