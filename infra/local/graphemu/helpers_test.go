package graphemu_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/stack"
)

var st *stack.Stack

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	s, err := stack.Start(ctx, stack.Options{Azurite: true, Graph: true,
		// These tests pin the documented defaults, knob by knob.
		GraphOptions: stack.GraphOptions{Lenient: true}})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack:", err)
		os.Exit(1)
	}
	st = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

// clock is a settable clock for SAS expiry and retention tests.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// emu is a started emulator plus a Graph-shaped client for it.
type emu struct {
	t    testing.TB
	srv  *graphemu.Server
	http *http.Client
	cid  string
	clk  *clock
}

func newEmu(t testing.TB, mutate func(*graphemu.Config)) *emu {
	t.Helper()
	clk := &clock{}
	cfg := graphemu.Config{
		Containers: []graphemu.Container{graphemu.DefaultContainer(), otherContainer()},
		Storage:    graphemu.Storage{BlobEndpoint: st.BlobEndpoint, Account: stack.AzuriteAccount, Key: stack.AzuriteKey},
		DataDir:    t.TempDir(),
		Now:        clk.now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := graphemu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &emu{t: t, srv: srv, http: srv.HTTPClient(), cid: graphemu.DefaultContainer().ID, clk: clk}
}

func otherContainer() graphemu.Container {
	return graphemu.Container{ID: "b!other-container", WebID: "11111111-1111-1111-1111-111111111111",
		ListID: "22222222-2222-2222-2222-222222222222", RootFolderID: "33333333-3333-3333-3333-333333333333",
		SiteURL: "https://contoso.sharepoint.com/contentstorage/CSP_44444444-4444-4444-4444-444444444444"}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.status, err, r.body)
	}
	return m
}

// errCodes returns the top-level and inner error codes of a Graph error.
func (r resp) errCodes(t testing.TB) (string, string) {
	e, _ := r.json(t)["error"].(map[string]any)
	inner, _ := e["innerError"].(map[string]any)
	code, _ := e["code"].(string)
	ic, _ := inner["code"].(string)
	return code, ic
}

func (e *emu) do(method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	u := path
	if !strings.HasPrefix(path, "https://") {
		u = e.srv.URL() + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer test-token")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (e *emu) containerPath(cid string) string { return "/v1.0/storage/fileStorage/containers/" + cid }

type containerInfo struct {
	DataContainerURI     string `json:"dataContainerUri"`
	MetadataContainerURI string `json:"metadataContainerUri"`
	EncryptionKey        string `json:"encryptionKey"`
}

func (e *emu) provision() containerInfo {
	e.t.Helper()
	r := e.do("POST", e.containerPath(e.cid)+"/provisionMigrationContainers", nil)
	if r.status != 200 {
		e.t.Fatalf("provision: %d %s", r.status, r.body)
	}
	var ci containerInfo
	_ = json.Unmarshal(r.body, &ci)
	return ci
}

func (e *emu) createJob(ci containerInfo) resp {
	e.t.Helper()
	return e.do("POST", e.containerPath(e.cid)+"/migrationJobs", map[string]any{"containerInfo": ci})
}

func (e *emu) mustCreateJob(ci containerInfo) string {
	e.t.Helper()
	r := e.createJob(ci)
	if r.status != 201 {
		e.t.Fatalf("create job: %d %s", r.status, r.body)
	}
	return r.json(e.t)["id"].(string)
}

// events drains a job's events through @odata.nextLink until it sees the
// completion event (or deadline).
func (e *emu) waitDone(jobID string) []map[string]any {
	e.t.Helper()
	var all []map[string]any
	next := e.containerPath(e.cid) + "/migrationJobs/" + jobID + "/progressEvents"
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := e.do("GET", next, nil)
		if r.status != 200 {
			e.t.Fatalf("progressEvents: %d %s", r.status, r.body)
		}
		m := r.json(e.t)
		vals, _ := m["value"].([]any)
		for _, v := range vals {
			all = append(all, v.(map[string]any))
		}
		if n, _ := m["@odata.nextLink"].(string); n != "" {
			next = n
		}
		if len(all) > 0 && isFinal(all[len(all)-1]) {
			return all
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %s did not complete; events: %v", jobID, all)
		}
		if len(vals) == 0 {
			time.Sleep(20 * time.Millisecond) // poll interval, not synchronisation
		}
	}
}

func isFinal(ev map[string]any) bool {
	return strings.HasSuffix(ev["@odata.type"].(string), "ProgressEvent") && ev["isCompleted"] == true
}

func ofType(evs []map[string]any, suffix string) []map[string]any {
	var out []map[string]any
	for _, ev := range evs {
		if strings.HasSuffix(ev["@odata.type"].(string), "."+suffix) {
			out = append(out, ev)
		}
	}
	return out
}

// pkg is a package under construction: plaintext blobs by name.
type pkg struct {
	meta map[string][]byte
	data map[string][]byte
	// per-blob upload tweaks
	noIV       map[string]bool
	ivOverride map[string]string
	noSnapshot map[string]bool
	key        []byte // override the encryption key
}

func newPkg() *pkg {
	return &pkg{meta: map[string][]byte{}, data: map[string][]byte{}, noIV: map[string]bool{},
		ivOverride: map[string]string{}, noSnapshot: map[string]bool{}}
}

func encryptCBC(key, plain []byte) (ct, iv []byte) {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	iv = make([]byte, 16)
	_, _ = rand.Read(iv)
	pad := 16 - len(plain)%16
	p := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	ct = make([]byte, len(p))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, p)
	return ct, iv
}

func decryptCBC(t testing.TB, key, iv, ct []byte) []byte {
	block, _ := aes.NewCipher(key)
	p := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(p, ct)
	pad := int(p[len(p)-1])
	if pad < 1 || pad > 16 {
		t.Fatalf("bad padding")
	}
	return p[:len(p)-pad]
}

// upload encrypts and uploads every blob through the SAS URLs, as a client
// would (no List permission needed), then snapshots it.
func (p *pkg) upload(t testing.TB, ci containerInfo) {
	t.Helper()
	key, _ := base64.StdEncoding.DecodeString(ci.EncryptionKey)
	if p.key != nil {
		key = p.key
	}
	ctx := context.Background()
	for _, side := range []struct {
		uri   string
		blobs map[string][]byte
	}{{ci.DataContainerURI, p.data}, {ci.MetadataContainerURI, p.meta}} {
		cc, err := container.NewClientWithNoCredential(side.uri, nil)
		if err != nil {
			t.Fatal(err)
		}
		for name, plain := range side.blobs {
			ct, iv := encryptCBC(key, plain)
			md := map[string]*string{}
			ivs := base64.StdEncoding.EncodeToString(iv)
			if v, ok := p.ivOverride[name]; ok {
				ivs = v
			}
			if !p.noIV[name] {
				md["IV"] = &ivs
			}
			bb := cc.NewBlockBlobClient(name)
			if _, err := bb.UploadBuffer(ctx, ct, &blockblob.UploadBufferOptions{Metadata: md}); err != nil {
				t.Fatalf("upload %s: %v", name, err)
			}
			if !p.noSnapshot[name] && side.blobs[name] != nil && side.uri == ci.DataContainerURI {
				if _, err := bb.CreateSnapshot(ctx, nil); err != nil {
					t.Fatalf("snapshot %s: %v", name, err)
				}
			}
		}
	}
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
