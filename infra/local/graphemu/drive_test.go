package graphemu_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
)

func TestDriveFolderCreationAndNameClash(t *testing.T) {
	e := newEmu(t, nil)
	drive := "/v1.0/drives/" + e.cid
	r := e.do("POST", drive+"/root/children", map[string]any{"name": "Contracts", "folder": map[string]any{}})
	if r.status != 201 {
		t.Fatalf("create folder: %d %s", r.status, r.body)
	}
	made := r.json(t)
	if !strings.HasPrefix(made["eTag"].(string), `"{`) || !strings.HasSuffix(made["eTag"].(string), `},1"`) {
		t.Errorf("eTag = %v", made["eTag"])
	}
	if r := e.do("POST", drive+"/root/children", map[string]any{"name": "contracts", "folder": map[string]any{}}); r.status != 409 {
		t.Errorf("same name again: %d", r.status)
	}
	if r := e.do("POST", drive+"/root/children", map[string]any{"name": "Contracts", "folder": map[string]any{}, "@microsoft.graph.conflictBehavior": "rename"}); r.status != 201 || r.json(t)["name"] != "Contracts 1" {
		t.Errorf("rename: %d %s", r.status, r.body)
	}
	// The package's folder "Contracts" has another id: object error, and
	// its file then has no parent.
	ci := e.provision()
	examplePkg().upload(t, ci)
	evs := e.waitDone(e.mustCreateJob(ci))
	assertOutcome(t, evs, rule{level: objError, objType: "folder", objURL: "Document Library/Contracts", msg: "A different item named 'Contracts' already exists"})
	if len(ofType(evs, "sharePointMigrationJobErrorEvent")) != 2 {
		t.Errorf("want the folder error and the file's parent-not-found error: %v", ofType(evs, "sharePointMigrationJobErrorEvent"))
	}
	// A package can target the folder created through Graph by its eTag GUID.
	guid := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(made["eTag"].(string), `"{`), `},1"`))
	p := examplePkg()
	_, _, file, foot := manifestParts()
	head, _, _, _ := manifestParts()
	p.meta["Manifest.xml"] = []byte(strings.ReplaceAll(head+file+foot, exFolder, guid))
	ci = e.provision()
	p.upload(t, ci)
	assertOutcome(t, e.waitDone(e.mustCreateJob(ci)), rule{level: ""})
	if r := e.do("GET", drive+"/root:/Contracts/nda.pdf", nil); r.status != 200 {
		t.Errorf("file in the Graph-created folder: %d", r.status)
	}
	// Unknown drive and item.
	if r := e.do("GET", "/v1.0/drives/b!nope/root", nil); r.status != 404 {
		t.Errorf("unknown drive: %d", r.status)
	}
	if r := e.do("GET", drive+"/root:/Nope/nothing.txt", nil); r.status != 404 {
		t.Errorf("unknown path: %d", r.status)
	}
	// The verification endpoint lists the tree.
	res, err := e.http.Get(e.srv.URL() + "/_emulator/containers/" + e.cid + "/tree")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("tree: %v %v", err, res)
	}
	res.Body.Close()
}

func TestEnumCasePascalKnob(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) { c.Knobs.EnumCase = "pascal" })
	ci := e.provision()
	p := examplePkg()
	delete(p.data, "src/0001.bin")
	p.upload(t, ci)
	evs := e.waitDone(e.mustCreateJob(ci))
	errs := ofType(evs, "sharePointMigrationJobErrorEvent")
	if len(errs) != 1 || errs[0]["errorLevel"] != "Error" || errs[0]["objectType"] != "File" {
		t.Errorf("error events = %v", errs)
	}
}

func TestIntIDCollision(t *testing.T) {
	// The file takes int id 1001, which the folder already holds.
	clash := func(p *pkg) {
		replaceIn(p, "Manifest.xml", `ListItemIntId="1002" ListId`, `ListItemIntId="1001" ListId`)
	}
	t.Run("default error", func(t *testing.T) {
		e := newEmu(t, nil)
		ci := e.provision()
		p := examplePkg()
		clash(p)
		p.upload(t, ci)
		evs := e.waitDone(e.mustCreateJob(ci))
		assertOutcome(t, evs, rule{level: objError, objType: "file", objURL: fileURL, msg: "List item id 1001 is already used"})
	})
	t.Run("knob overwrite", func(t *testing.T) {
		e := newEmu(t, func(c *graphemu.Config) { c.Knobs.IntIDCollision = "overwrite" })
		ci := e.provision()
		p := examplePkg()
		clash(p)
		// The list item then agrees with the file.
		replaceIn(p, "Manifest.xml", ` IntId="1002" Order`, ` IntId="1001" Order`)
		p.upload(t, ci)
		evs := e.waitDone(e.mustCreateJob(ci))
		assertOutcome(t, evs, rule{level: ""})
		f := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts/nda.pdf:", nil).json(t)
		if f["sharepointIds"].(map[string]any)["listItemId"] != "1001" {
			t.Errorf("file listItemId = %v", f["sharepointIds"])
		}
		d := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts:", nil).json(t)
		if d["sharepointIds"].(map[string]any)["listItemId"] == "1001" {
			t.Errorf("folder kept the int id the file took")
		}
	})
}

func TestConfigErrorsNameTheField(t *testing.T) {
	_, err := graphemu.New(graphemu.Config{Knobs: graphemu.Knobs{WrongKey: "later"}})
	if err == nil {
		t.Fatal("empty config accepted")
	}
	for _, want := range []string{"Containers", "Storage", "DataDir", "Knobs.WrongKey \"later\": use one of sync, async"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestStrictItemIDsKnob(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) { c.Knobs.StrictItemIDs = true })
	drive := "/v1.0/drives/" + e.cid
	root := e.do("GET", drive+"/root", nil).json(t)
	if r := e.do("GET", drive+"/items/"+root["id"].(string), nil); r.status != 200 {
		t.Errorf("root by its id: %d", r.status)
	}
	if r := e.do("GET", drive+"/items/"+graphemu.DefaultContainer().RootFolderID, nil); r.status != 404 {
		t.Errorf("root by its GUID under StrictItemIDs: %d, want 404", r.status)
	}
}

func TestContentRedirectKnob(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) { c.Knobs.ContentRedirect = true })
	ci := e.provision()
	p := examplePkg()
	p.upload(t, ci)
	e.waitDone(e.mustCreateJob(ci))
	noFollow := *e.http
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("GET", e.srv.URL()+"/v1.0/drives/"+e.cid+"/root:/Contracts/nda.pdf:/content", nil)
	req.Header.Set("Authorization", "Bearer t")
	res, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc := res.Header.Get("Location")
	if res.StatusCode != 302 || loc == "" {
		t.Fatalf("content: %d Location=%q", res.StatusCode, loc)
	}
	// The download URL needs no token.
	res, err = e.http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(body, p.data["src/0002.bin"]) {
		t.Errorf("download: %d, %d bytes", res.StatusCode, len(body))
	}
	// A client that follows redirects gets the bytes in one call.
	if got := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts/nda.pdf:/versions/1.0/content", nil).body; !bytes.Equal(got, p.data["src/0001.bin"]) {
		t.Errorf("followed redirect: %d bytes", len(got))
	}
}

func TestAddContainer(t *testing.T) {
	e := newEmu(t, nil)
	c := graphemu.DefaultContainer()
	c.ID = "b!fresh-container-for-one-test"
	if err := e.srv.AddContainer(c); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.AddContainer(c); err == nil {
		t.Error("the same id was added twice")
	}
	e.cid = c.ID
	ci := e.provision()
	examplePkg().upload(t, ci)
	assertOutcome(t, e.waitDone(e.mustCreateJob(ci)), rule{level: ""})
	body := strings.NewReader(`{"ID": "b!via-admin", "WebID": "` + exWeb + `", "ListID": "` + exList + `", "RootFolderID": "` + exRoot + `", "SiteURL": "https://contoso.sharepoint.com/contentstorage/CSP_x"}`)
	res, err := e.http.Post(e.srv.AdminURL()+"/containers", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("admin add container: %d", res.StatusCode)
	}
	if r := e.do("GET", "/v1.0/drives/b!via-admin/root", nil); r.status != 200 {
		t.Errorf("new container's root: %d", r.status)
	}
}

func TestDriveSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e := newEmu(t, func(c *graphemu.Config) { c.DataDir = dir })
	ci := e.provision()
	p := examplePkg()
	p.upload(t, ci)
	e.waitDone(e.mustCreateJob(ci))
	before := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts/nda.pdf", nil).json(t)
	e.srv.Close()

	e2 := newEmu(t, func(c *graphemu.Config) { c.DataDir = dir })
	after := e2.do("GET", "/v1.0/drives/"+e2.cid+"/root:/Contracts/nda.pdf", nil).json(t)
	for _, k := range []string{"id", "eTag", "createdDateTime", "lastModifiedDateTime", "size"} {
		if before[k] != after[k] {
			t.Errorf("%s: %v before the restart, %v after", k, before[k], after[k])
		}
	}
	if got := e2.do("GET", "/v1.0/drives/"+e2.cid+"/root:/Contracts/nda.pdf:/versions/1.0/content", nil).body; !bytes.Equal(got, p.data["src/0001.bin"]) {
		t.Errorf("version 1.0 after the restart: %d bytes", len(got))
	}
	// Provisioned containers are forgotten: a client re-provisions.
	if r := e2.createJob(ci); r.status != 400 {
		t.Errorf("job on containers provisioned before the restart: %d", r.status)
	}
}
