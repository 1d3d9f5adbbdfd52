package wiring

import (
	"fmt"
	"testing"

	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/state"
)

// The planner cuts by the request's batch limits and hands back the items
// it was given (naming notes included), in target order.
func TestStagingPlannerUsesRequestLimits(t *testing.T) {
	var items []state.Item
	for i := range 7 {
		p := fmt.Sprintf("f%d.txt", 6-i)
		items = append(items, state.Item{Path: "src/" + p, Target: p, Renamed: i == 2, NamingReason: "why",
			Versions: []source.Entry{{Path: "src/" + p, Size: 10}}})
	}
	m := &state.Migration{ID: "m", Request: request.Request{V: 1, Options: request.Options{Batch: request.Batch{MaxItems: 3, MaxBytes: 1 << 20}}}}
	groups, err := StagingPlanner{}.Plan(m, items)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range groups {
		got = append(got, fmt.Sprint(len(g)))
	}
	if fmt.Sprint(got) != "[3 3 1]" || groups[0][0].Target != "f0.txt" || groups[2][0].Target != "f6.txt" {
		t.Fatalf("groups %v (first %q)", got, groups[0][0].Target)
	}
	if it := groups[1][1]; it.Target != "f4.txt" || !it.Renamed || it.NamingReason != "why" || it.Path != "src/f4.txt" {
		t.Errorf("item lost its notes: %+v", it)
	}
	// No limits in the request: the staging defaults (one batch here).
	m.Request.Options.Batch = request.Batch{}
	if groups, err := (StagingPlanner{}).Plan(m, items); err != nil || len(groups) != 1 {
		t.Errorf("default limits: %d groups, %v", len(groups), err)
	}
}
