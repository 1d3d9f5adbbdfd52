package spepackage

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The target of spec §6.11.
var testTarget = Target{
	SiteURL:       "https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04",
	WebID:         uuid.MustParse("b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d"),
	ListID:        uuid.MustParse("5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10"),
	RootFolderID:  uuid.MustParse("0e9d8c7b-6a5f-4e3d-2c1b-a09f8e7d6c5b"),
	LibraryFolder: "Document Library",
}

var testNS = uuid.MustParse("6ba7b811-9dad-11d1-80b4-00c04fd430c8")

// node is a parsed XML element, for assertions.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []node     `xml:",any"`
}

func (n node) attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

func (n node) get(t *testing.T, name string) string {
	t.Helper()
	v, ok := n.attr(name)
	if !ok {
		t.Fatalf("<%s> has no %s attribute", n.XMLName.Local, name)
	}
	return v
}

func (n node) child(name string) *node {
	for i := range n.Children {
		if n.Children[i].XMLName.Local == name {
			return &n.Children[i]
		}
	}
	return nil
}

type memFile struct {
	bytes.Buffer
	name   string
	closed bool
}

func (m *memFile) Close() error { m.closed = true; return nil }

func build(t *testing.T, p Package) (Report, map[string]*memFile, []string) {
	t.Helper()
	files := map[string]*memFile{}
	var order []string
	rep, err := Build(context.Background(), p, func(name string) (io.WriteCloser, error) {
		f := &memFile{name: name}
		files[name] = f
		order = append(order, name)
		return f, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range files {
		if !f.closed {
			t.Errorf("%s was not closed", name)
		}
	}
	return rep, files, order
}

func parse(t *testing.T, f *memFile) node {
	t.Helper()
	if !strings.HasPrefix(f.String(), `<?xml version="1.0" encoding="utf-8"?>`) {
		t.Fatalf("%s does not start with the XML declaration: %.60q", f.name, f.String())
	}
	var n node
	if err := xml.Unmarshal(f.Bytes(), &n); err != nil {
		t.Fatalf("%s is not well-formed: %v", f.name, err)
	}
	return n
}

func ndaPackage(ids IntIDs) Package {
	created := time.Date(2021, 6, 1, 9, 30, 0, 0, time.UTC)
	return Package{
		Target: testTarget, Namespace: testNS, SourceType: SourceAzureStorage, IDs: ids,
		Items: []Item{{
			Path:    "Contracts/nda.pdf",
			Created: created,
			Author:  Identity{Login: "Alice@Contoso.com", Name: "Alice Example"},
			Versions: []Version{
				{BlobName: "src/0001.bin", Size: 18211, Modified: created, ModifiedBy: Identity{Email: "alice@contoso.com"}},
				{BlobName: "src/0002.bin", Size: 19874, Modified: time.Date(2022, 2, 10, 15, 5, 33, 0, time.FixedZone("CET", 3600)), ModifiedBy: Identity{Login: "bob@contoso.com"}},
			},
		}},
	}
}

// TestManifestWorkedExample builds spec §6.11 (a new folder and a file with
// two versions) and checks every value that must match.
func TestManifestWorkedExample(t *testing.T) {
	rep, files, order := build(t, ndaPackage(NewMemoryIntIDs(1001)))
	if strings.Join(order, ",") != strings.Join(Files, ",") {
		t.Fatalf("files written %v, want %v", order, Files)
	}

	m := parse(t, files[ManifestFile])
	if m.XMLName.Local != "SPObjects" || m.XMLName.Space != "urn:deployment-manifest-schema" {
		t.Fatalf("manifest root %v", m.XMLName)
	}
	if len(m.Children) != 4 {
		t.Fatalf("manifest has %d SPObjects, want 4 (folder, folder item, file, file item)", len(m.Children))
	}
	folderID := ObjectID(testNS, "Contracts").String()
	fileID := ObjectID(testNS, "Contracts/nda.pdf").String()
	web := "/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"
	list, webID, root := testTarget.ListID.String(), testTarget.WebID.String(), testTarget.RootFolderID.String()

	type want map[string]string
	check := func(n *node, w want) {
		t.Helper()
		if n == nil {
			t.Fatal("missing element")
		}
		for k, v := range w {
			if got := n.get(t, k); got != v {
				t.Errorf("<%s %s=%q>, want %q", n.XMLName.Local, k, got, v)
			}
		}
	}
	check(&m.Children[0], want{"ObjectType": "SPFolder", "Id": folderID, "ParentId": root, "ParentWebId": webID, "ParentWebUrl": web,
		"Url": testTarget.SiteURL + "/Document%20Library/Contracts"})
	check(m.Children[0].child("Folder"), want{"Id": folderID, "Name": "Contracts", "Url": "Document Library/Contracts",
		"ParentFolderId": root, "ContainingDocumentLibrary": list, "ListItemIntId": "1001", "ParentWebUrl": web})
	if _, ok := m.Children[0].child("Folder").attr("TimeCreated"); ok {
		t.Error("a synthesised folder must not invent times")
	}
	check(&m.Children[1], want{"ObjectType": "SPListItem", "ParentId": list})
	check(m.Children[1].child("ListItem"), want{"DocType": "Folder", "DocId": folderID, "IntId": "1001", "Order": "100100",
		"FileUrl": "Document Library/Contracts", "DirName": "Document Library", "ParentFolderId": root, "ParentListId": list})

	check(&m.Children[2], want{"ObjectType": "SPFile", "Id": fileID, "ParentId": folderID,
		"Url": testTarget.SiteURL + "/Document%20Library/Contracts/nda.pdf"})
	f := m.Children[2].child("File")
	check(f, want{"Id": fileID, "Name": "nda.pdf", "Url": "Document Library/Contracts/nda.pdf", "ListItemIntId": "1002",
		"ListId": list, "ParentId": folderID, "ParentWebId": webID, "ParentWebUrl": web, "Version": "2.0",
		"FileValue": "src/0002.bin", "FileSize": "19874", "TimeCreated": "2021-06-01T09:30:00",
		"TimeLastModified": "2022-02-10T14:05:33", "Author": "1", "ModifiedBy": "2"})
	vs := f.child("Versions")
	if vs == nil || len(vs.Children) != 1 {
		t.Fatal("want one previous version under <Versions>")
	}
	check(&vs.Children[0], want{"Id": fileID, "Version": "1.0", "FileValue": "src/0001.bin", "FileSize": "18211",
		"TimeLastModified": "2021-06-01T09:30:00", "Author": "1", "ModifiedBy": "1", "ListItemIntId": "1002"})
	li := m.Children[3].child("ListItem")
	check(li, want{"DocType": "File", "DocId": fileID, "IntId": "1002", "Order": "100200", "FileUrl": "Document Library/Contracts/nda.pdf",
		"DirName": "Document Library/Contracts", "ParentFolderId": folderID, "Version": "2.0",
		"TimeLastModified": "2022-02-10T14:05:33", "ModifiedBy": "2"})
	if li.get(t, "Id") == fileID || li.get(t, "Id") != m.Children[3].get(t, "Id") {
		t.Error("ListItem@Id must be its own GUID, equal to its SPObject's Id")
	}
	lvs := li.child("Versions")
	if lvs == nil || len(lvs.Children) != 1 || lvs.Children[0].XMLName.Local != "ListItem" {
		t.Fatal("want the previous version as a <ListItem> under the list item's <Versions>")
	}
	check(&lvs.Children[0], want{"Id": li.get(t, "Id"), "DocId": fileID, "IntId": "1002", "Version": "1.0",
		"TimeLastModified": "2021-06-01T09:30:00", "Author": "1", "ModifiedBy": "1", "DirName": "Document Library/Contracts"})

	// Alice appears three times (login, e-mail, mixed case) but is declared once.
	ug := parse(t, files[UserGroupFile])
	users := ug.child("Users")
	if ug.XMLName.Space != "urn:deployment-usergroupmap-schema" || users == nil || len(users.Children) != 2 || ug.child("Groups") == nil {
		t.Fatalf("UserGroup.xml: %+v", ug)
	}
	check(&users.Children[0], want{"Id": "1", "Login": "i:0#.f|membership|alice@contoso.com", "Name": "Alice Example", "IsDeleted": "false"})
	check(&users.Children[1], want{"Id": "2", "Login": "i:0#.f|membership|bob@contoso.com", "Email": "bob@contoso.com"})
	if rep.Users != 2 {
		t.Errorf("Report.Users = %d", rep.Users)
	}

	es := parse(t, files[ExportSettingsFile])
	check(&es, want{"SiteUrl": testTarget.SiteURL, "SourceType": "AzureStorage", "IncludeVersions": "All", "IncludeSecurity": "None", "FileLocation": ""})
	check(es.child("ExportObjects").child("DeploymentObject"), want{"Id": list, "Type": "List", "ParentId": webID})
	sd := parse(t, files[SystemDataFile])
	check(sd.child("SchemaVersion"), want{"Version": "15.0.0.0", "SiteVersion": "15"})
	check(sd.child("ManifestFiles").child("ManifestFile"), want{"Name": "Manifest.xml"})
	check(sd.child("SystemObjects").child("SystemObject"), want{"Id": webID, "Type": "Web", "Url": web})
	ro := parse(t, files[RootObjectMapFile])
	check(ro.child("RootObject"), want{"Id": list, "Type": "List", "ParentId": webID, "WebUrl": web, "Url": web + "/Document Library", "IsDependency": "false"})
	for name, ns := range map[string]string{
		LookupListMapFile: "urn:deployment-lookuplistmap-schema",
		RequirementsFile:  "urn:deployment-requirements-schema",
		ViewFormsListFile: "urn:deployment-viewformlist-schema",
	} {
		n := parse(t, files[name])
		if n.XMLName.Space != ns || len(n.Children) != 0 {
			t.Errorf("%s: root %v with %d children", name, n.XMLName, len(n.Children))
		}
	}

	if len(rep.Items) != 2 || !rep.Items[0].Synthesised || rep.Items[0].Author != AuthorDefault ||
		rep.Items[1].Author != AuthorMapped || rep.Items[1].IntID != 1002 || rep.Items[1].ID.String() != fileID {
		t.Errorf("report %+v", rep.Items)
	}
}

func TestManifestDeterministicAcrossBatches(t *testing.T) {
	_, a, _ := build(t, ndaPackage(NewMemoryIntIDs(1001)))
	_, b, _ := build(t, ndaPackage(NewMemoryIntIDs(1001)))
	for _, name := range Files {
		if !bytes.Equal(a[name].Bytes(), b[name].Bytes()) {
			t.Errorf("%s differs between two builds of the same package", name)
		}
	}

	// Two batches of one migration share a parent folder: it keeps its id
	// and int id; new items get new int ids.
	ids := NewMemoryIntIDs(500)
	p1 := Package{Target: testTarget, Namespace: testNS, SourceType: SourceFileShare, IDs: ids,
		Items: []Item{{Path: "A/B/one.txt", Versions: []Version{{BlobName: "1"}}}}}
	p2 := p1
	p2.Items = []Item{{Path: "a/b/two.txt", Versions: []Version{{BlobName: "2"}}}}
	r1, _, _ := build(t, p1)
	r2, _, _ := build(t, p2)
	if len(r1.Items) != 3 || len(r2.Items) != 3 {
		t.Fatalf("want folder A, folder B and the file in each package: %+v / %+v", r1.Items, r2.Items)
	}
	for i := 0; i < 2; i++ {
		if r1.Items[i].ID != r2.Items[i].ID || r1.Items[i].IntID != r2.Items[i].IntID {
			t.Errorf("folder %q: ids %v/%d vs %v/%d", r1.Items[i].LibraryPath, r1.Items[i].ID, r1.Items[i].IntID, r2.Items[i].ID, r2.Items[i].IntID)
		}
	}
	if r1.Items[2].IntID == r2.Items[2].IntID {
		t.Error("two different files got the same int id")
	}
}

func TestManifestDestinationAndOrder(t *testing.T) {
	dest := uuid.MustParse("86ec9ba4-d929-441a-87ca-f4b2164d6439")
	tg := testTarget
	tg.DestinationPath, tg.DestinationID = "Imports/2026", dest
	mod := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	p := Package{Target: tg, Namespace: testNS, SourceType: SourceFileShare, IDs: NewMemoryIntIDs(1),
		Items: []Item{
			{Path: "x/y.txt", Versions: []Version{{BlobName: "b1", Size: 1, Modified: mod}}},
			{Path: "x", Folder: true, Created: mod, Modified: mod, Author: Identity{Login: "carol@contoso.com"}},
			{Path: "top.txt", Versions: []Version{{BlobName: "b2", Size: 2}}},
		}}
	rep, files, _ := build(t, p)
	m := parse(t, files[ManifestFile])
	// Path order, parents before children: top.txt, folder x (explicit, so
	// with its times), then x/y.txt.
	var kinds []string
	for _, c := range m.Children {
		kinds = append(kinds, c.get(t, "ObjectType"))
	}
	if got := strings.Join(kinds, ","); got != "SPFile,SPListItem,SPFolder,SPListItem,SPFile,SPListItem" {
		t.Fatalf("object order %s", got)
	}
	fo := m.Children[2].child("Folder")
	if fo.get(t, "ParentFolderId") != dest.String() || fo.get(t, "Url") != "Document Library/Imports/2026/x" ||
		fo.get(t, "TimeCreated") != "2024-03-04T05:06:07" || fo.get(t, "Author") != "1" {
		t.Errorf("folder %+v", fo.Attrs)
	}
	top := m.Children[0].child("File")
	if top.get(t, "ParentId") != dest.String() || top.get(t, "Url") != "Document Library/Imports/2026/top.txt" {
		t.Errorf("top file %+v", top.Attrs)
	}
	if _, ok := top.attr("Author"); ok {
		t.Error("a file without identity must leave Author to SharePoint")
	}
	if rep.Items[1].Synthesised || rep.Items[1].Author != AuthorMapped || rep.Items[0].Author != AuthorDefault {
		t.Errorf("report %+v", rep.Items)
	}
	if rep.Items[2].LibraryPath != "Imports/2026/x/y.txt" || rep.Items[2].ID != ObjectID(testNS, "imports/2026/X/Y.TXT") {
		t.Errorf("file report %+v", rep.Items[2])
	}
}

func TestBuildRejectsBadInput(t *testing.T) {
	good := ndaPackage(NewMemoryIntIDs(1))
	cases := map[string]func(*Package){
		"no web id":       func(p *Package) { p.Target.WebID = uuid.Nil },
		"relative site":   func(p *Package) { p.Target.SiteURL = "/contentstorage/x" },
		"no library":      func(p *Package) { p.Target.LibraryFolder = "" },
		"dest without id": func(p *Package) { p.Target.DestinationPath = "x" },
		"no namespace":    func(p *Package) { p.Namespace = uuid.Nil },
		"no ids":          func(p *Package) { p.IDs = nil },
		"source type":     func(p *Package) { p.SourceType = "Other" },
		"dotdot":          func(p *Package) { p.Items[0].Path = "../x" },
		"no versions":     func(p *Package) { p.Items[0].Versions = nil },
		"case duplicate": func(p *Package) {
			p.Items = append(p.Items, p.Items[0])
			p.Items[1].Path = "contracts/NDA.pdf"
		},
		"label order": func(p *Package) { p.Items[0].Versions[0].Label = "3.0"; p.Items[0].Versions[1].Label = "2.0" },
		"bad label":   func(p *Package) { p.Items[0].Versions[0].Label = "v1" },
	}
	for name, mutate := range cases {
		p := good
		p.Items = []Item{good.Items[0]}
		p.Items[0].Versions = append([]Version(nil), good.Items[0].Versions...)
		mutate(&p)
		_, err := Build(context.Background(), p, func(string) (io.WriteCloser, error) { return &memFile{}, nil })
		if err == nil {
			t.Errorf("%s: Build succeeded", name)
		}
	}
}

type failingFile struct {
	memFile
	abandoned error
}

func (f *failingFile) Write([]byte) (int, error) { return 0, errors.New("disk full") }
func (f *failingFile) CloseWithError(err error) error {
	f.abandoned = err
	return nil
}

func TestBuildAbandonsFailedFile(t *testing.T) {
	f := &failingFile{}
	_, err := Build(context.Background(), ndaPackage(NewMemoryIntIDs(1)), func(string) (io.WriteCloser, error) { return f, nil })
	if err == nil || f.abandoned == nil || f.closed {
		t.Fatalf("err %v, abandoned %v, closed %v: a failed write must abandon, not close", err, f.abandoned, f.closed)
	}
}

func TestXMLEscapingAndLabels(t *testing.T) {
	p := Package{Target: testTarget, Namespace: testNS, SourceType: SourceFileShare, IDs: NewMemoryIntIDs(1),
		Items: []Item{{Path: `R&D/"quotes" <tag> & ünïcode.txt`, Versions: []Version{
			{BlobName: "a", Label: "0.1"}, {BlobName: "b", Label: "0.2"}, {BlobName: "c", Label: "1.0"},
		}}}}
	_, files, _ := build(t, p)
	m := parse(t, files[ManifestFile])
	f := m.Children[2].child("File")
	if f.get(t, "Name") != `"quotes" <tag> & ünïcode.txt` || f.get(t, "Version") != "1.0" {
		t.Errorf("file %+v", f.Attrs)
	}
	if got := f.child("Versions").Children[1].get(t, "Version"); got != "0.2" {
		t.Errorf("second version label %q", got)
	}
}

func TestNewTarget(t *testing.T) {
	got, err := NewTarget(testTarget.SiteURL, "{"+testTarget.WebID.String()+"}", strings.ToUpper(testTarget.ListID.String()), testTarget.RootFolderID.String(), "Document Library")
	if err != nil || got != testTarget {
		t.Fatalf("NewTarget = %+v, %v", got, err)
	}
	if _, err := NewTarget(testTarget.SiteURL, "nope", testTarget.ListID.String(), testTarget.RootFolderID.String(), "x"); err == nil || !strings.Contains(err.Error(), "WebID") {
		t.Fatalf("bad web id: %v", err)
	}
}

// TestObjectURLEscapesSegments: SPObject@Url is an absolute URL, so a name
// with "%" or "#" must be escaped or the URL names another file or a
// fragment; the web-relative paths stay literal.
func TestObjectURLEscapesSegments(t *testing.T) {
	p := Package{Target: testTarget, Namespace: testNS, SourceType: SourceFileShare, IDs: NewMemoryIntIDs(1),
		Items: []Item{
			{Path: "with%20space.txt", Versions: []Version{{BlobName: "a"}}},
			{Path: "#hash.txt", Versions: []Version{{BlobName: "b"}}},
			{Path: "q?/a b.txt", Versions: []Version{{BlobName: "c"}}},
		}}
	_, files, _ := build(t, p)
	m := parse(t, files[ManifestFile])
	want := map[string]string{
		"with%20space.txt": testTarget.SiteURL + "/Document%20Library/with%2520space.txt",
		"#hash.txt":        testTarget.SiteURL + "/Document%20Library/%23hash.txt",
		"a b.txt":          testTarget.SiteURL + "/Document%20Library/q%3F/a%20b.txt",
	}
	seen := 0
	for _, o := range m.Children {
		f := o.child("File")
		if f == nil {
			continue
		}
		seen++
		name := f.get(t, "Name")
		if got := o.get(t, "Url"); got != want[name] {
			t.Errorf("%s: SPObject@Url %q, want %q", name, got, want[name])
		}
		if got := f.get(t, "Url"); !strings.HasSuffix(got, "/"+name) {
			t.Errorf("%s: File@Url %q is not the literal path", name, got)
		}
	}
	if seen != 3 {
		t.Fatalf("%d files", seen)
	}
}

// TestUserGroupDeletedAndSystemID: IsDeleted and SystemId come from the
// identity instead of a constant "false" and nothing.
func TestUserGroupDeletedAndSystemID(t *testing.T) {
	p := ndaPackage(NewMemoryIntIDs(1))
	p.Items[0].Versions[1].ModifiedBy = Identity{Login: "bob@contoso.com", Deleted: true, SystemID: "AQUAAAAAAAUVAAAA"}
	_, files, _ := build(t, p)
	users := parse(t, files[UserGroupFile]).child("Users")
	alice, bob := users.Children[0], users.Children[1]
	if alice.get(t, "IsDeleted") != "false" {
		t.Errorf("alice IsDeleted %q", alice.get(t, "IsDeleted"))
	}
	if _, ok := alice.attr("SystemId"); ok {
		t.Error("alice has a SystemId nobody gave")
	}
	if bob.get(t, "IsDeleted") != "true" || bob.get(t, "SystemId") != "AQUAAAAAAAUVAAAA" {
		t.Errorf("bob %+v", bob.Attrs)
	}
}

func TestPackageOptions(t *testing.T) {
	p := ndaPackage(NewMemoryIntIDs(1))
	var vs []Version
	for i := 0; i < 5; i++ {
		vs = append(vs, Version{BlobName: fmt.Sprintf("v%d", i), Modified: time.Date(2020, 1, i+1, 0, 0, 0, 0, time.UTC)})
	}
	p.Items[0].Versions = vs
	p.Options = Options{SchemaBuild: "16.0.9999.1", DatabaseVersion: "42", DirName: DirNameServerRelative, MaxVersions: 3}
	rep, files, _ := build(t, p)
	sv := parse(t, files[SystemDataFile]).child("SchemaVersion")
	if sv.get(t, "Build") != "16.0.9999.1" || sv.get(t, "DatabaseVersion") != "42" {
		t.Errorf("SchemaVersion %+v", sv.Attrs)
	}
	m := parse(t, files[ManifestFile])
	li := m.Children[3].child("ListItem")
	if got, want := li.get(t, "DirName"), "/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04/Document Library/Contracts"; got != want {
		t.Errorf("DirName %q, want %q", got, want)
	}
	f := m.Children[2].child("File")
	if n := len(f.child("Versions").Children); n != 2 || f.get(t, "Version") != "5.0" || f.child("Versions").Children[0].get(t, "Version") != "3.0" {
		t.Errorf("capped to 3 versions: current %s, %d previous", f.get(t, "Version"), n)
	}
	if rep.Items[1].VersionsDropped != 2 {
		t.Errorf("VersionsDropped = %d", rep.Items[1].VersionsDropped)
	}
	p.Options = Options{DirName: "absolute"}
	if _, err := Build(context.Background(), p, func(string) (io.WriteCloser, error) { return &memFile{}, nil }); err == nil {
		t.Error("an unknown DirName form was accepted")
	}
}

// Folders the library holds already are referenced by their GUID, in any
// case, and not emitted; the folders below them are.
func TestManifestExistingFolders(t *testing.T) {
	shared := uuid.MustParse("0b5e1d3c-7a9f-4e2b-8c6d-1f3a5b7c9d0e")
	deep := uuid.MustParse("5d7f9a1b-3c5e-4f7a-9b1c-3d5f7a9b1c3d")
	p := Package{Target: testTarget, Namespace: testNS, SourceType: SourceFileShare, IDs: NewMemoryIntIDs(2000),
		ExistingFolders: map[string]uuid.UUID{"shared": shared, "shared/deep": deep},
		Items: []Item{
			{Path: "SHARED/Deep/a.txt", Versions: []Version{{BlobName: "b1", Size: 1}}},
			{Path: "Shared/new/b.txt", Versions: []Version{{BlobName: "b2", Size: 2}}},
			{Path: "shared/deep", Folder: true},
		}}
	rep, files, _ := build(t, p)
	m := parse(t, files[ManifestFile])
	var kinds []string
	for _, c := range m.Children {
		kinds = append(kinds, c.get(t, "ObjectType"))
	}
	if got := strings.Join(kinds, ","); got != "SPFile,SPListItem,SPFolder,SPListItem,SPFile,SPListItem" {
		t.Fatalf("object order %s: want a.txt, the new folder, b.txt", got)
	}
	a := m.Children[0].child("File")
	if a.get(t, "ParentId") != deep.String() || m.Children[1].child("ListItem").get(t, "ParentFolderId") != deep.String() {
		t.Errorf("a.txt: parent %s, want the existing folder's GUID %s", a.get(t, "ParentId"), deep)
	}
	if dn := m.Children[1].child("ListItem").get(t, "DirName"); dn != "Document Library/SHARED/Deep" {
		t.Errorf("DirName %q unchanged by the reference", dn)
	}
	nf := m.Children[2].child("Folder")
	if nf.get(t, "ParentFolderId") != shared.String() || nf.get(t, "Id") != ObjectID(testNS, "shared/new").String() {
		t.Errorf("new folder %+v: want our id below the existing folder", nf.Attrs)
	}
	for _, r := range rep.Items {
		if r.Folder && r.LibraryPath != "Shared/new" {
			t.Errorf("report has folder %q, an existing one", r.LibraryPath)
		}
	}
}
