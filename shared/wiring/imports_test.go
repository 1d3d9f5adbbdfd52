package wiring

import (
	"strings"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/state"
)

func TestSameVersion(t *testing.T) {
	mod := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	item := func(etag string, size int64, m time.Time) state.Item {
		return state.Item{Path: "a/b.txt", Target: "a/b.txt", Versions: []source.Entry{{Path: "a/b.txt", ETag: etag, Size: size, Modified: m}}}
	}
	prev := state.Import{Source: "s", SourcePath: "a/b.txt", ETag: "e1", Size: 10, Modified: mod, Versions: 1}
	noETag := prev
	noETag.ETag = ""
	for _, tt := range []struct {
		name string
		prev state.Import
		src  string
		it   state.Item
		want bool
	}{
		{"same etag", prev, "s", item("e1", 10, mod.Add(time.Hour)), true},
		{"other etag", prev, "s", item("e2", 10, mod), false},
		{"same etag, other size", prev, "s", item("e1", 11, mod), false},
		{"other source", prev, "t", item("e1", 10, mod), false},
		{"no etag: same size and time", noETag, "s", item("", 10, mod), true},
		{"no etag: other time", noETag, "s", item("", 10, mod.Add(time.Second)), false},
		{"no etag: no time", state.Import{Source: "s", SourcePath: "a/b.txt", Size: 10, Versions: 1}, "s", item("", 10, time.Time{}), false},
		{"a version was added", prev, "s", state.Item{Path: "a/b.txt", Versions: []source.Entry{{ETag: "e0"}, {ETag: "e1", Size: 10}}}, false},
	} {
		if got := sameVersion(tt.prev, tt.src, tt.it); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSourceKeyIgnoresSecrets(t *testing.T) {
	blob := func(u string) request.Request {
		return request.Request{Source: request.Source{Kind: request.KindAzureBlob, ContainerURL: u, Prefix: "p/"}}
	}
	a := sourceKey(blob("https://Acct.blob.core.windows.net/src?sv=1&sig=AAA"))
	b := sourceKey(blob("https://acct.blob.core.windows.net/src/?sv=2&sig=BBB"))
	if a != b {
		t.Errorf("a rotated SAS changed the source key: %q vs %q", a, b)
	}
	if c := sourceKey(blob("https://acct.blob.core.windows.net/other?sig=AAA")); c == a {
		t.Error("another container has the same source key")
	}
	for _, k := range []string{a, b} {
		if strings.Contains(k, "sig=") {
			t.Errorf("source key %q carries the signature", k)
		}
	}
}
