package pipeline_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/shared/wiring"

	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Several migrations into one container: list-item ids are allocated per
// library, so a second source lands beside the first and a re-run of a
// source replaces what it imported before (same GUIDs, same list-item ids)
// instead of colliding or duplicating.

// libItem is a driveItem's identity as the drive endpoints show it.
type libItem struct {
	Folder     bool
	GUID       string // from the eTag
	ETagN      int    // the eTag's version number
	ListItemID string
	SHA        string
}

var etagRe = regexp.MustCompile(`^"\{([0-9A-Fa-f-]{36})\},(\d+)"$`)

// libraryItems walks the container's library and returns every item by
// path with its identity.
func (e *itEnv) libraryItems(containerID string) map[string]libItem {
	e.t.Helper()
	out := map[string]libItem{}
	type child struct {
		ID            string    `json:"id"`
		Name          string    `json:"name"`
		ETag          string    `json:"eTag"`
		Folder        *struct{} `json:"folder"`
		SharepointIDs struct {
			ListItemID       string `json:"listItemId"`
			ListItemUniqueID string `json:"listItemUniqueId"`
		} `json:"sharepointIds"`
	}
	var walk func(itemID, prefix string)
	walk = func(itemID, prefix string) {
		for _, c := range driveChildren[child](e, containerID, itemID) {
			p := prefix + c.Name
			m := etagRe.FindStringSubmatch(c.ETag)
			if m == nil {
				e.t.Fatalf("%q: eTag %q is not {GUID},n", p, c.ETag)
			}
			n, _ := strconv.Atoi(m[2])
			li := libItem{Folder: c.Folder != nil, GUID: m[1], ETagN: n, ListItemID: c.SharepointIDs.ListItemID}
			if _, dup := out[p]; dup {
				e.t.Errorf("%q listed twice", p)
			}
			if li.Folder {
				out[p] = li
				walk(c.ID, p+"/")
				continue
			}
			sum := sha256.Sum256(e.graphGet(fmt.Sprintf("drives/%s/items/%s/content", containerID, c.ID), nil))
			li.SHA = hex.EncodeToString(sum[:])
			out[p] = li
		}
	}
	var root struct {
		ID string `json:"id"`
	}
	e.graphGet(fmt.Sprintf("drives/%s/root", containerID), &root)
	walk(root.ID, "")
	return imported(out)
}

// checkPresent checks that every file a migration imported is in the
// library with its content.
func (e *itEnv) checkPresent(migID string, lib map[string]libItem, specs map[string]fileSpec) {
	e.t.Helper()
	rs := e.results(migID)
	for p, sp := range specs {
		r, ok := rs[p]
		if !ok {
			e.t.Errorf("%s: %q has no result", migID, p)
			continue
		}
		if r.Outcome == state.OutcomeSkipped && r.TargetPath == "" {
			continue // the naming policy skipped it
		}
		got, ok := lib[r.TargetPath]
		if !ok || got.Folder {
			e.t.Errorf("%s: %q not in the library at %q (outcome %s, %s)", migID, p, r.TargetPath, r.Outcome, r.Reason)
			continue
		}
		if got.SHA != sp.sha {
			e.t.Errorf("%s: %q has other content than the source", migID, r.TargetPath)
		}
	}
}

// writeSource writes files (path → content) under dir with one mtime each.
func writeSource(t *testing.T, dir string, files map[string]string, mtime time.Time) map[string]fileSpec {
	t.Helper()
	specs := map[string]fileSpec{}
	for p, body := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(body))
		specs[p] = fileSpec{size: int64(len(body)), sha: hex.EncodeToString(sum[:]), mtime: mtime}
	}
	return specs
}

func fullRequest(dir, containerID string) request.Request {
	r := localRequest(dir, containerID, request.Batch{MaxItems: 20, MaxBytes: 100 << 20})
	return r
}

func (e *itEnv) run(migID string, req request.Request) *state.Migration {
	e.t.Helper()
	e.start(migID, req)
	m := e.drive(migID, runMode{}, 2*time.Minute)
	if m.Status != state.MigrationCompleted {
		e.t.Fatalf("migration %s: %s (%s), counters %+v; logs:\n%s", migID, m.Status, m.Reason, m.Counters, tail(e.logs.String(), 3000))
	}
	return m
}

func TestMigrationsShareOneContainer(t *testing.T) {
	e := newITEnv(t, itOptions{})
	cid := itContainer(t, 12)
	dirA, dirB := t.TempDir(), t.TempDir()
	specsA := genSource(t, dirA, 40, false)
	// Source B shares folders with A (dept-0/team-0/…) and has files of its own.
	filesB := map[string]string{}
	for i := range 12 {
		filesB[fmt.Sprintf("dept-%d/team-0/from-b-%02d.txt", i%3, i)] = fmt.Sprintf("b %d\n", i)
	}
	filesB["b-only/nested/deeper/one.txt"] = "one"
	specsB := writeSource(t, dirB, filesB, itEpoch.Add(-time.Hour))
	noIncr := func(r request.Request) request.Request {
		f := false
		r.Options.Incremental = &f
		return r
	}

	e.run("share-a-1", noIncr(fullRequest(dirA, cid)))
	first := e.libraryItems(cid)
	e.checkPresent("share-a-1", first, specsA)

	mB := e.run("share-b-1", noIncr(fullRequest(dirB, cid)))
	if mB.Counters.FilesMigrated != int64(len(specsB)) || mB.Counters.FilesFailed != 0 {
		t.Errorf("second source: %d migrated, %d failed; want %d, 0", mB.Counters.FilesMigrated, mB.Counters.FilesFailed, len(specsB))
	}
	both := e.libraryItems(cid)
	e.checkPresent("share-a-1", both, specsA)
	e.checkPresent("share-b-1", both, specsB)
	for p, a := range first {
		if b := both[p]; b.GUID != a.GUID || b.ListItemID != a.ListItemID || (!a.Folder && b.ETagN != a.ETagN) {
			t.Errorf("%q changed when another source was imported: %+v -> %+v", p, a, b)
		}
	}

	// The same source again: everything replaced in place.
	e.run("share-a-2", noIncr(fullRequest(dirA, cid)))
	again := e.libraryItems(cid)
	if len(again) != len(both) {
		t.Errorf("the re-run left %d items in the library, %d before: duplicates", len(again), len(both))
	}
	e.checkPresent("share-a-2", again, specsA)
	e.checkPresent("share-b-1", again, specsB)
	rs1, rs2 := e.results("share-a-1"), e.results("share-a-2")
	reimported := map[string]bool{}
	for p, r1 := range rs1 {
		r2 := rs2[p]
		if r1.Outcome != r2.Outcome || r1.TargetPath != r2.TargetPath || r1.Reason != r2.Reason {
			t.Errorf("%q: first run %s %q (%s), re-run %s %q (%s)", p, r1.Outcome, r1.TargetPath, r1.Reason, r2.Outcome, r2.TargetPath, r2.Reason)
		}
		if r2.Outcome == state.OutcomeImported || r2.Outcome == state.OutcomeRenamed {
			reimported[r2.TargetPath] = true
		}
	}
	if len(reimported) == 0 {
		t.Fatal("nothing re-imported")
	}
	ids := map[string]string{}
	for p, a := range again {
		b, ok := both[p]
		if !ok {
			t.Errorf("%q appeared with the re-run", p)
			continue
		}
		if a.GUID != b.GUID || a.ListItemID != b.ListItemID {
			t.Errorf("%q: identity changed with the re-run: %s/%s -> %s/%s", p, b.GUID, b.ListItemID, a.GUID, a.ListItemID)
		}
		want := b.ETagN
		if reimported[p] {
			want++
		}
		if !a.Folder && a.ETagN != want {
			t.Errorf("%q: eTag version %d after the re-run, want %d", p, a.ETagN, want)
		}
		if q, dup := ids[a.ListItemID]; dup {
			t.Errorf("list item id %s held by %q and %q", a.ListItemID, q, p)
		}
		ids[a.ListItemID] = p
	}
}

// TestIncrementalRerun: a re-run imports only what changed since the last
// import into the container (one file modified, one added) and reports the
// rest unchanged; with incremental off it imports everything again.
func TestIncrementalRerun(t *testing.T) {
	e := newITEnv(t, itOptions{})
	cid := itContainer(t, 13)
	dir := t.TempDir()
	specs := genSource(t, dir, 34, false)

	m1 := e.run("incr-1", fullRequest(dir, cid))
	if m1.Counters.Unchanged != 0 || m1.Counters.FilesMigrated != m1.Counters.Items {
		t.Fatalf("first run into an empty container: counters %+v", m1.Counters)
	}
	lib1 := e.libraryItems(cid)
	e.checkPresent("incr-1", lib1, specs)
	rs1 := e.results("incr-1")

	const changed, added = "dept-1/team-1/project-1/doc-001.txt", "added/new file.txt"
	if _, ok := specs[changed]; !ok {
		t.Fatalf("%q is not in the generated source", changed)
	}
	later := itEpoch.Add(1000 * time.Hour)
	for p, sp := range writeSource(t, dir, map[string]string{changed: "rewritten\n", added: "brand new\n"}, later) {
		specs[p] = sp
	}

	m2 := e.run("incr-2", fullRequest(dir, cid))
	t.Logf("incremental re-run: counters %+v", m2.Counters)
	lib2 := e.libraryItems(cid)
	e.checkPresent("incr-2", lib2, specs)
	rs2 := e.results("incr-2")
	var unchanged int64
	for p := range specs {
		r1, r2 := rs1[p], rs2[p]
		switch {
		case p == changed || p == added:
			if r2.Outcome != state.OutcomeImported {
				t.Errorf("%q: %s (%s), want imported", p, r2.Outcome, r2.Reason)
			}
		case r1.Outcome == state.OutcomeSkipped:
			if r2.Outcome != state.OutcomeSkipped || r2.Reason != r1.Reason {
				t.Errorf("%q: skipped by the policy the first time (%s), now %s (%s)", p, r1.Reason, r2.Outcome, r2.Reason)
			}
		default:
			unchanged++
			if r2.Outcome != state.OutcomeSkipped || r2.Reason != "unchanged since migration incr-1" || r2.TargetPath != r1.TargetPath {
				t.Errorf("%q: %s %q (%s), want skipped at %q as unchanged since migration incr-1", p, r2.Outcome, r2.TargetPath, r2.Reason, r1.TargetPath)
			}
		}
	}
	c := m2.Counters
	if c.FilesMigrated != 2 || c.FilesFailed != 0 || c.Items != 2 || c.Unchanged != unchanged || c.Skipped != unchanged+(m1.Counters.Skipped) {
		t.Errorf("incremental run counters %+v; want 2 migrated, %d unchanged", c, unchanged)
	}
	if unchanged < 20 {
		t.Fatalf("only %d files unchanged", unchanged)
	}
	for p, a := range lib2 {
		b, existed := lib1[p]
		target := rs2[changed].TargetPath
		switch {
		case p == rs2[added].TargetPath:
			if existed {
				t.Errorf("%q existed before it was added", p)
			}
		case !existed:
			if !a.Folder {
				t.Errorf("unexpected %q after the incremental run", p)
			}
		case a.GUID != b.GUID || a.ListItemID != b.ListItemID:
			t.Errorf("%q: identity changed", p)
		case a.Folder:
		case p == target && a.ETagN != b.ETagN+1:
			t.Errorf("%q (changed): eTag version %d, want %d", p, a.ETagN, b.ETagN+1)
		case p != target && a.ETagN != b.ETagN:
			t.Errorf("%q (unchanged): eTag version %d, want %d: it was imported again", p, a.ETagN, b.ETagN)
		}
	}
	if len(lib2) < len(lib1)+1 {
		t.Errorf("%d items after adding a file, %d before", len(lib2), len(lib1))
	}

	// Incremental off: everything is imported again, in place.
	off := fullRequest(dir, cid)
	f := false
	off.Options.Incremental = &f
	m3 := e.run("incr-3", off)
	if m3.Counters.Unchanged != 0 || m3.Counters.FilesMigrated != m3.Counters.Items || m3.Counters.Items != c.Items+unchanged {
		t.Errorf("non-incremental run counters %+v; want %d migrated, none unchanged", m3.Counters, c.Items+unchanged)
	}
	lib3 := e.libraryItems(cid)
	if len(lib3) != len(lib2) {
		t.Errorf("%d items after the full re-run, %d before: duplicates", len(lib3), len(lib2))
	}
	for p, a := range lib3 {
		if b := lib2[p]; !a.Folder && (a.GUID != b.GUID || a.ETagN != b.ETagN+1) {
			t.Errorf("%q: %s,%d after the full re-run, was %s,%d", p, a.GUID, a.ETagN, b.GUID, b.ETagN)
		}
	}
	for p, r := range e.results("incr-3") {
		if r.Outcome == state.OutcomeSkipped && r.Reason != rs1[p].Reason {
			t.Errorf("%q skipped in the full re-run: %s", p, r.Reason)
		}
	}
}

// TestImportLogIgnoresOwnImports: a page planned again after the
// migration's own batches finished must not call their items unchanged;
// and a request with incremental off looks nothing up.
func TestImportLogIgnoresOwnImports(t *testing.T) {
	e := newITEnv(t, itOptions{})
	ctx := t.Context()
	dir := t.TempDir()
	cid := itContainer(t, 13) // only rows in this test's tables are touched
	req := fullRequest(dir, cid)
	req.ApplyDefaults()
	m := &state.Migration{ID: "own", ContainerID: cid, Request: req}
	mod := itEpoch
	it := state.Item{Path: "a/b.txt", Target: "a/b.txt", Versions: []source.Entry{{Path: "a/b.txt", Size: 4, Modified: mod, ETag: "e1"}}}
	log := wiring.ImportLog{State: e.st}
	if err := log.Record(ctx, m, "p000000-b000", []state.Item{it}); err != nil {
		t.Fatal(err)
	}
	if got, err := log.Unchanged(ctx, m, []state.Item{it}); err != nil || len(got) != 0 {
		t.Fatalf("own import reported unchanged: %v, %v", got, err)
	}
	later := &state.Migration{ID: "later", ContainerID: cid, Request: req}
	if got, err := log.Unchanged(ctx, later, []state.Item{it}); err != nil || got[0] != "own" {
		t.Fatalf("a later migration: %v, %v; want index 0 unchanged since own", got, err)
	}
	f := false
	req.Options.Incremental = &f
	off := &state.Migration{ID: "off", ContainerID: cid, Request: req}
	if got, err := log.Unchanged(ctx, off, []state.Item{it}); err != nil || len(got) != 0 {
		t.Fatalf("incremental off: %v, %v", got, err)
	}
}
