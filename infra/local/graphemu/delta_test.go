package graphemu_test

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
)

// pages follows @odata.nextLink from path and returns every value and the
// last page's @odata.deltaLink.
func (e *emu) pages(t *testing.T, path string) (vals []map[string]any, deltaLink string, calls int) {
	t.Helper()
	for path != "" && calls < 100 {
		calls++
		r := e.do("GET", path, nil)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		m := r.json(t)
		for _, v := range m["value"].([]any) {
			vals = append(vals, v.(map[string]any))
		}
		next, _ := m["@odata.nextLink"].(string)
		deltaLink, _ = m["@odata.deltaLink"].(string)
		path = strings.TrimPrefix(next, e.srv.URL())
	}
	return vals, deltaLink, calls
}

func TestChildrenArePaged(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) {
		c.Knobs.DrivePageSize = 2
		c.Knobs.Existing = []string{"D e/a.txt", "D e/b/", "D e/c.txt", "D e/d/", "D e/E.txt"}
	})
	vals, _, calls := e.pages(t, "/v1.0/drives/"+e.cid+"/root:/D%20e:/children?$select=name,folder")
	var names []string
	for _, v := range vals {
		names = append(names, v["name"].(string))
		if _, ok := v["eTag"]; ok {
			t.Errorf("$select not kept across pages: %v", v)
		}
	}
	if strings.Join(names, ",") != "a.txt,b,c.txt,d,E.txt" || calls != 3 {
		t.Errorf("children %v in %d calls, want five in 3 pages of 2", names, calls)
	}
	if r := e.do("GET", "/v1.0/drives/"+e.cid+"/root/children?$skiptoken=MTA", nil); r.status != 400 {
		t.Errorf("a token the emulator did not issue: %d, want 400", r.status)
	}
}

func TestDeltaPagesChangesAndRefusesForeignTokens(t *testing.T) {
	e := newEmu(t, func(c *graphemu.Config) {
		c.Knobs.DrivePageSize = 2
		c.Knobs.Existing = []string{"A/", "A/1.txt", "A/2.txt", "B/3.txt"}
	})
	start := "/v1.0/drives/" + e.cid + "/root/delta?$select=id,sharepointIds,deleted"
	vals, link, calls := e.pages(t, start)
	top := 0
	for _, v := range vals {
		n, _ := strconv.Atoi(v["sharepointIds"].(map[string]any)["listItemId"].(string))
		top = max(top, n)
		if _, ok := v["name"]; ok {
			t.Errorf("$select ignored: %v", v)
		}
	}
	if len(vals) != 5 || top != 1005 || link == "" || calls != 3 {
		t.Fatalf("delta: %d items, highest id %d, delta link %q, %d calls; want 5 items up to 1005 with a link, in 3 pages", len(vals), top, link, calls)
	}
	again, link2, _ := e.pages(t, strings.TrimPrefix(link, e.srv.URL()))
	if len(again) != 0 || link2 == "" {
		t.Errorf("from the delta link with no changes: %d items, link %q", len(again), link2)
	}
	// A new folder changes the library: the next read from the link has
	// it, and only it.
	if r := e.do("POST", "/v1.0/drives/"+e.cid+"/root/children", map[string]any{"name": "New", "folder": map[string]any{}}); r.status != 201 {
		t.Fatalf("create folder: %d %s", r.status, r.body)
	}
	changed, _, _ := e.pages(t, strings.TrimPrefix(link2, e.srv.URL()))
	if len(changed) != 1 {
		t.Errorf("since the last link: %v, want the new folder only", changed)
	}
	bad := "/v1.0/drives/" + e.cid + "/root/delta?token="
	if r := e.do("GET", bad+"bm90LWEtdG9rZW4", nil); r.status != 400 {
		t.Errorf("a token the emulator did not issue: %d, want 400", r.status)
	}
	stale := base64.RawURLEncoding.EncodeToString([]byte("d|an-earlier-start|3|0"))
	if r := e.do("GET", bad+stale, nil); r.status != 410 {
		t.Errorf("a token of an earlier start: %d, want 410 resyncRequired", r.status)
	} else if code, _ := r.errCodes(t); code != "resyncRequired" {
		t.Errorf("stale token code %q, want resyncRequired", code)
	}
}

// Two packages that both create one folder with one id (two batches of a
// migration in parallel) both import cleanly: the second updates the folder.
func TestSameFolderFromTwoPackages(t *testing.T) {
	e := newEmu(t, nil)
	for i := range 2 {
		ci := e.provision()
		examplePkg().upload(t, ci)
		evs := e.waitDone(e.mustCreateJob(ci))
		if errs := ofType(evs, "sharePointMigrationJobErrorEvent"); len(errs) != 0 {
			t.Errorf("package %d: %v", i+1, errs)
		}
	}
}
