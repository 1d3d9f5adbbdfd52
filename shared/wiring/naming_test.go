package wiring

import (
	"context"
	"testing"

	"github.com/spemigrate/spemigrate/shared/naming"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

// The policy names under the destination folder and reports renames and
// skips in the engine's terms, the same for a page and one by one.
func TestNamingPolicyDecisions(t *testing.T) {
	m := &state.Migration{ID: "m", ContainerID: "b!c", Request: request.Request{V: 1, Target: request.Target{Folder: "dest"}}}
	np := &NamingPolicy{Claims: naming.NewMemoryClaims()}
	ds, err := np.NamePage(context.Background(), m, []pipeline.NameEntry{{Path: "ok.txt"}, {Path: "a:b.txt"}, {Path: "x/desktop.ini"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := ds[0]; d.Target != "dest/ok.txt" || d.Renamed || d.Skip {
		t.Errorf("plain name: %+v", d)
	}
	if d := ds[1]; d.Target != "dest/a_b.txt" || !d.Renamed || d.Reason == "" {
		t.Errorf("refused character: %+v", d)
	}
	if d := ds[2]; !d.Skip && !d.Renamed {
		t.Errorf("reserved name neither skipped nor renamed: %+v", d)
	}
	again, err := np.Name(context.Background(), m, "a:b.txt", 0)
	if err != nil || again != ds[1] {
		t.Errorf("one by one: %+v, %v; want the page's %+v", again, err, ds[1])
	}
}

// options.naming.windowsSafe is on unless the request turns it off.
func TestNamingPolicyWindowsSafe(t *testing.T) {
	off := false
	for _, tc := range []struct {
		name   string
		safe   *bool
		target string
	}{{"default", nil, "_con.txt"}, {"off", &off, "con.txt"}} {
		t.Run(tc.name, func(t *testing.T) {
			m := &state.Migration{ID: "m-" + tc.name, ContainerID: "b!c", Request: request.Request{V: 1}}
			m.Request.Options.Naming.WindowsSafe = tc.safe
			np := &NamingPolicy{Claims: naming.NewMemoryClaims()}
			d, err := np.Name(context.Background(), m, "con.txt", 1)
			if err != nil {
				t.Fatal(err)
			}
			if d.Target != tc.target || d.Renamed != (tc.safe == nil) {
				t.Errorf("con.txt: %+v, want target %q", d, tc.target)
			}
		})
	}
}
