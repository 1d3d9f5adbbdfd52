package graphemu_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
)

func TestStrictPresetIsValid(t *testing.T) {
	k := graphemu.Strict()
	e := newEmu(t, func(c *graphemu.Config) { c.Knobs = k })
	// The preset asks for a permission-bearing token.
	if r := e.do("POST", e.containerPath(e.cid)+"/provisionMigrationContainers", nil); r.status != 403 {
		t.Errorf("strict provision with a bare token: %d, want 403", r.status)
	}
	r := e.do("POST", e.containerPath(e.cid)+"/provisionMigrationContainers", nil,
		"Authorization", "Bearer "+graphemu.Token("app-1", graphemu.Permission))
	if r.status != 200 {
		t.Errorf("strict provision with a granted token: %d %s", r.status, r.body)
	}
}

func TestExistingItemsKnob(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) { c.Knobs.Existing = []string{"Shared/", "Shared/welcome.txt", "Archive/"} })
	drive := "/v1.0/drives/" + e.cid
	kids := e.do("GET", drive+"/root/children", nil).json(t)["value"].([]any)
	if len(kids) != 2 {
		t.Fatalf("root children %v, want Archive and Shared", kids)
	}
	f := e.do("GET", drive+"/root:/Shared/welcome.txt:", nil)
	if f.status != 200 {
		t.Fatalf("seeded file: %d %s", f.status, f.body)
	}
	ids := map[string]bool{}
	for _, p := range []string{"Shared", "Shared/welcome.txt", "Archive"} {
		m := e.do("GET", drive+"/root:/"+p, nil).json(t)
		n, _ := strconv.Atoi(m["sharepointIds"].(map[string]any)["listItemId"].(string))
		if n <= 1000 || ids[strconv.Itoa(n)] {
			t.Errorf("%s: list item id %d, want a distinct id above 1000", p, n)
		}
		ids[strconv.Itoa(n)] = true
	}
	if got := e.do("GET", drive+"/root:/Shared/welcome.txt:/content", nil).body; !strings.Contains(string(got), "welcome.txt") {
		t.Errorf("seeded content %q", got)
	}
	// A package that allocates list item ids from 1001, as if the library
	// were empty, collides with what is there.
	ci := e.provision()
	examplePkg().upload(t, ci)
	evs := e.waitDone(e.mustCreateJob(ci))
	collided := false
	for _, ev := range ofType(evs, "sharePointMigrationJobErrorEvent") {
		if m, _ := ev["error"].(map[string]any); strings.Contains(m["message"].(string), "already used") {
			collided = true
		}
	}
	if !collided {
		t.Errorf("no id collision reported against the seeded items: %v", ofType(evs, "sharePointMigrationJobErrorEvent"))
	}
}

func TestUnresolvedLoginsKnob(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) { c.Knobs.UnresolvedLogins = []string{"@former.contoso.com"} })
	p := examplePkg()
	p.meta["UserGroup.xml"] = []byte(strings.Replace(strings.Replace(exUserGroup,
		"bob@contoso.com\" Email", "bob@former.contoso.com\" Email", 1), `IsDeleted="true"`, `IsDeleted="false"`, 1))
	ci := e.provision()
	p.upload(t, ci)
	evs := e.waitDone(e.mustCreateJob(ci))
	var warned map[string]any
	for _, ev := range ofType(evs, "sharePointMigrationJobErrorEvent") {
		if m, _ := ev["error"].(map[string]any); strings.Contains(m["message"].(string), "Failed to ensure user 'i:0#.f|membership|bob@former.contoso.com'") {
			warned = ev
		}
	}
	if warned == nil || warned["errorLevel"] != "warning" || warned["objectUrl"] != "Document Library/Contracts/nda.pdf" {
		t.Fatalf("want a warning naming the item for the unresolved login; got %v", warned)
	}
	file := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts/nda.pdf:", nil).json(t)
	if displayName(file["lastModifiedBy"]) != "System Account" {
		t.Errorf("lastModifiedBy %v, want System Account", file["lastModifiedBy"])
	}
}

// drainLinks follows next links until a link repeats, returning the events
// and how many empty pages carried a new link.
func (e *emu) drainLinks(jobID string) (evs []map[string]any, emptyMid int, links []string) {
	e.t.Helper()
	link := e.containerPath(e.cid) + "/migrationJobs/" + jobID + "/progressEvents"
	for i := 0; i < 1000; i++ {
		vals, next := e.eventsPage(link)
		evs = append(evs, vals...)
		if next == "" || next == link {
			return evs, emptyMid, links
		}
		if len(vals) == 0 {
			emptyMid++
		}
		links = append(links, next)
		link = next
	}
	e.t.Fatal("next links never repeated")
	return
}

func TestSkipPagingAndEmptyPagesKnobs(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) {
		c.Knobs.Paging, c.Knobs.EmptyPages, c.Knobs.PageSize, c.Knobs.ProgressEvery = "skip", true, 2, 1
	})
	ci := e.provision()
	examplePkg().upload(t, ci)
	jobID := e.mustCreateJob(ci)
	want := e.waitDone(jobID)
	got, emptyMid, links := e.drainLinks(jobID)
	if len(got) != len(want) {
		t.Fatalf("drained %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i]["id"] != want[i]["id"] {
			t.Fatalf("event %d is %v, want %v", i, got[i]["id"], want[i]["id"])
		}
	}
	if emptyMid < len(want)/2 {
		t.Errorf("%d empty mid-stream pages, want one before each page of events", emptyMid)
	}
	for _, l := range links {
		if !strings.Contains(l, "$skip=") || strings.Contains(strings.ToLower(l), "skiptoken") {
			t.Errorf("next link %s is not $skip-style", l)
		}
	}
	if r := e.do("GET", e.containerPath(e.cid)+"/migrationJobs/"+jobID+"/progressEvents?$skip=x", nil); r.status != 400 {
		t.Errorf("bad $skip: %d", r.status)
	}
}

func TestNotFoundCodesKnob(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) { c.Knobs.NotFoundCodes = "topOnly" })
	for _, r := range []resp{
		e.do("DELETE", e.containerPath(e.cid)+"/migrationJobs/00000000-0000-0000-0000-000000000000", nil),
		e.do("GET", e.containerPath(e.cid)+"/migrationJobs/00000000-0000-0000-0000-000000000000/progressEvents", nil),
	} {
		if c, ic := r.errCodes(t); r.status != 404 || c != "migrationNotFound" || ic != "" {
			t.Errorf("unknown job: %d %s/%s, want 404 migrationNotFound alone", r.status, c, ic)
		}
	}
}

func TestPermissionKnobs(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) {
		c.Knobs.RequirePermission = true
		c.Knobs.RegisteredApps = []string{"registered-app"}
	})
	path := e.containerPath(e.cid) + "/provisionMigrationContainers"
	cases := []struct {
		name, token, want string
		status            int
	}{
		{"not a JWT", "test-token", graphemu.Permission, 403},
		{"no permission", graphemu.Token("registered-app", "Sites.Read.All"), graphemu.Permission, 403},
		{"unregistered app", graphemu.Token("other-app", graphemu.Permission), "not registered for the container type", 403},
		{"granted", graphemu.Token("registered-app", graphemu.Permission), "", 200},
	}
	for _, c := range cases {
		r := e.do("POST", path, nil, "Authorization", "Bearer "+c.token)
		if r.status != c.status || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s: %d %s, want %d mentioning %q", c.name, r.status, r.body, c.status, c.want)
		}
		if c.status == 403 {
			if code, _ := r.errCodes(t); code != "accessDenied" {
				t.Errorf("%s: code %q", c.name, code)
			}
		}
	}
}

func TestPhantomErrorsKnob(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) { c.Knobs.PhantomErrors = 2 })
	ci := e.provision()
	examplePkg().upload(t, ci)
	evs := e.waitDone(e.mustCreateJob(ci))
	if n := len(ofType(evs, "sharePointMigrationJobErrorEvent")); n != 0 {
		t.Errorf("%d error events", n)
	}
	if final := evs[len(evs)-1]; final["totalErrors"] != float64(2) {
		t.Errorf("final totalErrors %v, want 2 without error events", final["totalErrors"])
	}
}

func TestVersionMetadataKnob(t *testing.T) {
	versionOne := func(manifest string) map[string]any {
		e := newEmu(t, func(c *graphemu.Config) { c.Knobs.VersionMetadata = "listItem" })
		p := examplePkg()
		p.meta["Manifest.xml"] = []byte(manifest)
		ci := e.provision()
		p.upload(t, ci)
		evs := e.waitDone(e.mustCreateJob(ci))
		for _, ev := range ofType(evs, "sharePointMigrationJobErrorEvent") {
			t.Errorf("unexpected error event: %v", ev)
		}
		vs := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts/nda.pdf:/versions", nil).json(t)["value"].([]any)
		if len(vs) != 2 {
			t.Fatalf("versions %v", vs)
		}
		return vs[1].(map[string]any)
	}
	// Without list-item versions the history collapses onto the current
	// list item's values.
	v1 := versionOne(exManifest)
	if v1["lastModifiedDateTime"] != "2022-02-10T14:05:33Z" || displayName(v1["lastModifiedBy"]) != "Former Employee" {
		t.Errorf("version 1.0 without list-item versions = %v, want it collapsed onto 2.0's", v1)
	}
	withVersions := strings.Replace(exManifest, `Version="2.0" TimeCreated="2021-06-01T09:30:00" TimeLastModified="2022-02-10T14:05:33" Author="1" ModifiedBy="2">
      <Fields />`, `Version="2.0" TimeCreated="2021-06-01T09:30:00" TimeLastModified="2022-02-10T14:05:33" Author="1" ModifiedBy="2">
      <Fields />
      <Versions>
        <ListItem Id="e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b" DocType="File" DocId="9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" IntId="1002"
                  Version="1.0" TimeCreated="2021-06-01T09:30:00" TimeLastModified="2021-06-01T09:30:00" Author="1" ModifiedBy="1"><Fields /></ListItem>
      </Versions>`, 1)
	if withVersions == exManifest {
		t.Fatal("fixture did not change")
	}
	v1 = versionOne(withVersions)
	if v1["lastModifiedDateTime"] != "2021-06-01T09:30:00Z" || displayName(v1["lastModifiedBy"]) != "Alice Example" {
		t.Errorf("version 1.0 with a list-item version = %v", v1)
	}
}

// TestAbsoluteURLsAreParsedAsURLs: an SPObject@Url with an unescaped "#"
// names the folder (the rest is a fragment), so the emulator warns that it
// does not match the file; escaped, it matches.
func TestAbsoluteURLsAreParsedAsURLs(t *testing.T) {
	const site = "https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04/Document Library/Contracts/"
	for _, c := range []struct {
		objectURL string
		warn      bool
	}{{site + "#nda.pdf", true}, {site + "%23nda.pdf", false}} {
		e := newEmu(t, nil)
		m := strings.ReplaceAll(exManifest, "nda.pdf", "#nda.pdf")
		m = strings.ReplaceAll(m, `Url="`+site+`#nda.pdf"`, `Url="`+c.objectURL+`"`)
		p := examplePkg()
		p.meta["Manifest.xml"] = []byte(m)
		ci := e.provision()
		p.upload(t, ci)
		evs := e.waitDone(e.mustCreateJob(ci))
		warned := false
		for _, ev := range ofType(evs, "sharePointMigrationJobErrorEvent") {
			if msg := ev["error"].(map[string]any)["message"].(string); strings.Contains(msg, "does not match") {
				warned = true
			} else {
				t.Errorf("unexpected event %v", ev)
			}
		}
		if warned != c.warn {
			t.Errorf("SPObject@Url %q: warned %v, want %v", c.objectURL, warned, c.warn)
		}
		if r := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts/%23nda.pdf:", nil); r.status != 200 {
			t.Errorf("#nda.pdf not imported: %d", r.status)
		}
	}
}
