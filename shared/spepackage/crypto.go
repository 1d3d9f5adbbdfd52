package spepackage

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
)

// KeySize is the AES-256 key length the provisioning call returns (base64).
const KeySize = 32

// IVMetadata is the blob metadata name that carries the base64 IV (§5).
// Azure returns metadata names in varying case: look it up with
// strings.EqualFold.
const IVMetadata = "IV"

// EncryptedSize is the ciphertext length of a plain-byte input under PKCS#7
// padding: always a whole number of blocks and at least one (an empty file
// becomes 16 bytes).
func EncryptedSize(plain int64) int64 {
	return (plain/aes.BlockSize + 1) * aes.BlockSize
}

// NewIV returns a fresh random IV; every blob gets its own (§5).
func NewIV() ([]byte, error) {
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("generate IV: %w", err)
	}
	return iv, nil
}

// DecodeKey decodes the base64 key from provisioning and checks its length.
func DecodeKey(b64 string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("encryption key is not valid base64: pass the encryptionKey returned by provisionMigrationContainers")
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("encryption key is %d bytes, want %d: pass the encryptionKey returned by provisionMigrationContainers", len(key), KeySize)
	}
	return key, nil
}

func newMode(key, iv []byte, enc bool) (cipher.BlockMode, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("encryption key is %d bytes, want %d", len(key), KeySize)
	}
	if len(iv) != aes.BlockSize {
		return nil, fmt.Errorf("IV is %d bytes, want %d", len(iv), aes.BlockSize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if enc {
		return cipher.NewCBCEncrypter(b, iv), nil
	}
	return cipher.NewCBCDecrypter(b, iv), nil
}

// chunkSize is how much plaintext is encrypted at a time. Large chunks keep
// the per-chunk hand-off to the hashing goroutine negligible.
const chunkSize = 512 << 10

// chunks recycles chunk buffers across readers, so encrypting many small
// blobs does not churn megabytes of garbage. It is a cache, not state.
var chunks = sync.Pool{New: func() any {
	b := make([]byte, chunkSize+aes.BlockSize)
	return &b
}}

// EncryptReader reads the AES-256-CBC/PKCS#7 ciphertext of another reader.
// It computes the MD5 of the ciphertext on a second goroutine while the
// caller's goroutine encrypts the next chunk, so the hash costs little wall
// time; once Read has returned io.EOF, [EncryptReader.Size] and
// [EncryptReader.MD5] are final. Memory is at most three 512 KiB chunks
// whatever the input size. Call Close when done, also after an error (it
// does not close the source).
type EncryptReader struct {
	src  io.Reader
	mode cipher.BlockMode

	out    []byte // ciphertext not yet returned to the caller
	carry  [aes.BlockSize]byte
	ncarry int

	// Up to three chunks rotate: one being read out by the caller, one
	// being hashed, one being filled.
	held   []*[]byte
	free   chan *[]byte
	toHash chan hashJob
	hashed chan struct{}
	h      hash.Hash
	async  bool
	lanes  *MD5Server
	// release gives a lane back to lanes; nil when there is none to give.
	release func()

	size int64
	sum  []byte
	err  error // sticky; io.EOF once the last chunk was produced
}

type hashJob struct {
	buf *[]byte
	n   int
}

// An EncryptOption changes how an [EncryptReader] works, never what it
// produces.
type EncryptOption func(*EncryptReader)

// WithMD5Server hashes the ciphertext in a lane of s instead of with
// crypto/md5, for inputs of more than one 512 KiB chunk (a single chunk is
// hashed at once, where a lane would only add a round trip). A nil s means
// crypto/md5.
func WithMD5Server(s *MD5Server) EncryptOption {
	return func(e *EncryptReader) { e.lanes = s }
}

// NewEncryptReader encrypts r with key (32 bytes) and iv (16 bytes).
func NewEncryptReader(r io.Reader, key, iv []byte, opts ...EncryptOption) (*EncryptReader, error) {
	mode, err := newMode(key, iv, true)
	if err != nil {
		return nil, err
	}
	e := &EncryptReader{src: r, mode: mode}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// Size is the ciphertext length so far; final after io.EOF.
func (e *EncryptReader) Size() int64 { return e.size }

// MD5 is the MD5 of the whole ciphertext, or nil before io.EOF.
func (e *EncryptReader) MD5() []byte { return e.sum }

// Read implements io.Reader.
func (e *EncryptReader) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.err != nil {
			return 0, e.err
		}
		if err := e.fill(); err != nil {
			e.err = err
		}
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}

// Close stops the hashing goroutine and recycles the chunks. The reader is
// unusable afterwards.
func (e *EncryptReader) Close() error {
	if e.async && e.err != io.EOF {
		close(e.toHash)
		<-e.hashed
	}
	if e.err == nil {
		e.err = errors.New("spepackage: read from closed EncryptReader")
	}
	e.async = false
	e.releaseHash()
	e.out = nil
	for _, b := range e.held {
		chunks.Put(b)
	}
	e.held = nil
	return nil
}

// chunk returns a buffer to fill: a new one while fewer than three exist,
// otherwise the next one the hasher has finished with.
func (e *EncryptReader) chunk() *[]byte {
	if len(e.held) < 3 {
		b := chunks.Get().(*[]byte)
		e.held = append(e.held, b)
		return b
	}
	return <-e.free
}

// releaseHash gives the server lane back, if one is held. Only the
// caller's goroutine calls it, after the hashing goroutine has ended.
func (e *EncryptReader) releaseHash() {
	if e.release != nil {
		e.release()
		e.release = nil
	}
}

// finish takes the sum once the hashing goroutine, if any, has ended.
func (e *EncryptReader) finish() {
	e.sum = e.h.Sum(nil)
	e.releaseHash()
}

func (e *EncryptReader) hashLoop() {
	defer close(e.hashed)
	for j := range e.toHash {
		e.h.Write((*j.buf)[:j.n])
		e.free <- j.buf
	}
}

func (e *EncryptReader) fill() error {
	bp := e.chunk()
	buf := (*bp)[:chunkSize]
	n := copy(buf, e.carry[:e.ncarry])
	e.ncarry = 0
	var rerr error
	for n < len(buf) && rerr == nil {
		var m int
		m, rerr = e.src.Read(buf[n:])
		n += m
	}
	if rerr != nil && rerr != io.EOF {
		if e.async {
			e.free <- bp
		}
		return rerr
	}
	last := rerr == io.EOF
	whole := n - n%aes.BlockSize
	if last {
		pad := aes.BlockSize - n%aes.BlockSize
		buf = (*bp)[:n+pad]
		for i := n; i < n+pad; i++ {
			buf[i] = byte(pad)
		}
		whole = n + pad
	} else {
		e.ncarry = copy(e.carry[:], buf[whole:n])
	}
	ct := buf[:whole]
	e.mode.CryptBlocks(ct, ct)
	e.size += int64(whole)
	e.out = ct

	if last && !e.async {
		// The whole input fitted in one chunk: no goroutine is worth it.
		e.h = md5.New()
		e.h.Write(ct)
		e.sum = e.h.Sum(nil)
		return io.EOF
	}
	if !e.async {
		e.h, e.release = e.lanes.newHash()
		e.async = true
		e.free = make(chan *[]byte, 3)
		e.toHash = make(chan hashJob, 3)
		e.hashed = make(chan struct{})
		go e.hashLoop()
	}
	e.toHash <- hashJob{bp, whole}
	if last {
		close(e.toHash)
		<-e.hashed
		e.finish()
		return io.EOF
	}
	return nil
}

// Decrypt returns the plaintext of a whole ciphertext (manifests, logs).
func Decrypt(ciphertext, key, iv []byte) ([]byte, error) {
	mode, err := newMode(key, iv, false)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("decrypt: ciphertext length %d is not a positive multiple of %d", len(ciphertext), aes.BlockSize)
	}
	out := make([]byte, len(ciphertext))
	mode.CryptBlocks(out, ciphertext)
	pad := int(out[len(out)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, errors.New("decrypt: bad padding (wrong key or IV?)")
	}
	for _, b := range out[len(out)-pad:] {
		if int(b) != pad {
			return nil, errors.New("decrypt: bad padding (wrong key or IV?)")
		}
	}
	return out[:len(out)-pad], nil
}

// DecryptReader streams the plaintext of a ciphertext reader, holding back
// the last block until EOF to strip the padding.
type DecryptReader struct {
	src  io.Reader
	mode cipher.BlockMode
	buf  []byte
	out  []byte
	held int // offset of the held-back ciphertext block, -1 when none
	err  error
}

// NewDecryptReader decrypts r with key and iv.
func NewDecryptReader(r io.Reader, key, iv []byte) (*DecryptReader, error) {
	mode, err := newMode(key, iv, false)
	if err != nil {
		return nil, err
	}
	return &DecryptReader{src: r, mode: mode, buf: make([]byte, 64<<10), held: -1}, nil
}

// Read implements io.Reader.
func (d *DecryptReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		d.err = d.fill()
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

func (d *DecryptReader) fill() error {
	// The held-back block goes to the front; the caller has consumed the
	// plaintext before it, so the buffer is free.
	n := 0
	if d.held >= 0 {
		n = copy(d.buf, d.buf[d.held:d.held+aes.BlockSize])
		d.held = -1
	}
	var rerr error
	for n < len(d.buf) && rerr == nil {
		var m int
		m, rerr = d.src.Read(d.buf[n:])
		n += m
	}
	if rerr != nil && rerr != io.EOF {
		return rerr
	}
	if rerr == io.EOF {
		if n == 0 || n%aes.BlockSize != 0 {
			return fmt.Errorf("decrypt: ciphertext length is not a positive multiple of %d", aes.BlockSize)
		}
		d.mode.CryptBlocks(d.buf[:n], d.buf[:n])
		pad := int(d.buf[n-1])
		if pad == 0 || pad > aes.BlockSize || pad > n {
			return errors.New("decrypt: bad padding (wrong key or IV?)")
		}
		for _, b := range d.buf[n-pad : n] {
			if int(b) != pad {
				return errors.New("decrypt: bad padding (wrong key or IV?)")
			}
		}
		d.out = d.buf[:n-pad]
		return io.EOF
	}
	// Buffer full: decrypt all but the last block, which might be the final
	// padded one.
	upto := n - aes.BlockSize
	d.mode.CryptBlocks(d.buf[:upto], d.buf[:upto])
	d.held = upto
	d.out = d.buf[:upto]
	return nil
}

// IVValue returns the blob metadata value for iv (base64).
func IVValue(iv []byte) string { return base64.StdEncoding.EncodeToString(iv) }
