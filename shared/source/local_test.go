package source

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLocalPagingAndResume(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"a/b.txt":        "ab",
		"a/c/d.txt":      "acd",
		"a-c.txt":        "a-c", // sorts after "a/…" in walk order, before it as a string
		"z.txt":          "z",
		"Ünïcødé.txt":    "u",
		"empty.bin":      "",
		"deep/x/y/z.txt": "deep",
		"deep/x/a.txt":   "deepa",
	}
	mtime := time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC)
	for p, c := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, filepath.Join(root, "loop")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "z.txt"), filepath.Join(root, "zlink.txt")); err != nil {
		t.Fatal(err)
	}
	want := []string{"a/b.txt", "a/c/d.txt", "a-c.txt", "deep/x/a.txt", "deep/x/y/z.txt", "empty.bin", "z.txt", "zlink.txt", "Ünïcødé.txt"}

	src, err := NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1, 2, 3, 100} {
		got, _ := listAll(t, src, "", size)
		if strings.Join(paths(got), ",") != strings.Join(want, ",") {
			t.Fatalf("page size %d: %v, want %v", size, paths(got), want)
		}
	}
	// Resume from every cursor a listing hands out.
	for i := range want {
		rest, _ := listAll(t, src, want[i], 2)
		if strings.Join(paths(rest), ",") != strings.Join(want[i+1:], ",") {
			t.Errorf("after %q: %v, want %v", want[i], paths(rest), want[i+1:])
		}
	}

	all, _ := listAll(t, src, "", 100)
	for _, e := range all {
		if !e.Modified.Equal(mtime) || e.Modified.Location() != time.UTC || e.ETag == "" {
			t.Errorf("%s: modified %v etag %q", e.Path, e.Modified, e.ETag)
		}
		rc, err := src.Open(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		wantContent := files[e.Path]
		if e.Path == "zlink.txt" {
			wantContent = files["z.txt"]
		}
		if err != nil || string(b) != wantContent || e.Size != int64(len(b)) {
			t.Errorf("%s: read %q (size %d), %v", e.Path, b, e.Size, err)
		}
	}
	if _, err := src.Open(context.Background(), Entry{Path: "../etc/passwd"}); err == nil {
		t.Error("opened a path outside the folder")
	}
	if _, err := NewLocal(filepath.Join(root, "z.txt")); err == nil {
		t.Error("NewLocal accepted a file")
	}
	if _, err := src.List(context.Background(), "", 0); err == nil {
		t.Error("List accepted page size 0")
	}
}
