package source

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
)

var local *stack.Stack

func TestMain(m *testing.M) {
	stacktest.Main(m, stack.Options{Azurite: true}, stacktest.Always, func(s *stack.Stack) { local = s })
}

var containerSeq atomic.Int64

// newContainer creates a fresh container and returns its shared-key client.
func newContainer(t *testing.T) *container.Client {
	t.Helper()
	name := fmt.Sprintf("src-%d-%d", time.Now().UnixNano()%1e9, containerSeq.Add(1))
	c, err := container.NewClientFromConnectionString(local.StorageConnectionString, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(context.Background(), nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
	return c
}

func upload(t *testing.T, c *container.Client, name string, data []byte, meta map[string]*string) {
	t.Helper()
	sum := md5.Sum(data)
	_, err := c.NewBlockBlobClient(name).UploadBuffer(context.Background(), data, &blockblob.UploadBufferOptions{
		Metadata:    meta,
		HTTPHeaders: &blob.HTTPHeaders{BlobContentMD5: sum[:]},
	})
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
}

func content(name string) []byte { return []byte("content of " + name) }

func str(s string) *string { return &s }

// seed writes files under "pfx/", some outside it, and a directory marker.
func seed(t *testing.T, c *container.Client) []string {
	var names []string
	for i := range 23 {
		names = append(names, fmt.Sprintf("pfx/dir%d/file-%02d.txt", i%3, i))
	}
	names = append(names, "pfx/Ünïcødé name.txt", "pfx/empty.bin")
	for _, n := range names {
		data := content(n)
		if n == "pfx/empty.bin" {
			data = nil
		}
		upload(t, c, n, data, map[string]*string{"Author": str("alice@contoso.com"), "IV": str("x")})
	}
	upload(t, c, "pfx/dir0", nil, map[string]*string{"hdi_isfolder": str("true")})
	upload(t, c, "other/outside.txt", content("other/outside.txt"), nil)
	upload(t, c, "pfxnot/outside.txt", content("pfxnot/outside.txt"), nil)
	var rel []string
	for _, n := range names {
		rel = append(rel, strings.TrimPrefix(n, "pfx/"))
	}
	sort.Strings(rel)
	return rel
}

func listAll(t *testing.T, s Source, cursor string, max int) (entries []Entry, pages int) {
	t.Helper()
	for {
		p, err := s.List(context.Background(), cursor, max)
		if err != nil {
			t.Fatalf("list after %q: %v", cursor, err)
		}
		if len(p.Entries) > max {
			t.Fatalf("page of %d entries, max %d", len(p.Entries), max)
		}
		entries = append(entries, p.Entries...)
		pages++
		if p.Next == "" {
			return entries, pages
		}
		if p.Next == cursor {
			t.Fatalf("cursor did not advance: %q", cursor)
		}
		cursor = p.Next
	}
}

func paths(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Path)
	}
	return out
}

func TestBlobListPagesAndFields(t *testing.T) {
	c := newContainer(t)
	want := seed(t, c)
	before := time.Now().Add(-time.Minute)
	src, err := NewBlobFromConnectionString(local.StorageConnectionString, containerName(c), BlobOptions{Prefix: "pfx"})
	if err != nil {
		t.Fatal(err)
	}
	got, pages := listAll(t, src, "", 4)
	if strings.Join(paths(got), "\n") != strings.Join(want, "\n") {
		t.Fatalf("listed\n%s\nwant\n%s", strings.Join(paths(got), "\n"), strings.Join(want, "\n"))
	}
	if pages < 6 {
		t.Errorf("%d pages for %d entries at 4 a page", pages, len(got))
	}
	for _, e := range got {
		data := content("pfx/" + e.Path)
		if e.Path == "empty.bin" {
			data = nil
		}
		sum := md5.Sum(data)
		if e.Size != int64(len(data)) || !bytes.Equal(e.ContentMD5, sum[:]) {
			t.Errorf("%s: size %d md5 %x, want %d %x", e.Path, e.Size, e.ContentMD5, len(data), sum)
		}
		if e.Modified.Location() != time.UTC || e.Created.Location() != time.UTC || e.Modified.Before(before) || e.Created.IsZero() {
			t.Errorf("%s: created %v modified %v", e.Path, e.Created, e.Modified)
		}
		if e.ETag == "" || e.Metadata["author"] != "alice@contoso.com" || e.Metadata["iv"] != "x" {
			t.Errorf("%s: etag %q metadata %v", e.Path, e.ETag, e.Metadata)
		}
		if e.VersionID != "" {
			t.Errorf("%s: version %q without Versions", e.Path, e.VersionID)
		}
	}
}

func containerName(c *container.Client) string {
	u, _ := url.Parse(c.URL())
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	return parts[len(parts)-1]
}

func TestBlobResumeFromCursor(t *testing.T) {
	c := newContainer(t)
	want := seed(t, c)
	src, err := NewBlobFromConnectionString(local.StorageConnectionString, containerName(c), BlobOptions{Prefix: "pfx/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p1, err := src.List(ctx, "", 5)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := src.List(ctx, p1.Next, 5)
	if err != nil {
		t.Fatal(err)
	}
	// A new process resumes from the stored cursor.
	again, err := NewBlobFromConnectionString(local.StorageConnectionString, containerName(c), BlobOptions{Prefix: "pfx/"})
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := listAll(t, again, p2.Next, 7)
	got := append(append(paths(p1.Entries), paths(p2.Entries)...), paths(rest)...)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("resumed listing\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBlobOpenAndSAS(t *testing.T) {
	c := newContainer(t)
	seed(t, c)
	cred, err := container.NewSharedKeyCredential(stack.AzuriteAccount, stack.AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := container.NewClientWithSharedKeyCredential(c.URL(), cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	sasURL, err := sk.GetSASURL(sas.ContainerPermissions{Read: true, List: true}, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	sig := url.Values(must(url.ParseQuery(must(url.Parse(sasURL)).RawQuery))).Get("sig")
	src, err := NewBlobFromSASURL(sasURL, BlobOptions{Prefix: "pfx"})
	if err != nil {
		t.Fatal(err)
	}
	if leaksSAS(src.String(), sig) {
		t.Errorf("String() leaks the signature: %s", src)
	}
	ctx := context.Background()
	p, err := src.List(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Entries {
		rc, err := src.Open(ctx, e)
		if err != nil {
			t.Fatalf("open %s: %v", e.Path, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		want := content("pfx/" + e.Path)
		if e.Path == "empty.bin" {
			want = nil
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %s: %q %v", e.Path, got, err)
		}
	}

	// Errors name the blob, never the signature.
	_, err = src.Open(ctx, Entry{Path: "missing.txt"})
	if err == nil || leaksSAS(err.Error(), sig) || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("open missing: %v", err)
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
		t.Errorf("open missing: error chain lost the SDK error: %v", err)
	}
	// A blob rewritten after it was listed is refused, not read half old.
	e := p.Entries[0]
	upload(t, c, "pfx/"+e.Path, []byte("rewritten"), nil)
	if _, err := src.Open(ctx, e); err == nil {
		t.Errorf("open of a blob changed since listing succeeded")
	}
	bad := strings.Replace(sasURL, "sig=", "sig=AAAA", 1)
	badSrc, err := NewBlobFromSASURL(bad, BlobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = badSrc.List(ctx, "", 10)
	if err == nil || strings.Contains(err.Error(), "AAAA") || leaksSAS(err.Error(), sig) {
		t.Errorf("list with a bad SAS: %v", err)
	}
	// A transport error quotes the whole request URL, query included.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	deadURL := strings.Replace(sasURL, must(url.Parse(sasURL)).Host, dead, 1)
	deadSrc, err := NewBlobFromSASURL(deadURL, BlobOptions{Client: &container.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := deadSrc.List(ctx, "", 10); err == nil || leaksSAS(err.Error(), sig) || !strings.Contains(err.Error(), dead) {
		t.Errorf("list from an unreachable endpoint: %v", err)
	}
	if _, err := deadSrc.Open(ctx, Entry{Path: "x"}); err == nil || leaksSAS(err.Error(), sig) {
		t.Errorf("open from an unreachable endpoint: %v", err)
	}
	if _, err := NewBlobFromSASURL(strings.Split(sasURL, "?")[0], BlobOptions{}); err == nil {
		t.Errorf("a URL without a SAS query was accepted")
	}
}

// leaksSAS reports whether msg holds the signature, decoded or encoded, or
// any "sig=" parameter that was not redacted.
func leaksSAS(msg, sig string) bool {
	return strings.Contains(msg, sig) || strings.Contains(msg, url.QueryEscape(sig)) ||
		strings.Contains(strings.ReplaceAll(msg, "sig=REDACTED", ""), "sig=")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestBlobOpenSurvivesDroppedConnection puts a proxy in front of Azurite
// that cuts the first download half-way: the retry reader must resume.
func TestBlobOpenSurvivesDroppedConnection(t *testing.T) {
	c := newContainer(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 64*1024) // 1 MiB
	upload(t, c, "big.bin", data, nil)

	target := must(url.Parse(local.BlobEndpoint))
	var cut atomic.Bool
	var gets atomic.Int32
	proxy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = target.Scheme, target.Host
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/big.bin") {
			gets.Add(1)
			if cut.CompareAndSwap(false, true) {
				io.CopyN(w, resp.Body, int64(len(data)/2))
				w.(http.Flusher).Flush()
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
		}
		io.Copy(w, resp.Body)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go proxy.Serve(ln)
	defer proxy.Close()

	proxied := strings.Replace(c.URL(), target.Host, ln.Addr().String(), 1)
	cred, _ := container.NewSharedKeyCredential(stack.AzuriteAccount, stack.AzuriteKey)
	pc, err := container.NewClientWithSharedKeyCredential(proxied, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := NewBlobFromClient(pc, BlobOptions{})
	p, err := src.List(context.Background(), "", 10)
	if err != nil || len(p.Entries) != 1 {
		t.Fatalf("list: %v %v", p.Entries, err)
	}
	rc, err := src.Open(context.Background(), p.Entries[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read through a dropped connection: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, want %d identical", len(got), len(data))
	}
	if !cut.Load() || gets.Load() < 2 {
		t.Fatalf("the connection was not cut and resumed (gets %d)", gets.Load())
	}
}

func TestRedact(t *testing.T) {
	in := `Get "https://acct.blob.core.windows.net/c/b?sv=2023&sig=SECRET%2B&se=x": dial tcp; sig=OTHER`
	out := Redact(in)
	if strings.Contains(out, "SECRET") || strings.Contains(out, "OTHER") || !strings.Contains(out, "https://acct.blob.core.windows.net/c/b") {
		t.Fatalf("Redact = %q", out)
	}
}

func TestBlobConstructorErrorsHideSecrets(t *testing.T) {
	_, err := NewBlobFromConnectionString("AccountKey=c2VjcmV0LWtleQ==;EndpointSuffix=core.windows.net", "c", BlobOptions{})
	if err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("bad connection string: %v", err)
	}
	_, err = NewBlobFromSASURL("not a url?sig=TOPSECRET", BlobOptions{})
	if err == nil || strings.Contains(err.Error(), "TOPSECRET") {
		t.Errorf("bad SAS URL: %v", err)
	}
	if _, err := NewBlob("https://a.blob.core.windows.net/c", nil, BlobOptions{}); err == nil {
		t.Error("nil credential accepted")
	}
}
