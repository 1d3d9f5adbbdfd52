package source

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Azurite (3.37) ignores include=versions and lists no version ids, so the
// version paging logic is checked here against a small List Blobs server
// that speaks the REST response format; TestBlobVersionsOnAzurite covers the
// same code path against Azurite.

type fakeVersion struct {
	name, id string
	current  bool
}

func versionServer(t *testing.T, items []fakeVersion) *httptest.Server {
	t.Helper()
	type props struct {
		Length   int64  `xml:"Content-Length"`
		Modified string `xml:"Last-Modified"`
		Created  string `xml:"Creation-Time"`
		ETag     string `xml:"Etag"`
		Type     string `xml:"BlobType"`
	}
	type blobXML struct {
		Name      string `xml:"Name"`
		VersionID string `xml:"VersionId"`
		Current   *bool  `xml:"IsCurrentVersion"`
		Props     props  `xml:"Properties"`
	}
	type result struct {
		XMLName    xml.Name  `xml:"EnumerationResults"`
		Blobs      []blobXML `xml:"Blobs>Blob"`
		NextMarker string    `xml:"NextMarker"`
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("comp") != "list" {
			if v := q.Get("versionid"); v != "" {
				w.Header().Set("Content-Length", strconv.Itoa(len(v)))
				w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
				io.WriteString(w, v) // the body names the version read
				return
			}
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		if !strings.Contains(q.Get("include"), "versions") {
			http.Error(w, "versions not asked for", http.StatusBadRequest)
			return
		}
		start, _ := strconv.Atoi(q.Get("marker"))
		max, _ := strconv.Atoi(q.Get("maxresults"))
		var res result
		end := min(start+max, len(items))
		for i, it := range items[start:end] {
			cur := it.current
			res.Blobs = append(res.Blobs, blobXML{Name: it.name, VersionID: it.id, Current: &cur, Props: props{
				Length: int64(start + i), Modified: time.Now().UTC().Format(http.TimeFormat),
				Created: time.Now().UTC().Format(http.TimeFormat), ETag: "0x" + strconv.Itoa(start+i), Type: "BlockBlob",
			}})
		}
		if end < len(items) {
			res.NextMarker = strconv.Itoa(end)
		}
		w.Header().Set("Content-Type", "application/xml")
		io.WriteString(w, xml.Header)
		xml.NewEncoder(w).Encode(res)
	}))
}

func TestBlobVersionPaging(t *testing.T) {
	v := func(name string, n int, current bool) []fakeVersion {
		var out []fakeVersion
		for i := range n {
			out = append(out, fakeVersion{name, fmt.Sprintf("2024-01-0%dT00:00:00.0000000Z", i+1), current && i == n-1})
		}
		return out
	}
	var items []fakeVersion
	items = append(items, v("a", 4, true)...)
	items = append(items, v("b", 1, true)...)
	items = append(items, v("c", 2, false)...) // deleted blob: only old versions remain
	items = append(items, v("d", 8, true)...)  // more versions than a page holds
	items = append(items, v("e", 1, true)...)
	srv := versionServer(t, items)
	defer srv.Close()
	cc, err := container.NewClientWithNoCredential(srv.URL+"/acct/c", nil)
	if err != nil {
		t.Fatal(err)
	}
	src := NewBlobFromClient(cc, BlobOptions{Versions: true})
	want := "a@2024-01-01 a@2024-01-02 a@2024-01-03 a@2024-01-04 b@2024-01-01 d@2024-01-01 d@2024-01-02 d@2024-01-03 d@2024-01-04 d@2024-01-05 d@2024-01-06 d@2024-01-07 d@2024-01-08 e@2024-01-01"
	for _, max := range []int{1, 2, 3, 5, 100} {
		var got []string
		var cursors []string
		cursor := ""
		for {
			p, err := src.List(context.Background(), cursor, max)
			if err != nil {
				t.Fatalf("max %d: %v", max, err)
			}
			// All versions of one path travel in one page.
			perPath := map[string]int{}
			for _, e := range p.Entries {
				got = append(got, e.Path+"@"+e.VersionID[:10])
				perPath[e.Path]++
			}
			for path, n := range perPath {
				if want := map[string]int{"a": 4, "b": 1, "d": 8, "e": 1}[path]; n != want {
					t.Errorf("max %d: page holds %d versions of %s, want all %d", max, n, path, want)
				}
			}
			if p.Next == "" {
				break
			}
			cursors = append(cursors, p.Next)
			cursor = p.Next
		}
		if strings.Join(got, " ") != want {
			t.Errorf("max %d:\n got %s\nwant %s", max, strings.Join(got, " "), want)
		}
		// Resuming from any cursor gives the rest of the listing.
		for _, c := range cursors {
			var rest []string
			cur := c
			for cur != "" {
				p, err := src.List(context.Background(), cur, max)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range p.Entries {
					rest = append(rest, e.Path+"@"+e.VersionID[:10])
				}
				cur = p.Next
			}
			if !strings.HasSuffix(want, strings.Join(rest, " ")) || len(rest) == 0 {
				t.Errorf("max %d: resume from %q gave %v", max, c, rest)
			}
		}
	}
	// Open reads the listed version.
	p, _ := src.List(context.Background(), "", 100)
	rc, err := src.Open(context.Background(), p.Entries[1])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != p.Entries[1].VersionID {
		t.Errorf("opened version %q, want %q", b, p.Entries[1].VersionID)
	}
	if _, err := src.List(context.Background(), "not-a-version-cursor", 5); err == nil {
		t.Error("a cursor from elsewhere was accepted")
	}
}

// TestBlobVersionsOnAzurite: with Versions on, a container without
// versioning lists each blob once, as its current version.
func TestBlobVersionsOnAzurite(t *testing.T) {
	c := newContainer(t)
	want := seed(t, c)
	src, err := NewBlobFromConnectionString(local.StorageConnectionString, containerName(c), BlobOptions{Prefix: "pfx", Versions: true})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := listAll(t, src, "", 4)
	if strings.Join(paths(got), "\n") != strings.Join(want, "\n") {
		t.Fatalf("listed %v, want %v", paths(got), want)
	}
}
