package state

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// sealPrefix versions the sealed format so a later key rotation or scheme
// can coexist with stored values.
const sealPrefix = "gcm1:"

// Sealer encrypts secrets (SAS URLs, the job key) before they are stored,
// with AES-256-GCM. The additional data binds a sealed value to the entity
// and property it belongs to, so a value copied onto another row does not
// open.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer takes the key as base64 of 32 random bytes (an app setting;
// `openssl rand -base64 32` makes one).
func NewSealer(keyBase64 string) (*Sealer, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keyBase64))
	if err != nil {
		return nil, errors.New("state: seal key is not valid base64; generate one with `openssl rand -base64 32`")
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("state: seal key must be 32 bytes, got %d; generate one with `openssl rand -base64 32`", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("state: seal key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("state: seal key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext without binding it to a context. An empty
// plaintext seals to "".
func (s *Sealer) Seal(plaintext []byte) (string, error) { return s.SealFor(string(plaintext), "") }

// Open reverses Seal.
func (s *Sealer) Open(sealed string) ([]byte, error) {
	pt, err := s.OpenFor(sealed, "")
	return []byte(pt), err
}

// SealFor encrypts plaintext bound to context (e.g.
// "Batches/m1/000001/DataURI"): it opens only with the same context.
// An empty plaintext seals to "" so absent secrets stay absent.
func (s *Sealer) SealFor(plaintext, context string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("state: seal: %w", err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(plaintext), []byte(context))
	return sealPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// OpenFor reverses SealFor. The error never contains the sealed or opened
// value.
func (s *Sealer) OpenFor(sealed, context string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	if !strings.HasPrefix(sealed, sealPrefix) {
		return "", fmt.Errorf("state: open %q: not a sealed value", context)
	}
	data, err := base64.RawStdEncoding.DecodeString(sealed[len(sealPrefix):])
	if err != nil || len(data) < s.aead.NonceSize() {
		return "", fmt.Errorf("state: open %q: malformed sealed value", context)
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, data[:n], data[n:], []byte(context))
	if err != nil {
		return "", fmt.Errorf("state: open %q: wrong key or tampered value", context)
	}
	return string(pt), nil
}
