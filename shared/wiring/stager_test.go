package wiring

import (
	"fmt"
	"testing"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/spepackage"
	"github.com/spemigrate/spemigrate/shared/state"
)

func TestLibraryPathsParentsFirstOnce(t *testing.T) {
	folders, files := libraryPaths([]state.Item{{Target: "a/b/c.txt"}, {Target: "a/d.txt"}, {Target: "/e.txt/"}})
	if fmt.Sprint(folders) != "[a a/b]" || fmt.Sprint(files) != "[a/b/c.txt a/d.txt e.txt]" {
		t.Errorf("folders %q files %q", folders, files)
	}
}

func TestPackageTargetAndFileID(t *testing.T) {
	const g = "8c1f3a52-7c1e-4b7e-9a57-2f0c3b1d9e44"
	pt, err := packageTarget(graph.Target{WebID: g, ListID: g, RootFolderID: g, SiteURL: "https://x/contentstorage/CSP_1", LibraryFolder: "Shared Documents"})
	if err != nil || pt.WebID.String() != g || pt.LibraryFolder != "Shared Documents" {
		t.Fatalf("packageTarget = %+v, %v", pt, err)
	}
	if _, err := packageTarget(graph.Target{WebID: "nope", ListID: g, RootFolderID: g}); err == nil {
		t.Error("a malformed web id was accepted")
	}
	// The id the poll matches error events by is the manifest's File@Id.
	m := &state.Migration{ContainerID: "b!c"}
	it := state.Item{Target: "a/B.txt"}
	want := spepackage.ObjectID(Namespace("b!c", ""), "a/B.txt").String()
	if got := (&StagingStager{}).FileID(m, it); got != want {
		t.Errorf("FileID = %s, want %s", got, want)
	}
}

// The author login the report calls mapped is the one the package names:
// through the user map, and none when authors are not preserved.
func TestAuthorLogin(t *testing.T) {
	ss := &StagingStager{}
	item := func(author string) state.Item {
		return state.Item{Path: "a.txt", Versions: []source.Entry{{Path: "a.txt", Metadata: map[string]string{"author": author}}}}
	}
	m := &state.Migration{}
	m.Request.Options.UserMap = map[string]string{"CONTOSO\\bob": "bob@contoso.com"}
	for author, want := range map[string]string{
		"Alice@Contoso.com": "i:0#.f|membership|alice@contoso.com",
		"contoso\\bob":      "i:0#.f|membership|bob@contoso.com",
		"not-a-upn":         "",
		"":                  "",
	} {
		if got := ss.AuthorLogin(m, item(author)); got != want {
			t.Errorf("author %q: AuthorLogin = %q, want %q", author, got, want)
		}
	}
	off := false
	m.Request.Options.Preserve.Authors = &off
	if got := ss.AuthorLogin(m, item("alice@contoso.com")); got != "" {
		t.Errorf("authors not preserved: AuthorLogin = %q", got)
	}
}
