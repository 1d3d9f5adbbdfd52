package staging

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/google/uuid"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/spepackage"
)

var local *stack.Stack

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s, err := stack.Start(ctx, stack.Options{
		Azurite: true,
		Graph:   true,
		// Strict: a content blob without a snapshot is an import error.
		GraphOptions: stack.GraphOptions{Knobs: graphemu.Knobs{RequireSnapshots: true}},
	})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start local stack:", err)
		os.Exit(1)
	}
	local = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

var containerSeq atomic.Int64

// newContainer creates a container and returns a shared-key client for the
// test's own inspection and a SAS URL like the one provisioning returns:
// read, write, create and add, but no list.
func newContainer(t *testing.T, kind string, expiry time.Duration) (*container.Client, string) {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%d", kind, time.Now().UnixNano()%1e9, containerSeq.Add(1))
	c, err := container.NewClientFromConnectionString(local.StorageConnectionString, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(context.Background(), nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
	cred, err := azblob.NewSharedKeyCredential(stack.AzuriteAccount, stack.AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	perms := sas.ContainerPermissions{Read: true, Write: true, Create: true, Add: true}
	qp, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		StartTime:     time.Now().Add(-5 * time.Minute).UTC(),
		ExpiryTime:    time.Now().Add(expiry).UTC(),
		Permissions:   perms.String(),
		ContainerName: name,
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	return c, c.URL() + "?" + qp.Encode()
}

var testTarget = spepackage.Target{
	SiteURL:       "https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04",
	WebID:         uuid.MustParse("b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d"),
	ListID:        uuid.MustParse("5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10"),
	RootFolderID:  uuid.MustParse("0e9d8c7b-6a5f-4e3d-2c1b-a09f8e7d6c5b"),
	LibraryFolder: "Document Library",
}

var testKey = bytes.Repeat([]byte{0x5a}, 32)

type env struct {
	dir              string
	src              *source.Local
	data, meta       *container.Client
	dataURL, metaURL string
	items            []Item
	content          map[string][]byte // by source path
	logs             *bytes.Buffer
	stager           *Stager
}

// newEnv writes a small source tree (nested folders, a unicode name, an
// empty file, a multi-block file, a file whose ciphertext is exactly one
// block, a file with two versions) plus an entry whose file is missing.
func newEnv(t *testing.T, expiry time.Duration) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), content: map[string][]byte{}, logs: &bytes.Buffer{}}
	rng := rand.New(rand.NewPCG(7, 8))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	files := map[string][]byte{
		"docs/readme.txt":           []byte("hello, SharePoint\n"),
		"docs/deep/Ünïcødé ñame.md": []byte("# unicode\n"),
		"empty.bin":                 nil,
		"big/large.bin":             random(1<<20 + 123),
		"exact.bin":                 random(256<<10 - 16),
		"v1/report.docx":            random(3000),
		"v2/report.docx":            random(4000),
	}
	for p, b := range files {
		full := filepath.Join(e.dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
		e.content[p] = b
	}
	var err error
	if e.src, err = source.NewLocal(e.dir); err != nil {
		t.Fatal(err)
	}
	page, err := e.src.List(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var versions []source.Entry
	for _, en := range page.Entries {
		en.Metadata = map[string]string{"author": "alice@contoso.com"}
		switch {
		case strings.HasSuffix(en.Path, "report.docx"):
			versions = append(versions, en)
		default:
			e.items = append(e.items, Item{Path: en.Path, Versions: []source.Entry{en}})
		}
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i].Path < versions[j].Path })
	e.items = append(e.items,
		Item{Path: "reports/report.docx", Versions: versions},
		Item{Path: "gone.txt", Versions: []source.Entry{{Path: "gone.txt", Size: 5, Modified: time.Now().UTC()}}},
	)
	e.data, e.dataURL = newContainer(t, "data", expiry)
	e.meta, e.metaURL = newContainer(t, "meta", expiry)
	e.stager, err = New(Options{
		Source:    e.src,
		BlockSize: 256 << 10,
		Buffers:   4,
		Logger:    slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) request(ids spepackage.IntIDs) Request {
	batches, err := Plan(e.items, DefaultLimits)
	if err != nil || len(batches) != 1 {
		panic(fmt.Sprint("plan: ", err, len(batches)))
	}
	return Request{
		Batch:      batches[0],
		Containers: Containers{DataURL: e.dataURL, MetadataURL: e.metaURL, Key: testKey},
		Target:     testTarget,
		Namespace:  uuid.MustParse("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
		SourceType: spepackage.SourceFileShare,
		IDs:        ids,
	}
}

// fetch downloads a blob with the test's shared key and checks what the
// service relies on: IV metadata, Content-MD5 of the stored bytes, a
// snapshot. It returns the plaintext.
func fetch(t *testing.T, c *container.Client, b Blob) []byte {
	t.Helper()
	ctx := context.Background()
	bc := c.NewBlobClient(b.Name)
	resp, err := bc.DownloadStream(ctx, nil)
	if err != nil {
		t.Fatalf("download %s: %v", b.Name, err)
	}
	stored, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var iv string
	for k, v := range resp.Metadata {
		if strings.EqualFold(k, spepackage.IVMetadata) && v != nil {
			iv = *v
		}
	}
	if iv == "" || iv != b.IV {
		t.Errorf("%s: IV metadata %q, result says %q", b.Name, iv, b.IV)
	}
	sum := md5.Sum(stored)
	if !bytes.Equal(resp.ContentMD5, sum[:]) || !bytes.Equal(b.MD5, sum[:]) {
		t.Errorf("%s: Content-MD5 %x, result %x, actual %x", b.Name, resp.ContentMD5, b.MD5, sum)
	}
	if int64(len(stored)) != b.StoredSize || b.StoredSize != spepackage.EncryptedSize(b.PlainSize) {
		t.Errorf("%s: stored %d bytes, result says %d (plain %d)", b.Name, len(stored), b.StoredSize, b.PlainSize)
	}
	if b.Snapshot == "" {
		t.Errorf("%s: no snapshot", b.Name)
	} else {
		sc, err := bc.WithSnapshot(b.Snapshot)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sc.GetProperties(ctx, nil); err != nil {
			t.Errorf("%s: snapshot %s: %v", b.Name, b.Snapshot, err)
		}
	}
	ivb, err := base64.StdEncoding.DecodeString(iv)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := spepackage.Decrypt(stored, testKey, ivb)
	if err != nil {
		t.Fatalf("%s: %v", b.Name, err)
	}
	return plain
}

func listNames(t *testing.T, c *container.Client) []string {
	t.Helper()
	var names []string
	pager := c.NewListBlobsFlatPager(nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Segment.BlobItems {
			names = append(names, *it.Name)
		}
	}
	slices.Sort(names)
	return names
}

type mnode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []mnode    `xml:",any"`
}

func (n mnode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// fileValues walks a manifest and returns FileValue -> (Url, FileSize).
func fileValues(n mnode, out map[string][2]string) {
	if n.XMLName.Local == "File" {
		out[n.attr("FileValue")] = [2]string{n.attr("Url"), n.attr("FileSize")}
	}
	for _, c := range n.Children {
		fileValues(c, out)
	}
}

func TestStageBatch(t *testing.T) {
	e := newEnv(t, 48*time.Hour)
	ctx := context.Background()
	ids := spepackage.NewMemoryIntIDs(100)
	res, err := e.stager.Stage(ctx, e.request(ids))
	if err != nil {
		t.Fatal(err)
	}
	if res.Staged != 6 || res.Failed != 1 {
		t.Fatalf("staged %d, failed %d; want 6 and 1", res.Staged, res.Failed)
	}

	var dataBlobs []string
	for _, ir := range res.Items {
		if ir.Path == "gone.txt" {
			if ir.Error == "" || !strings.Contains(ir.Error, "gone.txt") || len(ir.Blobs) != 0 || ir.IntID != 0 {
				t.Errorf("missing source: %+v", ir)
			}
			continue
		}
		if ir.Error != "" {
			t.Fatalf("%s: %s", ir.Path, ir.Error)
		}
		if ir.IntID < 100 || ir.Author != spepackage.AuthorMapped {
			t.Errorf("%s: int id %d, author %s", ir.Path, ir.IntID, ir.Author)
		}
		var srcPaths []string
		if ir.Path == "reports/report.docx" {
			srcPaths = []string{"v1/report.docx", "v2/report.docx"}
		} else {
			srcPaths = []string{ir.Path}
		}
		if len(ir.Blobs) != len(srcPaths) {
			t.Fatalf("%s: %d blobs, want %d", ir.Path, len(ir.Blobs), len(srcPaths))
		}
		for v, b := range ir.Blobs {
			if b.Name != BlobName(e.request(ids).Namespace, ir.LibraryPath, v) {
				t.Errorf("%s: blob name %s", ir.Path, b.Name)
			}
			if got := fetch(t, e.data, b); !bytes.Equal(got, e.content[srcPaths[v]]) {
				t.Errorf("%s v%d: decrypted content differs (%d bytes, want %d)", ir.Path, v, len(got), len(e.content[srcPaths[v]]))
			}
			dataBlobs = append(dataBlobs, b.Name)
		}
	}
	slices.Sort(dataBlobs)
	if got := listNames(t, e.data); !slices.Equal(got, dataBlobs) {
		t.Errorf("data container holds %v, want %v", got, dataBlobs)
	}

	// The manifests: all eight, encrypted, at the metadata root; the
	// manifest names exactly the uploaded blobs and leaves out the failure.
	want := slices.Clone(spepackage.Files)
	slices.Sort(want)
	if got := listNames(t, e.meta); !slices.Equal(got, want) {
		t.Fatalf("metadata container holds %v, want %v", got, want)
	}
	var manifest []byte
	for _, b := range res.Manifests {
		plain := fetch(t, e.meta, b)
		if b.Name == spepackage.ManifestFile {
			manifest = plain
		}
	}
	var root mnode
	if err := xml.Unmarshal(manifest, &root); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	fv := map[string][2]string{}
	fileValues(root, fv)
	if len(fv) != len(dataBlobs) {
		t.Errorf("manifest references %d blobs, %d uploaded", len(fv), len(dataBlobs))
	}
	for _, ir := range res.Items {
		for _, b := range ir.Blobs {
			got, ok := fv[b.Name]
			if !ok || got[0] != "Document Library/"+ir.LibraryPath || got[1] != fmt.Sprint(b.PlainSize) {
				t.Errorf("manifest entry for %s: %v", b.Name, got)
			}
		}
	}
	if bytes.Contains(manifest, []byte("gone.txt")) {
		t.Error("the failed item is in the manifest")
	}
	if s := e.logs.String(); strings.Contains(s, "sig=") || strings.Contains(s, "?se=") {
		t.Errorf("logs contain a SAS: %s", s)
	}

	// Staging the same batch again writes the same blob names and ids, and
	// the package still decrypts (new IVs, replaced blobs).
	res2, err := e.stager.Stage(ctx, e.request(ids))
	if err != nil {
		t.Fatal(err)
	}
	for i := range res.Items {
		a, b := res.Items[i], res2.Items[i]
		if a.IntID != b.IntID || a.ID != b.ID || len(a.Blobs) != len(b.Blobs) {
			t.Fatalf("restage changed %s: %+v vs %+v", a.Path, a, b)
		}
		for v := range a.Blobs {
			if a.Blobs[v].Name != b.Blobs[v].Name {
				t.Errorf("restage renamed %s", a.Blobs[v].Name)
			}
			fetch(t, e.data, b.Blobs[v])
		}
	}
	if got := listNames(t, e.data); !slices.Equal(got, dataBlobs) {
		t.Errorf("after restage the data container holds %v, want %v", got, dataBlobs)
	}
	for _, b := range res2.Manifests {
		fetch(t, e.meta, b)
	}
}

func TestStageRefusesExpiringSAS(t *testing.T) {
	e := newEnv(t, 2*time.Hour)
	_, err := e.stager.Stage(context.Background(), e.request(spepackage.NewMemoryIntIDs(1)))
	if !errors.Is(err, ErrSASExpiring) {
		t.Fatalf("err = %v, want ErrSASExpiring", err)
	}
	if strings.Contains(err.Error(), "sig=") || strings.Contains(err.Error(), "?") {
		t.Errorf("error leaks the SAS: %v", err)
	}
	if got := listNames(t, e.data); len(got) != 0 {
		t.Errorf("blobs were uploaded before the refusal: %v", got)
	}
}

func TestStageRejectedSASIsRedacted(t *testing.T) {
	e := newEnv(t, 48*time.Hour)
	req := e.request(spepackage.NewMemoryIntIDs(1))
	u, err := url.Parse(req.Containers.DataURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("sig", base64.StdEncoding.EncodeToString(make([]byte, 32)))
	u.RawQuery = q.Encode()
	req.Containers.DataURL = u.String()
	_, err = e.stager.Stage(context.Background(), req)
	if !errors.Is(err, ErrSASRejected) {
		t.Fatalf("err = %v, want ErrSASRejected", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "sig") || strings.Contains(msg, "?") || strings.Contains(msg, "se=") {
		t.Errorf("error leaks the SAS: %v", msg)
	}
	if s := e.logs.String(); strings.Contains(s, "sig=") {
		t.Errorf("logs leak the SAS: %s", s)
	}
}

func TestStageRejectsBadRequest(t *testing.T) {
	e := newEnv(t, 48*time.Hour)
	good := e.request(spepackage.NewMemoryIntIDs(1))
	cases := map[string]func(*Request){
		"short key":      func(r *Request) { r.Containers.Key = testKey[:16] },
		"same container": func(r *Request) { r.Containers.MetadataURL = r.Containers.DataURL },
		"no namespace":   func(r *Request) { r.Namespace = uuid.Nil },
		"no ids":         func(r *Request) { r.IDs = nil },
		"bad target":     func(r *Request) { r.Target.ListID = uuid.Nil },
		"no se":          func(r *Request) { r.Containers.DataURL = StripQuery(r.Containers.DataURL) + "?sp=rw&sig=x" },
	}
	for name, mutate := range cases {
		r := good
		mutate(&r)
		if _, err := e.stager.Stage(context.Background(), r); err == nil {
			t.Errorf("%s: Stage succeeded", name)
		} else if strings.Contains(err.Error(), "sig=") {
			t.Errorf("%s: error leaks the SAS: %v", name, err)
		}
	}
	if got := listNames(t, e.data); len(got) != 0 {
		t.Errorf("blobs were uploaded for invalid requests: %v", got)
	}
}

// brokenSource fails reading one path part-way, as a blob deleted or
// truncated during the migration would.
type brokenSource struct {
	source.Source
	path string
}

func (b brokenSource) Open(ctx context.Context, e source.Entry) (io.ReadCloser, error) {
	rc, err := b.Source.Open(ctx, e)
	if err != nil || e.Path != b.path {
		return rc, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, 300<<10), iotest.ErrReader(errors.New("connection reset"))), rc}, nil
}

func TestStageItemFailsMidStream(t *testing.T) {
	e := newEnv(t, 48*time.Hour)
	st, err := New(Options{Source: brokenSource{e.src, "big/large.bin"}, BlockSize: 256 << 10, Buffers: 2, FileConcurrency: 2, BlockConcurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Stage(context.Background(), e.request(spepackage.NewMemoryIntIDs(1)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Staged != 5 || res.Failed != 2 {
		t.Fatalf("staged %d, failed %d; want 5 and 2 (large.bin and gone.txt)", res.Staged, res.Failed)
	}
	for _, ir := range res.Items {
		if ir.Path == "big/large.bin" && !strings.Contains(ir.Error, "connection reset") {
			t.Errorf("large.bin: %q", ir.Error)
		}
	}
	var manifest []byte
	for _, b := range res.Manifests {
		if b.Name == spepackage.ManifestFile {
			manifest = fetch(t, e.meta, b)
		}
	}
	if bytes.Contains(manifest, []byte("large.bin")) || !bytes.Contains(manifest, []byte("exact.bin")) {
		t.Error("the manifest must list exactly the staged items")
	}
}
