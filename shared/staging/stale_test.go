package staging

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// holdFirstCommit passes every request through, except that the first
// Put Block List waits until release is closed.
type holdFirstCommit struct {
	once    sync.Once
	held    chan struct{} // closed when the first commit is waiting
	release chan struct{}
}

func (h *holdFirstCommit) Do(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.RawQuery, "comp=blocklist") && req.Method == http.MethodPut {
		first := false
		h.once.Do(func() { first = true })
		if first {
			close(h.held)
			<-h.release
		}
	}
	return http.DefaultClient.Do(req)
}

// TestUploadIgnoresStaleBlocks: an earlier attempt at the same blob (a
// crashed handler whose Put Block requests land late, or a duplicate
// delivery) must never leave its blocks in the committed blob, because each
// attempt encrypts under its own IV. Attempt A stages its blocks and stalls
// before committing; attempt B uploads the same blob in full; then A
// commits. The blob must decrypt, under the IV it carries, to the content
// of the attempt whose commit stands.
func TestUploadIgnoresStaleBlocks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, sasURL := newContainer(t, "stale", 24*time.Hour)
	hold := &holdFirstCommit{held: make(chan struct{}), release: make(chan struct{})}
	s, err := New(Options{
		Source:        brokenSource{},
		BlockSize:     64 << 10,
		ClientOptions: &container.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hold}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := container.NewClientWithNoCredential(sasURL, s.opts.ClientOptions)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	content := func() []byte {
		b := make([]byte, 300<<10) // five blocks
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	a, b := content(), content()

	type result struct {
		blob Blob
		err  error
	}
	doneA := make(chan result, 1)
	go func() {
		blob, err := s.upload(ctx, sc, "obj/1.bin", bytes.NewReader(a), testKey, nil)
		doneA <- result{blob, err}
	}()
	select {
	case <-hold.held:
	case r := <-doneA:
		t.Fatalf("attempt A finished without committing through the transport: %v", r.err)
	case <-ctx.Done():
		t.Fatal("attempt A never reached its commit")
	}
	blobB, err := s.upload(ctx, sc, "obj/1.bin", bytes.NewReader(b), testKey, nil)
	if err != nil {
		t.Fatalf("attempt B: %v", err)
	}
	close(hold.release)
	r := <-doneA
	// B's commit discarded A's uncommitted blocks, so A's commit may fail
	// (the step is then retried); what must never happen is a commit that
	// succeeds over blocks A did not write.
	want, wantBlob := a, r.blob
	if r.err != nil {
		t.Logf("attempt A failed as it should, having lost its blocks: %v", r.err)
		want, wantBlob = b, blobB
	}
	if got := fetch(t, c, wantBlob); !bytes.Equal(got, want) {
		t.Fatalf("committed blob decrypts to %d bytes that are not the content its IV belongs to", len(got))
	}
}
