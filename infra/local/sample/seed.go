package sample

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"golang.org/x/sync/errgroup"
)

// Blob is a file as uploaded: what a verification compares against.
type Blob struct {
	File
	SHA256 [32]byte
	// Created and Modified are the times the storage service assigned (the
	// source times a migration preserves).
	Created  time.Time
	Modified time.Time
}

// SeedOptions tune Seed.
type SeedOptions struct {
	// Concurrency is the number of files uploaded at once (default 8).
	Concurrency int
	// Progress, when set, is called after each file with the bytes so far.
	Progress func(files int, bytes int64)
}

// Seed creates the container if needed and uploads files into it, streaming
// each file's content and hashing it on the way. It then lists the container
// to record the service-assigned times.
func Seed(ctx context.Context, c *container.Client, files []File, opts SeedOptions) ([]Blob, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if _, err := c.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return nil, fmt.Errorf("sample: create container: %w", err)
	}
	out, err := uploadAll(ctx, c, files, opts)
	if err != nil {
		return nil, err
	}
	// Revise after all uploads, so the gap from creation is as long as the
	// upload took.
	if err := reviseAll(ctx, c, files, opts.Concurrency); err != nil {
		return nil, err
	}
	if err := recordTimes(ctx, c, out); err != nil {
		return nil, err
	}
	return out, nil
}

// uploadAll uploads files, opts.Concurrency at a time, and returns them in
// order with their content hashes, reporting progress after each file.
func uploadAll(ctx context.Context, c *container.Client, files []File, opts SeedOptions) ([]Blob, error) {
	out := make([]Blob, len(files))
	var done atomic.Int64
	var bytes atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	for i, f := range files {
		g.Go(func() error {
			sum, err := upload(gctx, c.NewBlockBlobClient(f.Path), f)
			if err != nil {
				return fmt.Errorf("sample: upload %q: %w", f.Path, err)
			}
			out[i] = Blob{File: f, SHA256: sum}
			n := done.Add(1)
			b := bytes.Add(f.Size)
			if opts.Progress != nil {
				opts.Progress(int(n), b)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// reviseAll marks every Revised file by setting its metadata again (with
// "revised": "true"), which moves its last-modified time past its creation.
func reviseAll(ctx context.Context, c *container.Client, files []File, concurrency int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, f := range files {
		if !f.Revised {
			continue
		}
		g.Go(func() error {
			md := map[string]*string{"revised": to.Ptr("true")}
			for k, v := range f.Metadata {
				md[k] = to.Ptr(v)
			}
			if _, err := c.NewBlobClient(f.Path).SetMetadata(gctx, md, nil); err != nil {
				return fmt.Errorf("sample: revise %q: %w", f.Path, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// recordTimes lists the container and copies each uploaded blob's
// service-assigned creation and last-modified times into out. Every blob
// of out must be in the listing.
func recordTimes(ctx context.Context, c *container.Client, out []Blob) error {
	index := make(map[string]int, len(out))
	for i, b := range out {
		index[b.Path] = i
	}
	pager := c.NewListBlobsFlatPager(nil)
	seen := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("sample: list container: %w", err)
		}
		for _, it := range page.Segment.BlobItems {
			i, ok := index[*it.Name]
			if !ok || it.Properties == nil {
				continue
			}
			if p := it.Properties.CreationTime; p != nil {
				out[i].Created = p.UTC()
			}
			if p := it.Properties.LastModified; p != nil {
				out[i].Modified = p.UTC()
			}
			seen++
		}
	}
	if seen != len(out) {
		return fmt.Errorf("sample: uploaded %d files but the listing shows %d of them (a name the service changed?)", len(out), seen)
	}
	return nil
}

func upload(ctx context.Context, bc *blockblob.Client, f File) ([32]byte, error) {
	h := sha256.New()
	body := io.TeeReader(f.Content(), h)
	md := make(map[string]*string, len(f.Metadata))
	for k, v := range f.Metadata {
		md[k] = to.Ptr(v)
	}
	hdr := &blockblob.UploadStreamOptions{
		BlockSize:   8 << 20,
		Concurrency: 2,
		Metadata:    md,
	}
	hdr.HTTPHeaders = httpHeaders(f.ContentType)
	if _, err := bc.UploadStream(ctx, body, hdr); err != nil {
		return [32]byte{}, err
	}
	return sumOf(h), nil
}

func sumOf(h hash.Hash) [32]byte {
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func httpHeaders(contentType string) *blob.HTTPHeaders {
	return &blob.HTTPHeaders{BlobContentType: to.Ptr(contentType)}
}
