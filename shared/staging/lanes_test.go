package staging

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/spepackage"
	"github.com/spemigrate/spemigrate/shared/staging/stagingtest"
)

// laneServerRunning reports whether a md5-simd server goroutine is alive.
func laneServerRunning() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Contains(string(buf[:n]), "md5-simd.(*md5Server).process")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func requireLanes(t *testing.T) {
	t.Helper()
	probe := spepackage.NewMD5Server()
	if probe == nil {
		t.Skip("this CPU has no AVX2: staging uses crypto/md5 only (TestStageBatch covers it)")
	}
	probe.Close()
	deadline := time.Now().Add(5 * time.Second)
	for laneServerRunning() {
		if time.Now().After(deadline) {
			t.Fatal("a lane server is running before the test started")
		}
		runtime.Gosched()
	}
}

// watchingSource notes whether the MD5 lanes were running when a file was
// opened.
type watchingSource struct {
	source.Source
	sawLanes atomic.Bool
}

func (w *watchingSource) Open(ctx context.Context, e source.Entry) (io.ReadCloser, error) {
	if laneServerRunning() {
		w.sawLanes.Store(true)
	}
	return w.Source.Open(ctx, e)
}

// TestStageMD5Lanes stages files of several chunks at once, with the SIMD
// lanes and without, into Azurite: every blob's Content-MD5 must match its
// stored bytes and decrypt to the source, and the lane server must stop when
// Stage returns.
func TestStageMD5Lanes(t *testing.T) {
	requireLanes(t)
	e := newEnv(t, 48*time.Hour)
	rng := rand.New(rand.NewPCG(11, 12))
	sizes := []int{512<<10 - 16, 512 << 10, 512<<10 + 1, 1<<20 + 15, 3<<20 + 7, 2 << 20}
	var items []Item
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		p := "lanes/f" + strconv.Itoa(i) + ".bin"
		full := filepath.Join(e.dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
		e.content[p] = b
		items = append(items, Item{Path: p, Versions: []source.Entry{{Path: p, Size: int64(n), Modified: time.Now().UTC()}}})
	}
	e.items = items
	for _, off := range []bool{false, true} {
		t.Run("NoMD5Lanes="+strconv.FormatBool(off), func(t *testing.T) {
			src := &watchingSource{Source: e.src}
			st, err := New(Options{Source: src, BlockSize: 256 << 10, Buffers: 4, FileConcurrency: 6, NoMD5Lanes: off})
			if err != nil {
				t.Fatal(err)
			}
			res, err := st.Stage(context.Background(), e.request(spepackage.NewMemoryIntIDs(1)))
			if err != nil {
				t.Fatal(err)
			}
			if res.Staged != len(sizes) {
				t.Fatalf("staged %d of %d", res.Staged, len(sizes))
			}
			for _, ir := range res.Items {
				if got := fetch(t, e.data, ir.Blobs[0]); !bytes.Equal(got, e.content[ir.Path]) {
					t.Errorf("%s: content differs after decryption", ir.Path)
				}
			}
			if src.sawLanes.Load() == off {
				t.Errorf("lane server running while staging: %v, want %v", src.sawLanes.Load(), !off)
			}
			deadline := time.Now().Add(5 * time.Second)
			for laneServerRunning() {
				if time.Now().After(deadline) {
					t.Fatal("lane server still running after Stage returned")
				}
				runtime.Gosched()
			}
		})
	}
}

// TestStageLanesStopOnError: a storage failure ends Stage early; the lanes
// must still stop.
func TestStageLanesStopOnError(t *testing.T) {
	requireLanes(t)
	st, err := New(Options{Source: stagingtest.NewGenSource(64<<10, 9)})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, 48*time.Hour)
	req := e.request(spepackage.NewMemoryIntIDs(1))
	req.Batch.Items = nil
	for i := range 5 {
		p := "gen/f" + strconv.Itoa(i)
		req.Batch.Items = append(req.Batch.Items, Item{Path: p, Versions: []source.Entry{{Path: p, Size: 3 << 20, Modified: time.Now().UTC()}}})
	}
	// A container that does not exist: every block upload fails.
	req.Containers.DataURL = strings.Replace(req.Containers.DataURL, "?", "missing?", 1)
	if _, err := st.Stage(context.Background(), req); err == nil {
		t.Fatal("Stage into a missing container succeeded")
	} else if errors.Is(err, context.Canceled) {
		t.Fatalf("Stage reported the cancellation, not the storage error: %v", err)
	}
	st.lanesMu.Lock()
	left := st.lanes
	st.lanesMu.Unlock()
	if left != nil {
		t.Fatal("Stager still holds a lane server after Stage returned")
	}
	deadline := time.Now().Add(5 * time.Second)
	for laneServerRunning() {
		if time.Now().After(deadline) {
			t.Fatal("lane server still running after a failed Stage")
		}
		runtime.Gosched()
	}
}
