package spepackage

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

func newServer(t testing.TB) *MD5Server {
	t.Helper()
	s := NewMD5Server()
	if s == nil {
		t.Skip("this CPU has no AVX2: NewMD5Server returns nil and readers use crypto/md5 (covered by the other tests)")
	}
	return s
}

// serverRunning reports whether a md5-simd server goroutine is alive.
func serverRunning() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Contains(string(buf[:n]), "md5-simd.(*md5Server).process")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// waitStopped polls until no server goroutine is left.
func waitStopped(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for serverRunning() {
		if time.Now().After(deadline) {
			t.Fatal("md5-simd server goroutine still running after Close")
		}
		runtime.Gosched()
	}
}

// TestMD5ServerMatchesCryptoMD5 encrypts inputs of every awkward size, many
// at once so that the lanes really run side by side, and checks each
// reader's MD5 against crypto/md5 over its ciphertext.
func TestMD5ServerMatchesCryptoMD5(t *testing.T) {
	srv := newServer(t)
	sizes := []int{0, 1, 15, 16, 17, 63, 64, 65, 1000,
		chunkSize - 17, chunkSize - 16, chunkSize - 1, chunkSize, chunkSize + 1, chunkSize + 15, chunkSize + 16,
		2*chunkSize - 16, 2 * chunkSize, 3*chunkSize + 5, 5<<20 + 3, 9 << 20}
	if testing.Short() {
		sizes = sizes[:len(sizes)-1]
	}
	rng := rand.New(rand.NewPCG(5, 6))
	plains := make([][]byte, len(sizes))
	for i, n := range sizes {
		plains[i] = make([]byte, n)
		for j := range plains[i] {
			plains[i][j] = byte(rng.Uint32())
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(sizes))
	for i, plain := range plains {
		for _, wrap := range []func(io.Reader) io.Reader{
			func(r io.Reader) io.Reader { return r },
			iotest.HalfReader,
		} {
			wg.Go(func() {
				er, err := NewEncryptReader(wrap(bytes.NewReader(plain)), testKey, testIV, WithMD5Server(srv))
				if err != nil {
					errs <- err
					return
				}
				defer er.Close()
				ct, err := io.ReadAll(er)
				if err != nil {
					errs <- fmt.Errorf("%d bytes: %w", sizes[i], err)
					return
				}
				if !bytes.Equal(ct, referenceEncrypt(plain, testKey, testIV)) {
					errs <- fmt.Errorf("%d bytes: ciphertext differs from the reference", sizes[i])
				}
				if want := md5.Sum(ct); !bytes.Equal(er.MD5(), want[:]) {
					errs <- fmt.Errorf("%d bytes: MD5 %x, want %x", sizes[i], er.MD5(), want)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !serverRunning() {
		t.Fatal("no server goroutine found before Close: the stop check would prove nothing")
	}
	srv.Close()
	if !srv.Stopped() {
		t.Fatal("server not stopped after Close with no reader left")
	}
	waitStopped(t)
}

// TestMD5ServerCloseWaitsForReaders closes the server while a reader holds a
// lane: the reader still gets the right MD5, the server stops when the
// reader is done, and a reader made after Close falls back to crypto/md5.
func TestMD5ServerCloseWaitsForReaders(t *testing.T) {
	srv := newServer(t)
	plain := bytes.Repeat([]byte("lane"), 3*chunkSize/4+7)
	er, err := NewEncryptReader(bytes.NewReader(plain), testKey, testIV, WithMD5Server(srv))
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 100)
	if _, err := io.ReadFull(er, first); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if srv.Stopped() {
		t.Fatal("server stopped while a reader still hashes in it")
	}
	rest, err := io.ReadAll(er)
	if err != nil {
		t.Fatal(err)
	}
	ct := append(first, rest...)
	if want := md5.Sum(ct); !bytes.Equal(er.MD5(), want[:]) {
		t.Fatalf("MD5 %x, want %x", er.MD5(), want)
	}
	if !srv.Stopped() {
		t.Fatal("server not stopped once its last reader reached EOF")
	}
	er.Close()
	waitStopped(t)

	late, err := NewEncryptReader(bytes.NewReader(plain), testKey, testIV, WithMD5Server(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	ct2, err := io.ReadAll(late)
	if err != nil {
		t.Fatal(err)
	}
	if want := md5.Sum(ct2); !bytes.Equal(late.MD5(), want[:]) {
		t.Fatalf("reader after Close: MD5 %x, want %x", late.MD5(), want)
	}
}

// TestMD5ServerReaderAbandoned gives the lane back when a reader is closed
// before EOF (a failed source or upload), so Close can stop the server.
func TestMD5ServerReaderAbandoned(t *testing.T) {
	srv := newServer(t)
	src := io.MultiReader(bytes.NewReader(make([]byte, 3*chunkSize)), iotest.ErrReader(io.ErrUnexpectedEOF))
	er, err := NewEncryptReader(src, testKey, testIV, WithMD5Server(srv))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(er); err != io.ErrUnexpectedEOF {
		t.Fatalf("ReadAll error = %v, want the source's error", err)
	}
	srv.Close()
	if srv.Stopped() {
		t.Fatal("server stopped while an unclosed reader holds a lane")
	}
	er.Close()
	if !srv.Stopped() {
		t.Fatal("server not stopped after its last reader was closed")
	}
	waitStopped(t)
}

// BenchmarkEncryptMD5Concurrent runs several EncryptReaders at once, with
// crypto/md5 and with the SIMD lanes, and reports MB per CPU-second.
func BenchmarkEncryptMD5Concurrent(b *testing.B) {
	for _, streams := range []int{1, 2, 4, 8} {
		for _, simd := range []bool{false, true} {
			name := fmt.Sprintf("streams=%d/crypto-md5", streams)
			if simd {
				name = fmt.Sprintf("streams=%d/md5-simd", streams)
			}
			b.Run(name, func(b *testing.B) {
				var srv *MD5Server
				if simd {
					srv = newServer(b)
					defer srv.Close()
				}
				b.SetBytes(int64(streams) * benchSize)
				b.ReportAllocs()
				c0 := cpuTime(b)
				for b.Loop() {
					var wg sync.WaitGroup
					for range streams {
						wg.Go(func() {
							out := make([]byte, 4<<20)
							er, err := NewEncryptReader(&zeroReader{left: benchSize}, testKey, testIV, WithMD5Server(srv))
							if err != nil {
								b.Error(err)
								return
							}
							defer er.Close()
							for {
								if _, err := io.ReadFull(er, out); err != nil {
									break
								}
							}
							if er.MD5() == nil {
								b.Error("no MD5")
							}
						})
					}
					wg.Wait()
				}
				cpu := cpuTime(b) - c0
				b.ReportMetric(float64(streams)*benchSize*float64(b.N)/1e6/cpu.Seconds(), "MB/CPU-s")
			})
		}
	}
}

// cpuTime is the user+system CPU time the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Skipf("getrusage: %v: CPU time cannot be measured here", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
