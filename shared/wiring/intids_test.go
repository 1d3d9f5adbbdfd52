package wiring

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
	"github.com/spemigrate/spemigrate/shared/state"
)

// azurite is the local stack: Azurite and the Graph emulator.
var azurite *stack.Stack

func TestMain(m *testing.M) {
	stacktest.Main(m, stack.Options{Graph: true}, stacktest.NotShort, func(s *stack.Stack) { azurite = s })
}

// List-item ids: one per library path (case-insensitively), the same in
// every allocator of the container, never one id for two paths, never below
// the floor.
func TestIntIDsStablePerPath(t *testing.T) {
	if azurite == nil {
		t.Skip("needs Azurite (not started with -short)")
	}
	ctx := context.Background()
	st, err := state.NewFromConnectionString(azurite.StorageConnectionString, state.Options{TablePrefix: "W" + t.Name()[4:], SealKey: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	a := NewIntIDs(st, "b!c", 1000, 4)
	if err := a.Prefetch(ctx, []string{"Docs", "Docs/a.txt", "docs/A.TXT", "Docs/b.txt"}); err != nil {
		t.Fatal(err)
	}
	seen := map[int]string{}
	for _, p := range []string{"Docs", "Docs/a.txt", "Docs/b.txt", "Docs/c.txt"} {
		id, err := a.IntID(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if id < 1000 {
			t.Errorf("%s: id %d below the floor", p, id)
		}
		if prev, ok := seen[id]; ok {
			t.Errorf("id %d handed to %s and %s", id, prev, p)
		}
		seen[id] = p
	}
	// Another process (a new allocator) gets the same ids, whatever the case.
	b := NewIntIDs(st, "b!c", 1000, 4)
	for id, p := range seen {
		got, err := b.IntID(ctx, fmt.Sprint(strings.ToUpper(p)))
		if err != nil || got != id {
			t.Errorf("%s: %d, %v in a second allocator; want %d", p, got, err, id)
		}
	}
}
