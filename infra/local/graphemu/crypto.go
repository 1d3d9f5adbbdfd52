package graphemu

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// errPadding reports ciphertext whose last block is not valid PKCS#7: almost
// always a wrong key or a wrong IV.
var errPadding = errors.New("invalid PKCS#7 padding (wrong key or IV?)")

// ivFromMetadata finds the IV metadata entry whatever its casing, as Azure
// returns metadata names with different casing from different calls.
func ivFromMetadata(md map[string]*string) ([]byte, error) {
	var raw *string
	for k, v := range md {
		if strings.EqualFold(k, "IV") {
			raw = v
			break
		}
	}
	if raw == nil {
		return nil, errors.New("blob has no IV metadata")
	}
	iv, err := base64.StdEncoding.DecodeString(*raw)
	if err != nil {
		return nil, fmt.Errorf("IV metadata is not base64: %w", err)
	}
	if len(iv) != aes.BlockSize {
		return nil, fmt.Errorf("IV metadata decodes to %d bytes, want %d", len(iv), aes.BlockSize)
	}
	return iv, nil
}

// decryptReader decrypts an AES-256-CBC stream and strips its PKCS#7
// padding. It holds back the last block until it sees EOF, so memory stays at
// a few blocks whatever the stream's length.
type decryptReader struct {
	src   io.Reader
	mode  cipher.BlockMode
	buf   []byte // ciphertext read but not yet decrypted
	out   []byte // plaintext ready to hand out
	chunk []byte // read buffer, reused
	plain []byte // decryption buffer, reused once out is drained
	eof   bool
	err   error
}

func newDecryptReader(src io.Reader, key, iv []byte) (*decryptReader, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &decryptReader{src: src, mode: cipher.NewCBCDecrypter(block, iv), buf: make([]byte, 0, 64<<10)}, nil
}

func (d *decryptReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.eof {
			d.err = io.EOF
			return 0, io.EOF
		}
		d.fill()
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

func (d *decryptReader) fill() {
	// Read until at least two blocks are buffered (one can be released) or EOF.
	if d.chunk == nil {
		d.chunk = make([]byte, 32<<10)
	}
	n, err := d.src.Read(d.chunk)
	d.buf = append(d.buf, d.chunk[:n]...)
	if err == io.EOF {
		d.eof = true
	} else if err != nil {
		d.err = err
		return
	}
	bs := aes.BlockSize
	if d.eof {
		if len(d.buf) == 0 || len(d.buf)%bs != 0 {
			d.err = fmt.Errorf("ciphertext length %d is not a positive multiple of %d", len(d.buf), bs)
			return
		}
		plain := make([]byte, len(d.buf))
		d.mode.CryptBlocks(plain, d.buf)
		d.buf = d.buf[:0]
		pad := int(plain[len(plain)-1])
		if pad == 0 || pad > bs || pad > len(plain) {
			d.err = errPadding
			return
		}
		for _, b := range plain[len(plain)-pad:] {
			if int(b) != pad {
				d.err = errPadding
				return
			}
		}
		d.out = plain[:len(plain)-pad]
		return
	}
	// Keep at least one whole block back: it may be the padded last one.
	ready := (len(d.buf)/bs - 1) * bs
	if ready <= 0 {
		return
	}
	if cap(d.plain) < ready {
		d.plain = make([]byte, ready)
	}
	plain := d.plain[:ready]
	d.mode.CryptBlocks(plain, d.buf[:ready])
	d.buf = append(d.buf[:0], d.buf[ready:]...)
	d.out = plain
}

// encryptReader encrypts a stream with AES-256-CBC and PKCS#7 padding,
// holding one chunk at a time (logs are written back this way).
type encryptReader struct {
	src  io.Reader
	mode cipher.BlockMode
	buf  []byte
	tail []byte
	out  []byte
	done bool
}

func newEncryptReader(src io.Reader, key, iv []byte) (*encryptReader, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &encryptReader{src: src, mode: cipher.NewCBCEncrypter(block, iv), buf: make([]byte, 32<<10)}, nil
}

func (e *encryptReader) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.done {
			return 0, io.EOF
		}
		n, err := io.ReadFull(e.src, e.buf)
		data := append(e.tail[:len(e.tail):len(e.tail)], e.buf[:n]...)
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			pad := aes.BlockSize - len(data)%aes.BlockSize
			data = append(data, bytes.Repeat([]byte{byte(pad)}, pad)...)
			e.done, e.tail = true, nil
		case err != nil:
			return 0, err
		default:
			k := len(data) / aes.BlockSize * aes.BlockSize
			e.tail = append([]byte(nil), data[k:]...)
			data = data[:k]
		}
		e.mode.CryptBlocks(data, data)
		e.out = data
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}

func newIV() ([]byte, error) {
	iv := make([]byte, aes.BlockSize)
	_, err := rand.Read(iv)
	return iv, err
}
