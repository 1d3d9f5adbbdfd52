package naming

import (
	"context"
	"fmt"
	"testing"
)

// countingClaims counts the round trips a Mapper makes.
type countingClaims struct {
	*MemoryClaims
	single, batches int
}

func (c *countingClaims) Claim(ctx context.Context, mig, key, owner string) (string, error) {
	c.single++
	return c.MemoryClaims.Claim(ctx, mig, key, owner)
}

func (c *countingClaims) ClaimMany(ctx context.Context, mig string, keys, owners []string) ([]string, error) {
	c.batches++
	return c.MemoryClaims.ClaimMany(ctx, mig, keys, owners)
}

// onlyClaims hides ClaimMany, so the Mapper claims one key at a time.
type onlyClaims struct{ c Claims }

func (o onlyClaims) Claim(ctx context.Context, mig, key, owner string) (string, error) {
	return o.c.Claim(ctx, mig, key, owner)
}

// pageCorpus has collisions within the page and with the earlier page,
// repairs, reserved names, skips and folders at several depths.
func pageCorpus(n int) []Entry {
	var es []Entry
	for i := 0; i < n; i++ {
		es = append(es, Entry{Path: fmt.Sprintf("Area %d/sub:%d/Report %d.pdf", i%5, i%3, i%40), Size: int64(i)})
	}
	es = append(es,
		Entry{Path: "area 1/SUB:1/report 1.PDF", Size: 1},
		Entry{Path: "AREA 2/x.txt", Size: 1},
		Entry{Path: "CON/y.txt", Size: 1},
		Entry{Path: "big.bin", Size: DefaultMaxFileSize + 1},
		Entry{Path: "a//b.txt", Size: 1},
		Entry{Path: "trailing/", Size: 1},
		Entry{Path: "Area 0", Size: 1}, // a file where a folder is
	)
	return es
}

// TestMapPageMatchesMap: a page mapped at once decides what mapping its
// entries one by one decides (no numbered names in the source), and claims
// in one batch per folder level.
func TestMapPageMatchesMap(t *testing.T) {
	ctx := context.Background()
	earlier := []Entry{{Path: "area 0/Sub_0/report 0.pdf", Size: 1}, {Path: "AREA 3", Size: 1}}
	page := pageCorpus(200)
	for _, pol := range []Policy{{}, {Collisions: SkipCollisions}, {Invalid: SkipInvalid}} {
		one := NewMemoryClaims()
		seq, _ := NewMapper("m", pol, onlyClaims{one})
		cc := &countingClaims{MemoryClaims: NewMemoryClaims()}
		batch, _ := NewMapper("m", pol, cc)
		for _, e := range earlier {
			if _, err := seq.Map(ctx, e.Path, e.Size); err != nil {
				t.Fatal(err)
			}
			if _, err := batch.Map(ctx, e.Path, e.Size); err != nil {
				t.Fatal(err)
			}
		}
		cc.single, cc.batches = 0, 0
		got, err := batch.MapPage(ctx, page)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range page {
			want, err := seq.Map(ctx, e.Path, e.Size)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got[i]) != fmt.Sprint(want) {
				t.Errorf("policy %+v, %q:\n page %+v\n one  %+v", pol, e.Path, got[i], want)
			}
		}
		// Three levels (folder, folder, file; under SkipInvalid the second
		// level is skipped, so two); the losers' numbered names
		// are claimed one at a time.
		if cc.batches < 2 || cc.batches > 3 {
			t.Errorf("policy %+v: %d batch claims for a page three levels deep, want at most 3", pol, cc.batches)
		}
		if cc.single > 20 {
			t.Errorf("policy %+v: %d single claims for a page with a few collisions", pol, cc.single)
		}
		// The page again, through a fresh mapper (a redelivery): the same.
		again, _ := NewMapper("m", pol, cc)
		got2, err := again.MapPage(ctx, page)
		if err != nil {
			t.Fatal(err)
		}
		for i := range page {
			if fmt.Sprint(got2[i]) != fmt.Sprint(got[i]) {
				t.Errorf("policy %+v, %q: redelivery decided %+v, first %+v", pol, page[i].Path, got2[i], got[i])
			}
		}
	}
}

// TestMapPageFreeNamesFirst: within a page, a name that is free as it is
// keeps it, and a colliding name's rename takes the next free number.
func TestMapPageFreeNamesFirst(t *testing.T) {
	m := newMapper(t, Policy{})
	ds, err := m.MapPage(context.Background(), []Entry{{Path: "a.txt"}, {Path: "A.txt"}, {Path: "a (2).txt"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.txt", "A (3).txt", "a (2).txt"}
	for i, d := range ds {
		if d.Target != want[i] {
			t.Errorf("%q: target %q, want %q", d.Source, d.Target, want[i])
		}
	}
}
