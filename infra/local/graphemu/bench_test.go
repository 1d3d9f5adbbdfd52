package graphemu_test

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/google/uuid"
)

// lcgReader yields n deterministic bytes without holding them.
type lcgReader struct {
	x uint32
	n int64
}

func (r *lcgReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		r.x = r.x*1664525 + 1013904223
		p[i] = byte(r.x >> 24)
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// encryptReader encrypts a stream with AES-256-CBC and PKCS#7 padding.
type encryptReader struct {
	src  io.Reader
	mode cipher.BlockMode
	out  []byte
	tail []byte
	done bool
}

func (e *encryptReader) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.done {
			return 0, io.EOF
		}
		buf := make([]byte, 64<<10)
		n, err := io.ReadFull(e.src, buf)
		data := append(e.tail, buf[:n]...)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			pad := 16 - len(data)%16
			for range pad {
				data = append(data, byte(pad))
			}
			e.done = true
			e.tail = nil
		} else if err != nil {
			return 0, err
		} else {
			k := len(data) / 16 * 16
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

func vmHWM() (peak, rss int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && (fields[0] == "VmHWM:" || fields[0] == "VmRSS:") {
			v, _ := strconv.ParseInt(fields[1], 10, 64)
			if fields[0] == "VmHWM:" {
				peak = v
			} else {
				rss = v
			}
		}
	}
	return peak, rss
}

// uploadLargePackage stages files×size bytes of deterministic content plus
// a manifest listing them, streaming (nothing is held in memory).
func uploadLargePackage(b *testing.B, ci containerInfo, files int, size int64) {
	key, _ := base64.StdEncoding.DecodeString(ci.EncryptionKey)
	block, _ := aes.NewCipher(key)
	ctx := context.Background()
	dc, _ := container.NewClientWithNoCredential(ci.DataContainerURI, nil)
	var m strings.Builder
	head, folder, _, foot := manifestParts()
	m.WriteString(head + folder)
	for i := range files {
		name := fmt.Sprintf("blob/%04d.bin", i)
		iv := make([]byte, 16)
		_, _ = rand.Read(iv)
		ivs := base64.StdEncoding.EncodeToString(iv)
		er := &encryptReader{src: &lcgReader{x: uint32(i), n: size}, mode: cipher.NewCBCEncrypter(block, iv)}
		bb := dc.NewBlockBlobClient(name)
		if _, err := bb.UploadStream(ctx, er, &blockblob.UploadStreamOptions{BlockSize: 4 << 20, Concurrency: 2, Metadata: map[string]*string{"IV": &ivs}}); err != nil {
			b.Fatal(err)
		}
		if _, err := bb.CreateSnapshot(ctx, nil); err != nil {
			b.Fatal(err)
		}
		id := uuid.NewSHA1(uuid.NameSpaceURL, []byte(name)).String()
		fname := fmt.Sprintf("file-%04d.bin", i)
		fmt.Fprintf(&m, `  <SPObject Id="%[1]s" ObjectType="SPFile" ParentId="%[2]s" ParentWebId="%[3]s" Url="Document Library/Contracts/%[4]s">
    <File Id="%[1]s" Name="%[4]s" Url="Document Library/Contracts/%[4]s" ListItemIntId="%[5]d" ListId="%[6]s" ParentId="%[2]s" ParentWebId="%[3]s"
          Version="1.0" FileValue="%[7]s" FileSize="%[8]d" TimeCreated="2024-01-01T00:00:00Z" TimeLastModified="2024-01-02T00:00:00Z" Author="1" ModifiedBy="1" />
  </SPObject>
`, id, exFolder, exWeb, fname, 2000+i, exList, name, size)
	}
	m.WriteString(foot)
	p := examplePkg()
	p.data = map[string][]byte{}
	p.meta["Manifest.xml"] = []byte(m.String())
	p.upload(b, ci)
}

// BenchmarkImport imports packages of growing size and reports the peak
// RSS of the process while the emulator imports (VmHWM after a reset).
func BenchmarkImport(b *testing.B) {
	for _, c := range []struct {
		files int
		size  int64
	}{{25, 1 << 20}, {250, 1 << 20}, {1, 250 << 20}} {
		b.Run(fmt.Sprintf("files=%d,MB=%d", c.files, int64(c.files)*c.size>>20), func(b *testing.B) {
			if testing.Short() && c.files*int(c.size>>20) > 25 {
				b.Skip("250 MB package skipped in -short mode")
			}
			e := newEmu(b, nil)
			var peakMB float64
			for range b.N {
				b.StopTimer()
				ci := e.provision()
				uploadLargePackage(b, ci, c.files, c.size)
				_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
				_, before := vmHWM()
				b.StartTimer()
				evs := e.waitDone(e.mustCreateJob(ci))
				b.StopTimer()
				final := evs[len(evs)-1]
				if final["filesProcessed"] != float64(c.files) || final["totalErrors"] != float64(0) {
					b.Fatalf("import incomplete: %v", final)
				}
				peak, _ := vmHWM()
				peakMB = float64(peak) / 1024
				b.Logf("RSS before import %.1f MB, peak during import %.1f MB", float64(before)/1024, peakMB)
				b.StartTimer()
			}
			b.SetBytes(int64(c.files) * c.size)
			b.ReportMetric(peakMB, "peakRSS-MB")
		})
	}
}
