package state

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/spemigrate/spemigrate/shared/naming"
)

// TestMapPageOverTableClaims: a page named through Table Storage claims
// decides what in-memory claims decide, also when two processes name the
// page at once and when a crashed attempt left part of its claims behind.
func TestMapPageOverTableClaims(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	var page []naming.Entry
	for i := 0; i < 300; i++ {
		page = append(page, naming.Entry{Path: fmt.Sprintf("Dept %d/Team:%d/Doc %d.txt", i%3, i%5, i%60), Size: 1})
	}
	page = append(page, naming.Entry{Path: "dept 1/TEAM:1/doc 1.TXT"}, naming.Entry{Path: "Dept 2"}, naming.Entry{Path: "x (2).txt"}, naming.Entry{Path: "X.txt"}, naming.Entry{Path: "x.txt"})

	mem, _ := naming.NewMapper("m", naming.Policy{}, naming.NewMemoryClaims())
	want, err := mem.MapPage(ctx, page)
	if err != nil {
		t.Fatal(err)
	}
	// A crashed attempt: the first folder level claimed, nothing else.
	if _, err := s.ClaimMany(ctx, "m", []string{"dept 0", "dept 1"}, []string{"folder:Dept 0", "folder:Dept 1"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([][]naming.Decision, 3)
	for w := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mp, err := naming.NewMapper("m", naming.Policy{}, s)
			if err != nil {
				t.Error(err)
				return
			}
			if got[w], err = mp.MapPage(ctx, page); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for w := range got {
		if len(got[w]) != len(want) {
			t.Fatalf("process %d: %d decisions", w, len(got[w]))
		}
		for i := range want {
			if fmt.Sprint(got[w][i]) != fmt.Sprint(want[i]) {
				t.Errorf("process %d, %q: %+v, in memory %+v", w, page[i].Path, got[w][i], want[i])
			}
		}
	}
}
