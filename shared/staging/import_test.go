package staging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spemigrate/spemigrate/shared/spepackage"
)

// graphCall is a minimal Graph request against the emulator; the production
// Graph client is another package's and is tested there.
func graphCall(t *testing.T, method, url string, body any, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	if !strings.HasPrefix(url, "https://") {
		url = local.GraphURL + "/v1.0" + url
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer test-token")
	req.Header.Set("Content-Type", "application/json")
	res, err := local.Graph.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, url, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
}

// TestStagedPackageImports stages a batch into containers provisioned by
// the Graph SPE emulator, submits it, and checks that the emulator's
// validating importer accepts the package without an error or warning and
// that the imported tree has the content, versions, times and authors of
// the source.
func TestStagedPackageImports(t *testing.T) {
	e := newEnv(t, 48*time.Hour)
	cid := local.SPEContainerID
	var info struct{ DataContainerURI, MetadataContainerURI, EncryptionKey string }
	graphCall(t, "POST", "/storage/fileStorage/containers/"+cid+"/provisionMigrationContainers", nil, &info)
	key, err := spepackage.DecodeKey(info.EncryptionKey)
	if err != nil {
		t.Fatal(err)
	}
	req := e.request(spepackage.NewMemoryIntIDs(5000))
	req.Containers = Containers{DataURL: info.DataContainerURI, MetadataURL: info.MetadataContainerURI, Key: key}
	req.Target = spepackage.Target{
		SiteURL:       local.SPESiteURL,
		WebID:         uuid.MustParse(local.SPEWebID),
		ListID:        uuid.MustParse(local.SPEListID),
		RootFolderID:  uuid.MustParse(local.SPERootFolderID),
		LibraryFolder: local.SPELibraryFolder,
	}
	req.Namespace = uuid.New() // a fresh target namespace per run: the emulator container is shared
	res, err := e.stager.Stage(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}

	var job struct{ ID string }
	graphCall(t, "POST", "/storage/fileStorage/containers/"+cid+"/migrationJobs", map[string]any{
		"containerInfo": map[string]string{
			"dataContainerUri":     info.DataContainerURI,
			"metadataContainerUri": info.MetadataContainerURI,
			"encryptionKey":        info.EncryptionKey,
		},
	}, &job)

	// Drain progress events until the job says it is complete.
	next := "/storage/fileStorage/containers/" + cid + "/migrationJobs/" + job.ID + "/progressEvents"
	var problems []string
	deadline := time.Now().Add(60 * time.Second)
	for done := false; !done; {
		if time.Now().After(deadline) {
			t.Fatal("the job did not complete within 60 s")
		}
		var page struct {
			Value    []map[string]any `json:"value"`
			NextLink string           `json:"@odata.nextLink"`
		}
		graphCall(t, "GET", next, nil, &page)
		for _, ev := range page.Value {
			typ, _ := ev["@odata.type"].(string)
			if strings.HasSuffix(typ, "ProgressEvent") && ev["isCompleted"] == true {
				done = true
			}
			if strings.Contains(typ, "Error") || strings.Contains(typ, "Warning") {
				b, _ := json.Marshal(ev)
				problems = append(problems, string(b))
			}
		}
		if page.NextLink != "" {
			next = page.NextLink
		}
		if !done && len(page.Value) == 0 {
			// Nothing new yet: ask again shortly (this is a poll with a
			// deadline, not a wait for something to have happened).
			select {
			case <-time.After(50 * time.Millisecond):
			case <-t.Context().Done():
			}
		}
	}
	for _, p := range problems {
		if !strings.Contains(p, "gone.txt") {
			t.Errorf("import reported: %s", p)
		}
	}

	var tree struct {
		Items []struct {
			ID, Name, Path string
			Folder         bool
			IntID          int
			Created        time.Time `json:"createdDateTime"`
			Modified       time.Time `json:"lastModifiedDateTime"`
			CreatedBy      struct{ Login string }
			Versions       []struct {
				Label string
				Size  int64
			}
		}
	}
	graphCall(t, "GET", local.GraphURL+"/_emulator/containers/"+cid+"/tree", nil, &tree)
	t.Logf("tree: %d items; events with problems: %q", len(tree.Items), problems)
	byID := map[string]int{}
	for i, it := range tree.Items {
		byID[strings.ToLower(it.ID)] = i
	}
	for i, ir := range res.Items {
		if ir.Error != "" {
			continue
		}
		k, ok := byID[ir.ID.String()]
		if !ok {
			t.Errorf("%s (%s) was not imported", ir.Path, ir.ID)
			continue
		}
		got := tree.Items[k]
		src := req.Batch.Items[i].Versions
		cur := src[len(src)-1]
		if !strings.HasSuffix(got.Path, ir.LibraryPath) || got.IntID != ir.IntID {
			t.Errorf("%s: imported as %q int id %d", ir.Path, got.Path, got.IntID)
		}
		if !got.Modified.Equal(cur.Modified.Truncate(time.Second)) {
			t.Errorf("%s: modified %s, source %s", ir.Path, got.Modified, cur.Modified)
		}
		if !strings.Contains(got.CreatedBy.Login, "alice@contoso.com") {
			t.Errorf("%s: created by %q", ir.Path, got.CreatedBy.Login)
		}
		if len(got.Versions) != len(src) {
			t.Errorf("%s: %d versions, want %d", ir.Path, len(got.Versions), len(src))
		}
		for v := range src {
			url := fmt.Sprintf("%s/v1.0/drives/%s/items/%s/content", local.GraphURL, cid, ir.ID)
			if v < len(src)-1 && v < len(got.Versions) {
				url = fmt.Sprintf("%s/v1.0/drives/%s/items/%s/versions/%s/content", local.GraphURL, cid, ir.ID, got.Versions[v].Label)
			}
			r, err := http.NewRequest("GET", url, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Authorization", "Bearer test-token")
			resp, err := local.Graph.HTTPClient().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := e.content[src[v].Path]
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Errorf("%s version %d: HTTP %d, %d bytes, want %d", ir.Path, v, resp.StatusCode, len(body), len(want))
			}
		}
	}
}
