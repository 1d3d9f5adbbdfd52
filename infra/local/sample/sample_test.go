package sample

import (
	"crypto/sha256"
	"io"
	"strings"
	"testing"
)

func TestDemoSetHasWhatTheDemoPromises(t *testing.T) {
	files := Demo()
	if len(files) < 500 {
		t.Errorf("%d files, want at least 500", len(files))
	}
	var large, empty, nested, authored int
	seen := map[string]bool{}
	folded := map[string]int{}
	for _, f := range files {
		if seen[f.Path] {
			t.Errorf("duplicate path %q", f.Path)
		}
		seen[f.Path] = true
		folded[strings.ToLower(f.Path)]++
		switch {
		case f.Size >= 200<<20:
			large++
		case f.Size == 0:
			empty++
		}
		if strings.Count(f.Path, "/") >= 2 {
			nested++
		}
		if f.Author() != "" {
			authored++
		}
		for _, v := range f.Metadata {
			for _, r := range v {
				if r > 127 {
					t.Errorf("%q: metadata %q is not ASCII", f.Path, v)
				}
			}
		}
	}
	if large != 1 || empty < 1 || nested < 400 || authored < 100 {
		t.Errorf("large %d, empty %d, nested %d, authored %d", large, empty, nested, authored)
	}
	if folded["naming/report.pdf"] != 2 {
		t.Errorf("no case collision in the set")
	}
	for _, want := range []string{"Naming/a:b.txt", "Naming/CON", "Naming/~$lock.docx", "Naming/trailing space "} {
		if !seen[want] {
			t.Errorf("missing naming case %q", want)
		}
	}
}

func TestContentIsDeterministicAndSized(t *testing.T) {
	for _, f := range Small("r/", 30) {
		a, n := digest(t, f)
		if n != f.Size {
			t.Fatalf("%q: %d bytes, want %d", f.Path, n, f.Size)
		}
		if b, _ := digest(t, f); a != b {
			t.Fatalf("%q: content differs between reads", f.Path)
		}
	}
}

func digest(t *testing.T, f File) ([32]byte, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, f.Content())
	if err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s, n
}

// BenchmarkLargeContent measures generating the demo's large file; it is
// streamed, so memory stays flat.
func BenchmarkLargeContent(b *testing.B) {
	f := File{Path: "big.bin", Size: 200 << 20}
	b.SetBytes(f.Size)
	for b.Loop() {
		if _, err := io.Copy(io.Discard, f.Content()); err != nil {
			b.Fatal(err)
		}
	}
}
