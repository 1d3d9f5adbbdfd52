package graph

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
)

// inUse adds a container holding paths (list item ids from 1001).
func inUse(t *testing.T, name string, paths ...string) graphemu.Container {
	t.Helper()
	g := func(k string) string { return uuid.NewSHA1(uuid.NameSpaceURL, []byte(name+k)).String() }
	c := graphemu.Container{ID: "b!" + g("id"), WebID: g("web"), ListID: g("list"), RootFolderID: g("root"),
		SiteURL: "https://contoso.sharepoint.com/contentstorage/CSP_" + g("site"), Existing: paths}
	if err := emu.Graph.AddContainer(c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEmulatorItemByPathAndChildren(t *testing.T) {
	c := emuClient(t)
	ctx := context.Background()
	ct := inUse(t, t.Name(), "Dest/", "Dest/Sub/", "Dest/a.txt", "Dest/b/", "Dest/c/", "Dest/d.txt")
	e, err := c.ItemByPath(ctx, ct.ID, "dest") // SharePoint paths ignore case
	if err != nil || !e.Folder || e.Name != "Dest" || len(e.GUID) != 36 || e.ListItemID <= 1000 {
		t.Fatalf("ItemByPath(dest) = %+v, %v; want the folder Dest with its GUID and an id above 1000", e, err)
	}
	if _, err := c.ItemByPath(ctx, ct.ID, "Dest/none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing path: %v, want ErrNotFound", err)
	}
	kids, err := c.Children(ctx, ct.ID, "Dest", 2) // three pages
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range kids {
		names = append(names, k.Name)
		if k.Name == "a.txt" && k.Folder || k.Name == "Sub" && !k.Folder {
			t.Errorf("%s: folder %v", k.Name, k.Folder)
		}
	}
	if want := []string{"a.txt", "b", "c", "d.txt", "Sub"}; !slices.Equal(names, want) {
		t.Errorf("children %v, want %v", names, want)
	}
}

// The delta's highest list item id, then only changes since the link.
func TestEmulatorMaxListItemID(t *testing.T) {
	c := emuClient(t)
	ctx := context.Background()
	ct := inUse(t, t.Name(), "A/", "A/1.txt", "A/2.txt", "B/", "B/3.txt", "C.txt", "D/E/F/")
	top, link, err := c.MaxListItemID(ctx, ct.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	last, err := c.ItemByPath(ctx, ct.ID, "D/E/F") // seeded last: the highest id
	if err != nil {
		t.Fatal(err)
	}
	if top != last.ListItemID || top < 1009 || link == "" {
		t.Fatalf("MaxListItemID = %d, %q; want %d (the last seeded item's) and a delta link", top, link, last.ListItemID)
	}
	again, link2, err := c.MaxListItemID(ctx, ct.ID, link)
	if err != nil || again != 0 || link2 == "" {
		t.Errorf("from the delta link: %d, %q, %v; want no changes", again, link2, err)
	}
	if _, _, err := c.MaxListItemID(ctx, ct.ID, "https://elsewhere.example/v1.0/drives/x/root/delta?token=abc"); err != nil {
		t.Errorf("a link of another host is not followed but read again from the start: %v", err)
	}
}
