package spepackage

import (
	"crypto/md5"
	"hash"
	"sync"

	"github.com/klauspost/cpuid/v2"
	md5simd "github.com/minio/md5-simd"
)

// MD5Server hashes the ciphertext of several [EncryptReader]s at once, one
// stream per SIMD lane (8 with AVX2, 16 with AVX-512) on a single goroutine.
// Go's crypto/md5 costs about as much CPU as AES-256-CBC itself; with four
// or more streams in flight the lanes cut the MD5 share of each byte by a
// quarter (4 streams) to more than half (8 streams). With one or two
// streams they cost more than crypto/md5, so share a server only between
// readers that really run at the same time.
//
// A nil *MD5Server is valid and means crypto/md5. It is safe for concurrent
// use.
type MD5Server struct {
	mu      sync.Mutex
	srv     md5simd.Server
	open    int  // hashers handed out and not yet released
	closing bool // Close was called; the last release stops srv
	stopped bool
}

// NewMD5Server starts a server, or returns nil when this CPU has no AVX2
// (the library would only wrap crypto/md5 then, at extra cost). Call Close
// when no new reader will use it.
func NewMD5Server() *MD5Server {
	if !cpuid.CPU.Supports(cpuid.AVX2) {
		return nil
	}
	return &MD5Server{srv: md5simd.NewServer()}
}

// Close stops the server once every reader using it has finished or been
// closed; readers created afterwards use crypto/md5. Closing twice is
// harmless.
func (s *MD5Server) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	s.stopLocked()
}

// Stopped reports whether the server's goroutine has been told to exit:
// Close was called and no reader holds a hasher any more.
func (s *MD5Server) Stopped() bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

func (s *MD5Server) stopLocked() {
	if s.closing && s.open == 0 && !s.stopped {
		s.stopped = true
		s.srv.Close()
	}
}

// newHash returns a lane of the server, or crypto/md5 when there is no
// server or it is closing, and the function that gives the lane back.
// The library's server blocks forever on a hasher created after its Close,
// and stops serving open hashers when closed, hence the count.
func (s *MD5Server) newHash() (hash.Hash, func()) {
	if s == nil {
		return md5.New(), func() {}
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return md5.New(), func() {}
	}
	s.open++
	s.mu.Unlock()
	h := s.srv.NewHash()
	return h, func() {
		h.Close()
		s.mu.Lock()
		s.open--
		s.stopLocked()
		s.mu.Unlock()
	}
}
