package wiring

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/request"
)

type targetGraph struct {
	calls int
	err   error
}

func (g *targetGraph) Target(_ context.Context, id string) (graph.Target, error) {
	g.calls++
	return graph.Target{ContainerID: id, LibraryFolder: "Shared Documents"}, g.err
}

func TestTargetCacheResolvesOnce(t *testing.T) {
	g := &targetGraph{}
	tc := &TargetCache{Graph: g}
	for range 3 {
		if tg, err := tc.Get(context.Background(), "b!c"); err != nil || tg.LibraryFolder != "Shared Documents" {
			t.Fatalf("Get = %+v, %v", tg, err)
		}
	}
	if g.calls != 1 {
		t.Errorf("%d Graph calls for one container, want 1", g.calls)
	}
}

func TestCheckTargetNamesTheField(t *testing.T) {
	for _, tt := range []struct {
		err     error
		invalid bool
	}{
		{&graph.Error{Op: "driveRoot", StatusCode: http.StatusNotFound, Code: "itemNotFound"}, true},
		{&graph.Error{Op: "driveRoot", StatusCode: http.StatusForbidden, Code: "accessDenied"}, true},
		{errors.New("connection reset"), false},
	} {
		err := (&TargetCache{Graph: &targetGraph{err: tt.err}}).CheckTarget(context.Background(), "b!c")
		var re *request.Error
		isField := errors.As(err, &re) && len(re.Fields) == 1 && re.Fields[0].Field == "target.containerId"
		if isField != tt.invalid || err == nil {
			t.Errorf("%v: CheckTarget = %v; want a target.containerId field error: %v", tt.err, err, tt.invalid)
		}
	}
	if err := (&TargetCache{Graph: &targetGraph{}}).CheckTarget(context.Background(), "b!c"); err != nil {
		t.Errorf("known container: %v", err)
	}
}

func TestNamespaceIsPerTarget(t *testing.T) {
	if Namespace("b!c", "A/b") != Namespace("b!c", "/a/B/") || Namespace("b!c", "") == Namespace("b!d", "") {
		t.Error("a namespace must follow the target (container, folder case-insensitively), not the spelling")
	}
}
