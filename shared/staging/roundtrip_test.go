package staging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/spepackage"
)

// memSource serves entries from memory, keyed by path and version id.
type memSource map[string][]byte

func (m memSource) List(context.Context, string, int) (source.Page, error) { return source.Page{}, nil }

func (m memSource) Open(_ context.Context, e source.Entry) (io.ReadCloser, error) {
	b, ok := m[e.Path+"@"+e.VersionID]
	if !ok {
		return nil, fmt.Errorf("no entry %s@%s", e.Path, e.VersionID)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// emuGraph is a dedicated emulator (own knobs, own container) on the
// stack's Azurite, with a minimal Graph caller.
type emuGraph struct {
	t   *testing.T
	srv *graphemu.Server
	cid string
}

func newEmuGraph(t *testing.T, k graphemu.Knobs) *emuGraph {
	t.Helper()
	srv, err := graphemu.New(graphemu.Config{
		Containers: []graphemu.Container{graphemu.DefaultContainer()},
		Storage:    graphemu.Storage{BlobEndpoint: local.BlobEndpoint, Account: stack.AzuriteAccount, Key: stack.AzuriteKey},
		DataDir:    t.TempDir(),
		Knobs:      k,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &emuGraph{t: t, srv: srv, cid: graphemu.DefaultContainer().ID}
}

func (g *emuGraph) call(method, u string, body, out any) []byte {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	if !strings.HasPrefix(u, "https://") {
		u = g.srv.URL() + "/v1.0" + u
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer test-token")
	res, err := g.srv.HTTPClient().Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		g.t.Fatalf("%s %s: %d %s", method, u, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			g.t.Fatalf("%s %s: %v", method, u, err)
		}
	}
	return b
}

// importItems stages items from src into freshly provisioned containers,
// submits the job and returns its events once it completed.
func (g *emuGraph) importItems(src memSource, items []Item) (*Result, []map[string]any) {
	g.t.Helper()
	var info struct{ DataContainerURI, MetadataContainerURI, EncryptionKey string }
	g.call("POST", "/storage/fileStorage/containers/"+g.cid+"/provisionMigrationContainers", nil, &info)
	key, err := spepackage.DecodeKey(info.EncryptionKey)
	if err != nil {
		g.t.Fatal(err)
	}
	batches, err := Plan(items, DefaultLimits)
	if err != nil || len(batches) != 1 {
		g.t.Fatalf("plan: %v, %d batches", err, len(batches))
	}
	st, err := New(Options{Source: src})
	if err != nil {
		g.t.Fatal(err)
	}
	def := graphemu.DefaultContainer()
	res, err := st.Stage(context.Background(), Request{
		Batch:      batches[0],
		Containers: Containers{DataURL: info.DataContainerURI, MetadataURL: info.MetadataContainerURI, Key: key},
		Target: spepackage.Target{SiteURL: def.SiteURL, WebID: uuid.MustParse(def.WebID), ListID: uuid.MustParse(def.ListID),
			RootFolderID: uuid.MustParse(def.RootFolderID), LibraryFolder: "Document Library"},
		Namespace:  uuid.New(),
		SourceType: spepackage.SourceAzureStorage,
		IDs:        spepackage.NewMemoryIntIDs(5000),
	})
	if err != nil {
		g.t.Fatal(err)
	}
	var job struct{ ID string }
	g.call("POST", "/storage/fileStorage/containers/"+g.cid+"/migrationJobs", map[string]any{"containerInfo": map[string]string{
		"dataContainerUri": info.DataContainerURI, "metadataContainerUri": info.MetadataContainerURI, "encryptionKey": info.EncryptionKey,
	}}, &job)
	next := "/storage/fileStorage/containers/" + g.cid + "/migrationJobs/" + job.ID + "/progressEvents"
	var all []map[string]any
	deadline := time.Now().Add(60 * time.Second)
	for {
		var page struct {
			Value    []map[string]any `json:"value"`
			NextLink string           `json:"@odata.nextLink"`
		}
		g.call("GET", next, nil, &page)
		all = append(all, page.Value...)
		for _, ev := range page.Value {
			if strings.HasSuffix(ev["@odata.type"].(string), "ProgressEvent") && ev["isCompleted"] == true {
				return res, all
			}
		}
		if page.NextLink != "" {
			next = page.NextLink
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("job %s did not complete: %v", job.ID, all)
		}
		if len(page.Value) == 0 {
			select { // poll interval, not synchronisation
			case <-time.After(20 * time.Millisecond):
			case <-g.t.Context().Done():
			}
		}
	}
}

// TestImportRoundTrip stages files with 1, 2, 3 and 25 versions, each
// version by a different author at a different time, and two names that a
// plain string join turns into another URL, imports them into an emulator
// that takes per-version metadata from the list item (so a package without
// list-item versions collapses the history) and reads everything back
// through the drive endpoints.
func TestImportRoundTrip(t *testing.T) {
	g := newEmuGraph(t, graphemu.Knobs{VersionMetadata: "listItem", RequireSnapshots: true})
	src := memSource{}
	base := time.Date(2020, 3, 1, 8, 0, 0, 0, time.UTC)
	editor := func(n, i int) string { return fmt.Sprintf("editor%d-%d@contoso.com", n, i) }
	var items []Item
	counts := []int{1, 2, 3, 25}
	for _, n := range counts {
		p := fmt.Sprintf("history/v%d.txt", n)
		it := Item{Path: p}
		for i := 0; i < n; i++ {
			vid := fmt.Sprint(i)
			src[p+"@"+vid] = []byte(fmt.Sprintf("%s version %d\n", p, i+1))
			it.Versions = append(it.Versions, source.Entry{Path: p, VersionID: vid, Size: int64(len(src[p+"@"+vid])),
				Created: base, Modified: base.Add(time.Duration(n*100+i) * time.Hour),
				Metadata: map[string]string{"author": editor(n, 0), "modifiedby": editor(n, i)}})
		}
		items = append(items, it)
	}
	names := []string{"with%20space.txt", "#hash.txt"}
	for _, name := range names {
		src[name+"@"] = []byte("content of " + name)
		items = append(items, Item{Path: name, Versions: []source.Entry{{Path: name, Size: int64(len(src[name+"@"])),
			Modified: base, Metadata: map[string]string{"author": "alice@contoso.com"}}}})
	}

	res, evs := g.importItems(src, items)
	if res.Failed != 0 {
		t.Fatalf("%d items failed to stage", res.Failed)
	}
	for _, ev := range evs {
		if strings.HasSuffix(ev["@odata.type"].(string), "ErrorEvent") {
			b, _ := json.Marshal(ev)
			t.Errorf("import reported: %s", b)
		}
	}

	drive := "/drives/" + g.cid + "/root:/"
	for _, n := range counts {
		t.Run(fmt.Sprintf("versions=%d", n), func(t *testing.T) {
			p := fmt.Sprintf("history/v%d.txt", n)
			var vs struct {
				Value []struct {
					ID             string    `json:"id"`
					Modified       time.Time `json:"lastModifiedDateTime"`
					LastModifiedBy struct {
						User struct{ Email string }
					} `json:"lastModifiedBy"`
				}
			}
			g.call("GET", drive+p+":/versions", nil, &vs)
			if len(vs.Value) != n {
				t.Fatalf("%d versions, want %d", len(vs.Value), n)
			}
			for k, v := range vs.Value {
				i := n - 1 - k // newest first
				if want := fmt.Sprintf("%d.0", i+1); v.ID != want {
					t.Errorf("version %d id %q, want %q", i, v.ID, want)
				}
				if want := base.Add(time.Duration(n*100+i) * time.Hour); !v.Modified.Equal(want) {
					t.Errorf("version %s modified %s, want %s", v.ID, v.Modified, want)
				}
				if got := v.LastModifiedBy.User.Email; got != editor(n, i) {
					t.Errorf("version %s modified by %q, want %q", v.ID, got, editor(n, i))
				}
				body := g.call("GET", drive+p+":/versions/"+v.ID+"/content", nil, nil)
				if want := src[fmt.Sprintf("%s@%d", p, i)]; !bytes.Equal(body, want) {
					t.Errorf("version %s content %q, want %q", v.ID, body, want)
				}
			}
		})
	}
	for _, name := range names {
		t.Run("name="+name, func(t *testing.T) {
			var it struct{ Name string }
			g.call("GET", drive+url.PathEscape(name)+":", nil, &it)
			if it.Name != name {
				t.Errorf("imported as %q", it.Name)
			}
			if body := g.call("GET", drive+url.PathEscape(name)+":/content", nil, nil); !bytes.Equal(body, src[name+"@"]) {
				t.Errorf("content %q", body)
			}
		})
	}
}
