package staging

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"golang.org/x/sync/errgroup"

	"github.com/spemigrate/spemigrate/shared/spepackage"
)

// bufferPool hands out at most n block buffers, allocated on first use and
// reused after; a caller waits when all are in use. This is the bound on
// staging memory.
type bufferPool struct {
	size  int
	free  chan *[]byte
	mu    sync.Mutex
	made  int
	limit int
}

func newBufferPool(n, size int) *bufferPool {
	return &bufferPool{size: size, free: make(chan *[]byte, n), limit: n}
}

func (p *bufferPool) get(ctx context.Context) (*[]byte, error) {
	select {
	case b := <-p.free:
		return b, nil
	default:
	}
	p.mu.Lock()
	if p.made < p.limit {
		p.made++
		p.mu.Unlock()
		b := make([]byte, p.size)
		return &b, nil
	}
	p.mu.Unlock()
	select {
	case b := <-p.free:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *bufferPool) put(b *[]byte) { p.free <- b }

// maxBlocks is the most blocks one block blob can commit.
const maxBlocks = 50000

// blockID is a fixed-width id (the service requires all ids of a blob to
// have the same length) made of the upload's random nonce and the block's
// index. The nonce matters: every upload encrypts under a fresh IV, so a
// block left behind by an earlier attempt at the same blob (a crashed
// process whose last Put Block lands late, or a duplicate delivery staging
// the same batch) holds different ciphertext. With index-only ids a commit
// could reference such a block and store bytes that do not decrypt under
// the IV it records.
func blockID(nonce [8]byte, i int) string {
	var b [16]byte
	copy(b[:8], nonce[:])
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	return base64.StdEncoding.EncodeToString(b[:])
}

// upload encrypts r into the block blob name: one Put Blob when the
// ciphertext fits in one buffer, otherwise blocks staged in parallel and a
// commit carrying Content-MD5 and the IV; then a snapshot (spec §4).
// lanes, when not nil, hashes the ciphertext in a SIMD lane shared with the
// other files of the batch.
func (s *Stager) upload(ctx context.Context, c *container.Client, name string, r io.Reader, key []byte, lanes *spepackage.MD5Server) (Blob, error) {
	u, err := s.newBlobUpload(c, name, r, key, lanes)
	if err != nil {
		return Blob{}, err
	}
	defer u.er.Close()
	ids, single, err := u.send(ctx)
	if err != nil {
		return Blob{}, err
	}
	if !single {
		if err := u.commit(ctx, ids); err != nil {
			return Blob{}, err
		}
	}
	return u.snapshot(ctx)
}

// blobUpload is one blob being uploaded: the encrypting reader over the
// source and what the blob's requests share.
type blobUpload struct {
	s     *Stager
	name  string
	bb    *blockblob.Client
	plain *countingReader // counts the plaintext read (FileSize)
	er    *spepackage.EncryptReader
	ivb64 string
	meta  map[string]*string // the IV metadata every write carries
	nonce [8]byte            // see blockID
}

// newBlobUpload draws the upload's IV and block id nonce and sets up the
// encryption of r. The caller closes u.er.
func (s *Stager) newBlobUpload(c *container.Client, name string, r io.Reader, key []byte, lanes *spepackage.MD5Server) (*blobUpload, error) {
	iv, err := spepackage.NewIV()
	if err != nil {
		return nil, err
	}
	u := &blobUpload{s: s, name: name, bb: c.NewBlockBlobClient(name), plain: &countingReader{r: r}}
	if _, err := rand.Read(u.nonce[:]); err != nil {
		return nil, fmt.Errorf("upload %s: block id nonce: %w", name, err)
	}
	u.er, err = spepackage.NewEncryptReader(u.plain, key, iv, spepackage.WithMD5Server(lanes))
	if err != nil {
		return nil, err
	}
	u.ivb64 = spepackage.IVValue(iv)
	u.meta = map[string]*string{spepackage.IVMetadata: &u.ivb64}
	return u, nil
}

// send reads the ciphertext a buffer at a time. When the first buffer holds
// all of it, it is written with one Put Blob and single is true; otherwise
// every buffer is staged as a block, up to BlockConcurrency in parallel,
// and send returns the block ids to commit once all have been staged.
func (u *blobUpload) send(ctx context.Context) (ids []string, single bool, err error) {
	s := u.s
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.BlockConcurrency)
	for idx := 0; ; idx++ {
		bp, err := s.bufs.get(gctx)
		if err != nil {
			// A failed block cancels gctx; report that failure, not the
			// cancellation it caused.
			if werr := g.Wait(); werr != nil {
				return nil, false, werr
			}
			return nil, false, err
		}
		n, rerr := io.ReadFull(u.er, *bp)
		if rerr == io.EOF {
			s.bufs.put(bp)
			break
		}
		if rerr != nil && rerr != io.ErrUnexpectedEOF {
			s.bufs.put(bp)
			if werr := g.Wait(); werr != nil {
				return nil, false, werr
			}
			return nil, false, rerr
		}
		last := rerr == io.ErrUnexpectedEOF
		if idx == 0 && last {
			err := u.putBlob(ctx, (*bp)[:n])
			s.bufs.put(bp)
			if err != nil {
				return nil, true, err
			}
			return nil, true, g.Wait()
		}
		if idx >= maxBlocks {
			s.bufs.put(bp)
			g.Wait()
			return nil, false, fmt.Errorf("upload %s: more than %d blocks of %d bytes: raise Options.BlockSize", u.name, maxBlocks, s.opts.BlockSize)
		}
		id := blockID(u.nonce, idx)
		ids = append(ids, id)
		g.Go(func() error {
			defer s.bufs.put(bp)
			_, err := u.bb.StageBlock(gctx, id, streaming.NopCloser(bytes.NewReader((*bp)[:n])), nil)
			return blobErr("put block", u.name, err)
		})
		if last {
			break
		}
	}
	if err := g.Wait(); err != nil {
		return nil, false, err
	}
	return ids, false, nil
}

// putBlob writes the whole ciphertext, which fits in one buffer, with its
// Content-MD5 and IV in one request.
func (u *blobUpload) putBlob(ctx context.Context, ciphertext []byte) error {
	_, err := u.bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(ciphertext)), &blockblob.UploadOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentMD5: u.er.MD5()},
		Metadata:    u.meta,
	})
	if err != nil {
		return blobErr("put blob", u.name, err)
	}
	return nil
}

// commit commits the staged blocks with the ciphertext's Content-MD5 and
// the IV.
func (u *blobUpload) commit(ctx context.Context, ids []string) error {
	if u.er.MD5() == nil {
		return fmt.Errorf("upload %s: internal error: ciphertext hash missing", u.name)
	}
	_, err := u.bb.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentMD5: u.er.MD5()},
		Metadata:    u.meta,
	})
	if err != nil {
		return blobErr("commit block list", u.name, err)
	}
	return nil
}

// snapshot takes the snapshot the import reads and describes the blob.
func (u *blobUpload) snapshot(ctx context.Context) (Blob, error) {
	snap, err := u.bb.CreateSnapshot(ctx, nil)
	if err != nil {
		return Blob{}, blobErr("snapshot", u.name, err)
	}
	b := Blob{
		Name:       u.name,
		PlainSize:  u.plain.n,
		StoredSize: u.er.Size(),
		MD5:        u.er.MD5(),
		IV:         u.ivb64,
	}
	if snap.Snapshot != nil {
		b.Snapshot = *snap.Snapshot
	}
	return b, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// pipeUpload returns a writer whose bytes are encrypted and uploaded as they
// are written; Close waits for the upload and returns its error.
func (s *Stager) pipeUpload(ctx context.Context, c *container.Client, name string, key []byte, done func(Blob)) io.WriteCloser {
	pr, pw := io.Pipe()
	pu := &pipeUploader{pw: pw, result: make(chan error, 1)}
	go func() {
		// Manifests are written one at a time: no lanes.
		b, err := s.upload(ctx, c, name, pr, key, nil)
		if err != nil {
			pr.CloseWithError(err)
		} else {
			pr.Close()
		}
		if err == nil {
			done(b)
		}
		pu.result <- err
	}()
	return pu
}

type pipeUploader struct {
	pw     *io.PipeWriter
	result chan error
}

func (p *pipeUploader) Write(b []byte) (int, error) { return p.pw.Write(b) }

func (p *pipeUploader) Close() error {
	p.pw.Close()
	return <-p.result
}

// CloseWithError abandons the upload: nothing is committed.
func (p *pipeUploader) CloseWithError(err error) error {
	p.pw.CloseWithError(err)
	<-p.result
	return nil
}
