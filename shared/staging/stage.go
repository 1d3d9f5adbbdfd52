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

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/spepackage"
)

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
	// ExistingFolders are folders the container holds already, referenced
	// instead of created (see spepackage.Package.ExistingFolders).
	ExistingFolders map[string]uuid.UUID
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
	data, meta, err := s.openContainers(req.Containers)
	if err != nil {
		return nil, err
	}
	idf := req.Identities
	if idf == nil {
		idf = MetadataIdentities(nil)
	}

	res := &Result{Items: make([]ItemResult, len(req.Batch.Items))}
	if err := s.stageContent(ctx, data, req, res); err != nil {
		return nil, err
	}
	items := s.manifestItems(ctx, req.Batch, res, idf)
	if err := s.stageManifests(ctx, meta, req, items, res); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "batch staged", "items", len(res.Items), "staged", res.Staged, "failed", res.Failed)
	return res, nil
}

// openContainers checks that both SAS URLs are valid for long enough and
// returns clients for the data and metadata containers. Its errors carry the
// URLs without their query, so no SAS token leaks.
func (s *Stager) openContainers(c Containers) (data, meta *container.Client, err error) {
	now := s.opts.Now()
	for _, u := range []string{c.DataURL, c.MetadataURL} {
		if err := CheckSAS(u, now, s.opts.MinSASValidity); err != nil {
			return nil, nil, fmt.Errorf("stage batch: %w", err)
		}
	}
	data, err = container.NewClientWithNoCredential(c.DataURL, s.opts.ClientOptions)
	if err != nil {
		return nil, nil, fmt.Errorf("stage batch: data container %s: %s", StripQuery(c.DataURL), redactText(err.Error()))
	}
	meta, err = container.NewClientWithNoCredential(c.MetadataURL, s.opts.ClientOptions)
	if err != nil {
		return nil, nil, fmt.Errorf("stage batch: metadata container %s: %s", StripQuery(c.MetadataURL), redactText(err.Error()))
	}
	return data, meta, nil
}

// stageContent uploads every version of every batch item into the data
// container, FileConcurrency files at a time, filling res.Items in batch
// order. A source failure fails only its item; a storage failure fails the
// batch.
func (s *Stager) stageContent(ctx context.Context, data *container.Client, req Request, res *Result) error {
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
		return fmt.Errorf("stage batch: %w", err)
	}
	return nil
}

// manifestItems counts the staged and failed items into res and returns the
// staged ones as package items; failed items are logged and left out.
func (s *Stager) manifestItems(ctx context.Context, b Batch, res *Result, idf func(source.Entry) (spepackage.Identity, spepackage.Identity)) []spepackage.Item {
	items := make([]spepackage.Item, 0, len(res.Items))
	for i, ir := range res.Items {
		if ir.Error != "" {
			res.Failed++
			s.log.WarnContext(ctx, "item not staged", "path", ir.Path, "error", ir.Error)
			continue
		}
		res.Staged++
		items = append(items, packageItem(b.Items[i], ir, idf))
	}
	return items
}

// stageManifests builds the package for items, uploading each file of it
// into the metadata container as it is written, and records the manifests,
// the package report and each item's list-item id and author in res.
func (s *Stager) stageManifests(ctx context.Context, meta *container.Client, req Request, items []spepackage.Item, res *Result) error {
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
		IDs: req.IDs, Items: items, Options: s.opts.Package, ExistingFolders: req.ExistingFolders,
	}, create)
	if err != nil {
		return fmt.Errorf("stage batch: manifests: %w", err)
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
	return nil
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
