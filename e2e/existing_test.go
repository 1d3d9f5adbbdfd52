package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/handlers/api"
	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/localapp"
	"github.com/spemigrate/spemigrate/infra/local/sample"
)

// existingPaths is what the "existing" container holds before any
// migration: the destination folder, a nested folder the source also has
// (in other case), files in both, and a file at a path the source also
// has. The emulator gives them list item ids from 1001 upwards.
var existingPaths = []string{
	"Target/",
	"Target/PROJECTS/2026/",
	"Target/PROJECTS/2026/kept.txt",
	"Target/Old/notes.txt",
	"Target/readme.txt",
}

// existingContainer is an SPE container already in use (issue 11).
func existingContainer() graphemu.Container {
	c := targetContainer("existing")
	c.Existing = existingPaths
	return c
}

// driveItem is the part of a driveItem the test compares.
type driveItem struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	ETag          string    `json:"eTag"`
	Folder        *struct{} `json:"folder"`
	SharepointIDs struct {
		ListItemID       string `json:"listItemId"`
		ListItemUniqueID string `json:"listItemUniqueId"`
	} `json:"sharepointIds"`
}

// guid is the GUID of the item's eTag ("{GUID},N").
func (d driveItem) guid() string {
	g, _, _ := strings.Cut(strings.Trim(d.ETag, `"`), ",")
	return strings.ToLower(strings.Trim(g, "{}"))
}

// driveGet reads a Graph drive endpoint of the emulator as a client would.
func driveGet(t *testing.T, ctx context.Context, driveID, rest string, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, app.GraphURL+"/v1.0/drives/"+url.PathEscape(driveID)+rest, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+localapp.GraphToken)
	resp, err := app.Graph.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", rest, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", rest, err)
	}
}

func itemAt(t *testing.T, ctx context.Context, driveID, p string) driveItem {
	t.Helper()
	var it driveItem
	driveGet(t, ctx, driveID, "/root:/"+escapeSegments(p)+":", &it)
	return it
}

// childrenOf lists a folder's children, every page.
func childrenOf(t *testing.T, ctx context.Context, driveID, p string) []driveItem {
	t.Helper()
	var out []driveItem
	rest := "/root:/" + escapeSegments(p) + ":/children"
	for rest != "" {
		var page struct {
			Value []driveItem `json:"value"`
			Next  string      `json:"@odata.nextLink"`
		}
		driveGet(t, ctx, driveID, rest, &page)
		out = append(out, page.Value...)
		rest = ""
		if page.Next != "" {
			_, after, _ := strings.Cut(page.Next, "/drives/"+url.PathEscape(driveID))
			rest = after
		}
	}
	return out
}

func escapeSegments(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// walkItems lists every item below p (files and folders) by library path.
func walkItems(t *testing.T, ctx context.Context, driveID, p string, into map[string]driveItem) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range childrenOf(t, ctx, driveID, p) {
		k := strings.ToLower(c.Name)
		if seen[k] {
			t.Errorf("%s holds %q twice", p, c.Name)
		}
		seen[k] = true
		cp := p + "/" + c.Name
		into[cp] = c
		if c.Folder != nil {
			walkItems(t, ctx, driveID, cp, into)
		}
	}
}

// TestIntoContainerInUse migrates into a container that already holds the
// destination folder, a nested folder of the source (in other case),
// items with ids above 1000 and files, then migrates again: both complete,
// the existing folders keep their ids, nothing is duplicated, the
// existing file at a source path is replaced and the others stay, and
// every new list item id is above the library's highest.
func TestIntoContainerInUse(t *testing.T) {
	needApp(t)
	ctx := testContext(t, 3*time.Minute)
	driveID := existingContainer().ID
	before := map[string]driveItem{}
	for _, p := range []string{"Target", "Target/PROJECTS", "Target/PROJECTS/2026", "Target/Old"} {
		before[p] = itemAt(t, ctx, driveID, p)
	}
	existing := map[string]driveItem{}
	walkItems(t, ctx, driveID, "Target", existing)
	maxExisting := 0
	for _, it := range existing {
		maxExisting = max(maxExisting, atoi(t, it.SharepointIDs.ListItemID))
	}
	if maxExisting <= 1000 {
		t.Fatalf("the seeded items' highest list item id is %d; the test needs ids above 1000", maxExisting)
	}

	files := append(sample.Small("", 40),
		sample.File{Path: "Projects/2026/new.txt", Size: 100, ContentType: "text/plain"},
		sample.File{Path: "readme.txt", Size: 200, ContentType: "text/plain"})
	blobs := seed(t, ctx, "e2e-existing", files)
	for run := 1; run <= 2; run++ {
		if run == 2 {
			// An incremental re-run with one more file.
			blobs = append(blobs, seed(t, ctx, "e2e-existing", []sample.File{{Path: "Projects/2026/later.txt", Size: 50, ContentType: "text/plain"}})...)
		}
		id := "e2e-existing-" + strconv.Itoa(run)
		m := startHTTP(t, ctx, migrationRequest(t, id, "e2e-existing", driveID, "Target"))
		m = waitMigration(t, ctx, m.ID)
		if run == 1 {
			verifyPresent(t, ctx, m, driveID, "Target", blobs)
		} else if m.Status != api.StatusCompleted || m.Counters.FilesMigrated != 1 || m.Counters.Unchanged != int64(countEligible(blobs)-1) {
			t.Fatalf("re-run %s: %s (%s), counters %+v: want completed with only the new file migrated", m.ID, m.Status, m.Reason, m.Counters)
		}
		checkInUse(t, ctx, driveID, blobs, before, maxExisting)
	}
	if later := itemAt(t, ctx, driveID, "Target/Projects/2026/later.txt"); atoi(t, later.SharepointIDs.ListItemID) <= maxExisting {
		t.Errorf("the re-run's file has list item id %s, not above %d", later.SharepointIDs.ListItemID, maxExisting)
	}
}

func checkInUse(t *testing.T, ctx context.Context, driveID string, blobs []sample.Blob, before map[string]driveItem, maxExisting int) {
	t.Helper()
	for p, was := range before {
		now := itemAt(t, ctx, driveID, p)
		if now.ID != was.ID || now.guid() != was.guid() || now.SharepointIDs.ListItemID != was.SharepointIDs.ListItemID {
			t.Errorf("%s: id %s guid %s list item %s, want it kept: %s %s %s", p, now.ID, now.guid(), now.SharepointIDs.ListItemID, was.ID, was.guid(), was.SharepointIDs.ListItemID)
		}
	}
	all := map[string]driveItem{}
	walkItems(t, ctx, driveID, "Target", all) // reports duplicates
	for _, p := range []string{"Target/PROJECTS/2026/kept.txt", "Target/Old/notes.txt"} {
		if _, ok := all[p]; !ok {
			t.Errorf("existing file %s is gone", p)
		}
	}
	ours := map[string]bool{}
	for _, b := range blobs {
		if !b.ExpectSkipped {
			ours[strings.ToLower(b.Path)] = true
		}
	}
	n := 0
	for p, it := range all {
		rel := strings.ToLower(strings.TrimPrefix(p, "Target/"))
		if it.Folder != nil || !ours[rel] {
			continue
		}
		n++
		if id := atoi(t, it.SharepointIDs.ListItemID); id <= maxExisting {
			t.Errorf("%s has list item id %d, not above the library's highest %d", p, id, maxExisting)
		}
	}
	if n == 0 {
		t.Error("found none of the migrated files by their source path")
	}
	if rm := all["Target/readme.txt"]; rm.guid() == before["Target"].guid() || atoi(t, rm.SharepointIDs.ListItemID) <= maxExisting {
		t.Errorf("Target/readme.txt was not replaced by the source's file: %+v", rm)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("list item id %q: %v", s, err)
	}
	return n
}
