package source

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

const guardSecret = "c2VjcmV0LXNpZ25hdHVyZQ"

// emptyListing is what the Blob service answers for a container with no
// blobs.
const emptyListing = `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ContainerName="src"><Blobs></Blobs><NextMarker/></EnumerationResults>`

// redirecting starts two loopback servers: a "victim" that counts the
// requests reaching it, and a blob endpoint that redirects every request to
// the victim (another port). It returns the blob endpoint's SAS URL.
func redirecting(t *testing.T, status int) (sasURL string, victimHits *atomic.Int32) {
	t.Helper()
	victimHits = &atomic.Int32{}
	victim := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		victimHits.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, emptyListing)
	}))
	t.Cleanup(victim.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, victim.URL+r.URL.RequestURI(), status)
	}))
	t.Cleanup(redirector.Close)
	return redirector.URL + "/devstoreaccount1/src?sv=2024-08-04&sp=rl&sig=" + guardSecret, victimHits
}

// fastRetries keeps a test from waiting out azcore's back-off should a
// refusal be retried.
func fastRetries(c *container.ClientOptions) *container.ClientOptions {
	if c == nil {
		c = &container.ClientOptions{}
	}
	c.Retry = policy.RetryOptions{MaxRetries: 2, RetryDelay: time.Millisecond, MaxRetryDelay: time.Millisecond}
	return c
}

func TestBlobRefusesRedirectToAnotherHost(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		for name, client := range map[string]*container.ClientOptions{
			"default transport":      nil,
			"caller's http.Client":   {ClientOptions: azcore.ClientOptions{Transport: &http.Client{}}},
			"caller's own transport": {ClientOptions: azcore.ClientOptions{Transport: followingTransport{}}},
		} {
			t.Run(http.StatusText(status)+"/"+name, func(t *testing.T) {
				sasURL, victim := redirecting(t, status)
				opts := fastRetries(client)
				src, err := NewBlobFromSASURL(sasURL, BlobOptions{Client: opts})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, err = src.List(ctx, "", 10)
				var re *RedirectError
				if !errors.As(err, &re) {
					t.Fatalf("List through a redirect: %v, want a RedirectError", err)
				}
				if strings.Contains(err.Error(), guardSecret) {
					t.Errorf("error quotes the SAS signature: %v", err)
				}
				_, err = src.Open(ctx, Entry{Path: "a.txt", ETag: `"0x1"`})
				if !errors.As(err, &re) {
					t.Fatalf("Open through a redirect: %v, want a RedirectError", err)
				}
				// A transport of the caller's own may follow redirects before
				// the policy sees the answer; ours never do.
				if _, own := opts.Transport.(followingTransport); !own && victim.Load() != 0 {
					t.Errorf("the redirect target received %d requests", victim.Load())
				}
				t.Logf("%v", err)
			})
		}
	}
}

// followingTransport follows redirects anywhere, as a careless custom
// transport would.
type followingTransport struct{}

func (followingTransport) Do(r *http.Request) (*http.Response, error) {
	return http.DefaultClient.Do(r)
}

func TestBlobFollowsRedirectOnTheSameEndpoint(t *testing.T) {
	var listed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/old/") {
			http.Redirect(w, r, "/devstoreaccount1/src?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
			return
		}
		listed.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, emptyListing)
	}))
	defer srv.Close()
	src, err := NewBlobFromSASURL(srv.URL+"/old/src?sv=2024-08-04&sp=rl&sig="+guardSecret, BlobOptions{Client: fastRetries(nil)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := src.List(context.Background(), "", 10)
	if err != nil || len(p.Entries) != 0 || listed.Load() != 1 {
		t.Fatalf("List through a same-host redirect: %+v, %v (listed %d)", p, err, listed.Load())
	}
}

func TestLocalRefusesLinksOutOfTheFolder(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "passwd")
	if err := os.WriteFile(secret, []byte("root:x:0:0"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	root := filepath.Join(base, "tree")
	mustMkdir(t, filepath.Join(root, "sub"))
	mustWrite(t, filepath.Join(root, "a.txt"), "a")
	mustWrite(t, filepath.Join(root, "sub", "b.txt"), "b")
	mustSymlink(t, secret, filepath.Join(root, "abs-out"))
	relOut, err := filepath.Rel(filepath.Join(root, "sub"), secret)
	if err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, relOut, filepath.Join(root, "sub", "rel-out"))
	mustSymlink(t, filepath.Join(root, "a.txt"), filepath.Join(root, "abs-in"))
	mustSymlink(t, "../a.txt", filepath.Join(root, "sub", "rel-in"))
	mustSymlink(t, outside, filepath.Join(root, "dir-out"))
	// The folder reached through a link to it is the link's target.
	mustSymlink(t, root, filepath.Join(base, "via-link"))
	if real, err := filepath.EvalSymlinks(filepath.Join(root, "sub", "rel-out")); err != nil || real != secret {
		t.Fatalf("sub/rel-out leads to %q (%v), want %q", real, err, secret)
	}

	src, err := NewLocal(filepath.Join(base, "via-link"))
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.EvalSymlinks(root); src.String() != want {
		t.Errorf("root %q, want the resolved %q", src.String(), want)
	}
	entries, _ := listAll(t, src, "", 100)
	got := map[string]string{}
	for _, e := range entries {
		rc, err := src.Open(context.Background(), e)
		if err != nil {
			got[e.Path] = "refused: " + err.Error()
			if !errors.Is(err, ErrOutsideRoot) {
				t.Errorf("%s: %v, want ErrOutsideRoot", e.Path, err)
			}
			continue
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		got[e.Path] = string(b)
	}
	for p, c := range got {
		if strings.Contains(c, "root:x") {
			t.Errorf("%s: read content from outside the folder", p)
		}
	}
	for p, want := range map[string]string{"a.txt": "a", "sub/b.txt": "b", "abs-in": "a", "sub/rel-in": "a"} {
		if got[p] != want {
			t.Errorf("%s: %q, want %q", p, got[p], want)
		}
	}
	if !strings.HasPrefix(got["abs-out"], "refused") || !strings.HasPrefix(got["sub/rel-out"], "refused") {
		t.Errorf("links out of the folder not refused: %v", got)
	}
	if _, ok := got["dir-out/passwd"]; ok {
		t.Error("walked a linked folder outside the source")
	}

	// Swapped after listing: a file becomes a link out, a folder becomes a
	// link out. Opening still refuses.
	if err := os.Remove(filepath.Join(root, "a.txt")); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, secret, filepath.Join(root, "a.txt"))
	if _, err := src.Open(context.Background(), Entry{Path: "a.txt"}); !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("open of a file swapped for a link out: %v, want ErrOutsideRoot", err)
	}
	if err := os.RemoveAll(filepath.Join(root, "sub")); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, outside, filepath.Join(root, "sub"))
	if _, err := src.Open(context.Background(), Entry{Path: "sub/passwd"}); !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("open through a folder swapped for a link out: %v, want ErrOutsideRoot", err)
	}
	for _, bad := range []string{"../" + filepath.Base(outside) + "/passwd", "/etc/passwd", "sub/../../x"} {
		if rc, err := src.Open(context.Background(), Entry{Path: bad}); err == nil {
			rc.Close()
			t.Errorf("opened %q", bad)
		}
	}
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p, c string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
