package wiring

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/spepackage"
	"github.com/spemigrate/spemigrate/shared/state"
)

// emuGraph is a Graph client of the stack's emulator and a container
// holding paths (list item ids from 1001).
func emuGraph(t *testing.T, paths ...string) (*graph.Client, graphemu.Container) {
	t.Helper()
	if azurite == nil {
		t.Skip("needs the local stack (not started with -short)")
	}
	pem, err := os.ReadFile(azurite.GraphCAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	c, err := graph.New(graph.StaticToken(graphemu.Token("spemigrate-test", "FileStorageContainer.Selected")), graph.Options{BaseURL: azurite.GraphURL, Transport: hc})
	if err != nil {
		t.Fatal(err)
	}
	g := func(k string) string { return uuid.NewSHA1(uuid.NameSpaceURL, []byte(t.Name()+k)).String() }
	ct := graphemu.Container{ID: "b!" + g("id"), WebID: g("web"), ListID: g("list"), RootFolderID: g("root"),
		SiteURL: "https://contoso.sharepoint.com/contentstorage/CSP_" + g("site"), Existing: paths}
	if err := azurite.Graph.AddContainer(ct); err != nil {
		t.Fatal(err)
	}
	return c, ct
}

func testStore(t *testing.T) *state.Store {
	t.Helper()
	st, err := state.NewFromConnectionString(azurite.StorageConnectionString, state.Options{TablePrefix: "W" + t.Name()[4:], SealKey: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func driveCalls() int64 {
	c := azurite.Graph.Counts()
	return c[graphemu.RouteDriveItem] + c[graphemu.RouteDriveChildren] + c[graphemu.RouteDriveRoot]
}

// The walk asks only about outermost folders and the children of folders
// that exist, matches names in any case, tells a file in the way, leaves
// our own folders (our deterministic GUID) to be emitted again, and a
// second batch of the migration asks Graph nothing.
func TestFolderRefsWalk(t *testing.T) {
	gc, ct := emuGraph(t, "Dest/", "Dest/Sub/Deep/", "Dest/Sub/x.txt", "Dest/Blocked", "Top.txt")
	ctx := context.Background()
	fr := &FolderRefs{Graph: gc, State: testStore(t), Top: 2}
	ns := Namespace(ct.ID, "")
	folders := []string{"dest", "dest/SUB", "dest/SUB/deep", "dest/SUB/deep/more", "dest/SUB/new", "dest/SUB/new/below",
		"dest/blocked", "dest/blocked/under", "Other", "Other/a", "top.txt"}
	before := driveCalls()
	plan, err := fr.Resolve(ctx, "m1", ct.ID, ns, folders)
	if err != nil {
		t.Fatal(err)
	}
	// GET Dest, GET Other, GET top.txt; children of Dest and of Dest/Sub,
	// and of Dest/Sub/Deep (it exists, not ours).
	if n := driveCalls() - before; n != 6 {
		t.Errorf("%d Graph calls, want 6", n)
	}
	for _, p := range []string{"Dest", "Dest/Sub", "Dest/Sub/Deep"} {
		e, err := gc.ItemByPath(ctx, ct.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := plan.Existing[spepackage.PathKey(p)]; got.String() != e.GUID {
			t.Errorf("%s: referenced as %s, want its GUID %s", p, got, e.GUID)
		}
	}
	if len(plan.Existing) != 3 {
		t.Errorf("existing %v, want only the three folders", plan.Existing)
	}
	for _, p := range []string{"dest/blocked/under/f.txt", "top.txt/x"} {
		if f, ok := plan.Blocked(p); !ok {
			t.Errorf("%s: not blocked by the file above it", p)
		} else if f == "" {
			t.Errorf("%s: blocked without naming the file", p)
		}
	}
	if _, ok := plan.Blocked("dest/SUB/new/f.txt"); ok {
		t.Error("dest/SUB/new/f.txt blocked")
	}

	// Another batch of the migration in another process: answered from
	// the claims.
	before = driveCalls()
	again, err := (&FolderRefs{Graph: gc, State: fr.State, Top: 2}).Resolve(ctx, "m1", ct.ID, ns, folders)
	if err != nil {
		t.Fatal(err)
	}
	if n := driveCalls() - before; n != 0 {
		t.Errorf("second batch: %d Graph calls, want 0", n)
	}
	if len(again.Existing) != 3 || len(again.Files) != 2 {
		t.Errorf("second batch: %+v, want the first's answer", again)
	}
}

// A folder carrying our deterministic id is ours: emitted again, its
// children not listed.
func TestFolderRefsOursNotListed(t *testing.T) {
	ns := Namespace("b!c", "")
	w := &walk{ns: ns}
	ours := graph.DriveEntry{Name: "Mine", Folder: true, GUID: spepackage.ObjectID(ns, "Mine").String()}
	if got := w.entryState("Mine", ours); got != folderOurs {
		t.Errorf("our folder: %q, want %q", got, folderOurs)
	}
	other := graph.DriveEntry{Name: "Mine", Folder: true, GUID: uuid.NewString()}
	if got := w.entryState("Mine", other); got != other.GUID {
		t.Errorf("another's folder: %q, want its GUID", got)
	}
}

// The id floor is above the library's highest list item id, read once per
// migration; a new migration reads only the changes since.
func TestIntIDBaseLibrary(t *testing.T) {
	gc, ct := emuGraph(t, "A/", "A/1.txt", "A/2.txt", "B/3.txt")
	ctx := context.Background()
	st := testStore(t)
	b := &IntIDBase{Graph: gc, State: st, First: 1000}
	delta := func() int64 { return azurite.Graph.Counts()[graphemu.RouteDriveDelta] }
	d0 := delta()
	last, err := gc.ItemByPath(ctx, ct.ID, "B/3.txt") // seeded last: the highest id
	if err != nil {
		t.Fatal(err)
	}
	want := last.ListItemID + 1
	f, err := b.Floor(ctx, ct.ID, "m1")
	if err != nil || f != want || f < 1006 {
		t.Fatalf("Floor = %d, %v; want %d, above the seeded items' ids", f, err, want)
	}
	if delta() == d0 {
		t.Fatal("no delta read")
	}
	d1 := delta()
	// A second process of the same migration: the stored answer.
	if f2, err := (&IntIDBase{Graph: gc, State: st, First: 1000}).Floor(ctx, ct.ID, "m1"); err != nil || f2 != want || delta() != d1 {
		t.Errorf("same migration, another process: %d, %v, %d delta calls; want %d from state", f2, err, delta()-d1, want)
	}
	tg, _ := st.GetTarget(ctx, ct.ID)
	if tg.DeltaLink == "" || tg.LibraryMaxIntID != want-1 {
		t.Errorf("target row %+v: want the delta link and %d kept", tg, want-1)
	}
	// A new migration reads the changes since the stored link (none).
	if f2, err := b.Floor(ctx, ct.ID, "m2"); err != nil || f2 != want || delta() != d1+1 {
		t.Errorf("new migration: %d, %v, %d delta calls; want %d after one", f2, err, delta()-d1, want)
	}
	if f3, err := (&IntIDBase{Graph: gc, State: st, First: 1000, Strategy: IntIDBaseFixed}).Floor(ctx, ct.ID, "m3"); err != nil || f3 != 1000 {
		t.Errorf("fixed: %d, %v; want 1000", f3, err)
	}
}

// An item below a path the container holds as a file fails on its own,
// with the reason; the rest of the batch stages.
func TestStageFailsItemsBelowAFile(t *testing.T) {
	gc, ct := emuGraph(t, "Dest/report")
	st := testStore(t)
	ss := &StagingStager{State: st, FirstIntID: 1000, Folders: &FolderRefs{Graph: gc, State: st}, IntBase: &IntIDBase{Graph: gc, State: st, First: 1000}}
	m := &state.Migration{ID: "m-blocked", ContainerID: ct.ID}
	items := []state.Item{{Target: "Dest/REPORT/q1.csv"}, {Target: "Dest/ok/q2.csv"}, {Target: "Dest/report/deeper/q3.csv"}}
	ids, _, staged, out, err := ss.prepare(context.Background(), m, items)
	if err != nil {
		t.Fatal(err)
	}
	if len(staged) != 1 || staged[0] != 1 {
		t.Errorf("staged %v, want only the item not below the file", staged)
	}
	for _, i := range []int{0, 2} {
		if why := out.Failed[i]; !strings.Contains(why, `file at "Dest/report"`) || !strings.Contains(why, "rename or remove") {
			t.Errorf("item %d: reason %q, want the file named and the fix", i, why)
		}
	}
	if id, err := ids.IntID(context.Background(), "Dest/ok/q2.csv"); err != nil || id <= 1001 {
		t.Errorf("id %d, %v: want one above the library's items", id, err)
	}
}
