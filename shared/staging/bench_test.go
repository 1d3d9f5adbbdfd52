package staging

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/spepackage"
	"github.com/spemigrate/spemigrate/shared/staging/stagingtest"
)

// peakRSS reads the process's high-water resident set size (VmHWM) in bytes.
func peakRSS(b *testing.B) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status: peak RSS cannot be measured here")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// BenchmarkStageLargeFile stages one 2 GiB generated file (never in memory)
// with the default options and reports the process's peak RSS, which must
// stay under 64 MiB, and the throughput.
func BenchmarkStageLargeFile(b *testing.B) {
	const size = 2 << 30
	var received atomic.Int64
	srv := stagingtest.NewSink(&received)
	defer srv.Close()
	st, err := New(Options{Source: stagingtest.NewGenSource(64<<10, 9)})
	if err != nil {
		b.Fatal(err)
	}
	far := "?se=" + time.Now().Add(72*time.Hour).UTC().Format(time.RFC3339) + "&sp=rw&sig=bench"
	req := Request{
		Batch: Batch{Items: []Item{{Path: "huge/video.mp4", Versions: []source.Entry{{
			Path: "video.mp4", Size: size, Modified: time.Now().UTC(),
		}}}}, Blobs: 1, Bytes: size},
		Containers: Containers{
			DataURL:     srv.URL + "/devstoreaccount1/data" + far,
			MetadataURL: srv.URL + "/devstoreaccount1/meta" + far,
			Key:         make([]byte, 32),
		},
		Target:     testTarget,
		Namespace:  uuid.MustParse("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
		SourceType: spepackage.SourceAzureStorage,
		IDs:        spepackage.NewMemoryIntIDs(1),
	}
	// Reset the high-water mark so earlier work in this process does not
	// count (Linux: writing 5 to clear_refs).
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		res, err := st.Stage(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		if got := res.Items[0].Blobs[0].StoredSize; got != spepackage.EncryptedSize(size) {
			b.Fatalf("stored %d bytes", got)
		}
	}
	if received.Load() < size*int64(b.N) {
		b.Fatalf("sink received %d bytes, want at least %d", received.Load(), size*int64(b.N))
	}
	b.ReportMetric(float64(peakRSS(b))/(1<<20), "peakRSS-MiB")
}

// cpuTime is the user+system CPU time the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Skipf("getrusage: %v: CPU time cannot be measured here", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStageConcurrentFiles stages batches of several generated files
// at once with the default options and reports MB per CPU-second (getrusage,
// the whole process, the in-process sink included), the measure of
// benchreport's figure 1a. The MD5 SIMD lanes only pay off with several
// streams, so it runs with 4 and 8 files.
func BenchmarkStageConcurrentFiles(b *testing.B) {
	const size = 64 << 20
	for _, files := range []int{4, 8} {
		b.Run(strconv.Itoa(files)+"x64MiB", func(b *testing.B) {
			var received atomic.Int64
			srv := stagingtest.NewSink(&received)
			defer srv.Close()
			st, err := New(Options{Source: stagingtest.NewGenSource(64<<10, 9)})
			if err != nil {
				b.Fatal(err)
			}
			far := "?se=" + time.Now().Add(72*time.Hour).UTC().Format(time.RFC3339) + "&sp=rw&sig=bench"
			batch := Batch{Blobs: files, Bytes: int64(files) * size}
			for i := range files {
				batch.Items = append(batch.Items, Item{
					Path:     "bench/file-" + strconv.Itoa(i) + ".bin",
					Versions: []source.Entry{{Path: "file-" + strconv.Itoa(i) + ".bin", Size: size, Modified: time.Now().UTC()}},
				})
			}
			req := Request{
				Batch: batch,
				Containers: Containers{
					DataURL:     srv.URL + "/devstoreaccount1/data" + far,
					MetadataURL: srv.URL + "/devstoreaccount1/meta" + far,
					Key:         make([]byte, 32),
				},
				Target:     testTarget,
				Namespace:  uuid.MustParse("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
				SourceType: spepackage.SourceAzureStorage,
				IDs:        spepackage.NewMemoryIntIDs(1),
			}
			b.SetBytes(int64(files) * size)
			b.ReportAllocs()
			c0 := cpuTime(b)
			for b.Loop() {
				res, err := st.Stage(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				if res.Staged != files {
					b.Fatalf("staged %d of %d files", res.Staged, files)
				}
			}
			cpu := cpuTime(b) - c0
			b.ReportMetric(float64(files)*size*float64(b.N)/1e6/cpu.Seconds(), "MB/CPU-s")
		})
	}
}
