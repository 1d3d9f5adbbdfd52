package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// BlobOptions configures a Blob source.
type BlobOptions struct {
	// Prefix limits the source to one virtual folder of the container, e.g.
	// "exports/2024". A trailing "/" is implied; entry paths are relative to it.
	Prefix string
	// Versions lists every version of each blob (the container must have
	// versioning enabled), oldest first and the current one last. Paths whose
	// current version is deleted are left out.
	Versions bool
	// DownloadRetries is how many times Open resumes a dropped download from
	// where it broke off. Zero means 5.
	DownloadRetries int32
	// Client tunes the SDK (retries, transport); nil uses the SDK defaults.
	// Either way the constructors refuse redirects to another host (see
	// RedirectError); NewBlobFromClient uses the client as given.
	Client *container.ClientOptions
}

// Blob is an Azure Blob container, optionally under a prefix.
//
// Directory marker blobs (zero bytes, metadata hdi_isfolder=true, as Data
// Lake Storage and some tools create them) are skipped: folders are implied
// by the paths of the files in them, so an empty folder is not migrated.
type Blob struct {
	c      *container.Client
	prefix string
	opts   BlobOptions
}

// NewBlobFromSASURL opens the container a container SAS URL names.
func NewBlobFromSASURL(sasURL string, opts BlobOptions) (*Blob, error) {
	u, err := url.Parse(sasURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("source: blob SAS URL %q is not an absolute URL: give the container URL with its SAS query, https://account.blob.core.windows.net/container?sv=…", Redact(sasURL))
	}
	if u.RawQuery == "" {
		return nil, fmt.Errorf("source: blob SAS URL %q has no SAS query: append the container SAS token, or use a credential", Redact(sasURL))
	}
	c, err := container.NewClientWithNoCredential(sasURL, guardClientOptions(opts.Client))
	if err != nil {
		return nil, fmt.Errorf("source: blob SAS URL %q: %w", Redact(sasURL), RedactError(err))
	}
	return newBlob(c, opts), nil
}

// NewBlob opens the container at containerURL (no query) with an Entra ID
// credential, e.g. from azidentity.
func NewBlob(containerURL string, cred azcore.TokenCredential, opts BlobOptions) (*Blob, error) {
	if cred == nil {
		return nil, errors.New("source: blob credential is nil: give an azidentity credential, or use a SAS URL")
	}
	c, err := container.NewClient(containerURL, cred, guardClientOptions(opts.Client))
	if err != nil {
		return nil, fmt.Errorf("source: blob container URL %q: %w", Redact(containerURL), RedactError(err))
	}
	return newBlob(c, opts), nil
}

// NewBlobFromConnectionString opens a container through a storage account
// connection string (shared key; meant for local runs against Azurite).
func NewBlobFromConnectionString(connStr, containerName string, opts BlobOptions) (*Blob, error) {
	if containerName == "" {
		return nil, errors.New("source: blob container name is empty")
	}
	c, err := container.NewClientFromConnectionString(connStr, containerName, guardClientOptions(opts.Client))
	if err != nil {
		// The SDK's messages never quote the string (it holds the account
		// key), and neither does this one.
		return nil, fmt.Errorf("source: blob connection string for container %q is not valid: %w", containerName, RedactError(err))
	}
	return newBlob(c, opts), nil
}

// NewBlobFromClient wraps a container client the caller already has.
func NewBlobFromClient(c *container.Client, opts BlobOptions) *Blob { return newBlob(c, opts) }

func newBlob(c *container.Client, opts BlobOptions) *Blob {
	p := strings.TrimLeft(opts.Prefix, "/")
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if opts.DownloadRetries == 0 {
		opts.DownloadRetries = 5
	}
	return &Blob{c: c, prefix: p, opts: opts}
}

// String names the source without any credential, for logs.
func (b *Blob) String() string {
	u, err := url.Parse(b.c.URL())
	if err != nil {
		return "blob container"
	}
	u.RawQuery, u.User = "", nil
	return u.String() + "/" + b.prefix
}

// List returns up to max entries after cursor. Without versions the cursor is
// the service's continuation marker. With versions it also names the last
// path returned, so all versions of one path always travel in one page; such
// a page may then hold more than max entries.
func (b *Blob) List(ctx context.Context, cursor string, max int) (Page, error) {
	if max <= 0 {
		return Page{}, fmt.Errorf("source: list page size is %d: give a positive size", max)
	}
	if max > 5000 {
		max = 5000 // the service's own ceiling
	}
	if b.opts.Versions {
		return b.listVersions(ctx, cursor, max)
	}
	marker := cursor
	for {
		items, next, err := b.fetch(ctx, marker, max)
		if err != nil {
			return Page{}, err
		}
		var p Page
		for _, it := range items {
			if e, ok := b.entry(it); ok {
				p.Entries = append(p.Entries, e)
			}
		}
		p.Next = next
		// A page of only directory markers says nothing; move on rather than
		// hand the caller an empty page that is not the end.
		if len(p.Entries) > 0 || next == "" {
			return p, nil
		}
		marker = next
	}
}

const versionCursorPrefix = "versions?"

// listVersions pages so that a path's versions are never split: the cursor
// holds the marker of the service page to read next and the last path
// already returned, whose versions are skipped when re-read.
func (b *Blob) listVersions(ctx context.Context, cursor string, max int) (Page, error) {
	marker, after := "", ""
	if cursor != "" {
		q, ok := strings.CutPrefix(cursor, versionCursorPrefix)
		v, err := url.ParseQuery(q)
		if !ok || err != nil {
			return Page{}, fmt.Errorf("source: cursor %q was not made by a versioned blob listing", cursor)
		}
		marker, after = v.Get("m"), v.Get("after")
	}
	var items []*container.BlobItem
	next := marker
	for {
		got, n, err := b.fetch(ctx, next, max)
		if err != nil {
			return Page{}, err
		}
		next = n
		for _, it := range got {
			if after == "" || *it.Name > b.prefix+after {
				items = append(items, it)
			}
		}
		if len(items) > 0 || next == "" {
			break
		}
	}
	// The last path may continue on the next service page: read on until a
	// different name shows up, and resume there next time.
	resume := next
	if next != "" {
		last := *items[len(items)-1].Name
		for {
			got, n, err := b.fetch(ctx, next, 50)
			if err != nil {
				return Page{}, err
			}
			other := false
			for _, it := range got {
				if *it.Name != last {
					other = true
					break
				}
				items = append(items, it)
			}
			if other {
				resume = next
				break
			}
			next = n
			if next == "" {
				resume = ""
				break
			}
		}
	}

	var p Page
	for start := 0; start < len(items); {
		end := start + 1
		for end < len(items) && *items[end].Name == *items[start].Name {
			end++
		}
		p.Entries = append(p.Entries, b.versionGroup(items[start:end])...)
		start = end
	}
	if resume != "" {
		last, _ := strings.CutPrefix(*items[len(items)-1].Name, b.prefix)
		p.Next = versionCursorPrefix + url.Values{"m": {resume}, "after": {last}}.Encode()
	}
	return p, nil
}

// versionGroup turns the listed versions of one name into entries, oldest
// first and current last; nothing when the blob itself is deleted.
func (b *Blob) versionGroup(items []*container.BlobItem) []Entry {
	var out []Entry
	var current *Entry
	for _, it := range items {
		e, ok := b.entry(it)
		if !ok {
			return nil
		}
		isCurrent := it.VersionID == nil || (it.IsCurrentVersion != nil && *it.IsCurrentVersion)
		if isCurrent {
			c := e
			current = &c
			continue
		}
		out = append(out, e)
	}
	if current == nil {
		return nil
	}
	// Version ids are RFC 3339 timestamps, so the service's order is oldest
	// first already; the current one goes last whatever its id.
	return append(out, *current)
}

func (b *Blob) fetch(ctx context.Context, marker string, max int) ([]*container.BlobItem, string, error) {
	o := &container.ListBlobsFlatOptions{
		Include:    container.ListBlobsInclude{Metadata: true, Versions: b.opts.Versions},
		MaxResults: int32Ptr(int32(max)),
	}
	if b.prefix != "" {
		o.Prefix = &b.prefix
	}
	if marker != "" {
		o.Marker = &marker
	}
	resp, err := b.c.NewListBlobsFlatPager(o).NextPage(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("source: list blobs in %s: %w", b, RedactError(err))
	}
	var items []*container.BlobItem
	if resp.Segment != nil {
		items = resp.Segment.BlobItems
	}
	next := ""
	if resp.NextMarker != nil {
		next = *resp.NextMarker
	}
	return items, next, nil
}

// entry converts a listed blob; ok is false for directory markers.
func (b *Blob) entry(it *container.BlobItem) (Entry, bool) {
	if it == nil || it.Name == nil {
		return Entry{}, false
	}
	e := Entry{Path: strings.TrimPrefix(*it.Name, b.prefix), Metadata: map[string]string{}}
	for k, v := range it.Metadata {
		if v != nil {
			e.Metadata[strings.ToLower(k)] = *v
		}
	}
	if p := it.Properties; p != nil {
		if p.ContentLength != nil {
			e.Size = *p.ContentLength
		}
		if p.CreationTime != nil {
			e.Created = p.CreationTime.UTC()
		}
		if p.LastModified != nil {
			e.Modified = p.LastModified.UTC()
		}
		if p.ETag != nil {
			e.ETag = string(*p.ETag)
		}
		if len(p.ContentMD5) > 0 {
			e.ContentMD5 = p.ContentMD5
		}
	}
	if it.VersionID != nil {
		e.VersionID = *it.VersionID
	}
	if e.Size == 0 && (strings.EqualFold(e.Metadata["hdi_isfolder"], "true") || strings.HasSuffix(e.Path, "/")) {
		return Entry{}, false
	}
	if e.Path == "" {
		return Entry{}, false
	}
	return e, true
}

// Open streams the entry's bytes (the listed version when VersionID is set).
// A dropped connection is resumed from the last byte read, at most
// DownloadRetries times. The current version is read under the listed ETag,
// so a blob rewritten since it was listed fails instead of mixing contents.
func (b *Blob) Open(ctx context.Context, e Entry) (io.ReadCloser, error) {
	bc := b.c.NewBlobClient(b.prefix + e.Path)
	o := &blob.DownloadStreamOptions{}
	if e.VersionID != "" {
		var err error
		if bc, err = bc.WithVersionID(e.VersionID); err != nil {
			return nil, fmt.Errorf("source: open %q version %s: %w", e.Path, e.VersionID, RedactError(err))
		}
	} else if e.ETag != "" {
		etag := azcore.ETag(e.ETag)
		o.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &etag}}
	}
	resp, err := bc.DownloadStream(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("source: open %q in %s: %w", e.Path, b, RedactError(err))
	}
	return &redactingReader{rc: resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: b.opts.DownloadRetries}), path: e.Path}, nil
}

// redactingReader keeps SAS queries out of read errors too.
type redactingReader struct {
	rc   io.ReadCloser
	path string
}

func (r *redactingReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("source: read %q: %w", r.path, RedactError(err))
	}
	return n, err
}

func (r *redactingReader) Close() error { return r.rc.Close() }

func int32Ptr(v int32) *int32 { return &v }
