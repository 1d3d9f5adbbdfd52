package staging

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/spemigrate/spemigrate/shared/source"
)

func file(path string, sizes ...int64) Item {
	it := Item{Path: path}
	for i, s := range sizes {
		it.Versions = append(it.Versions, source.Entry{Path: path, Size: s, VersionID: fmt.Sprint(i)})
	}
	return it
}

func shape(bs []Batch) string {
	var parts []string
	for _, b := range bs {
		var ps []string
		for _, it := range b.Items {
			ps = append(ps, it.Path)
		}
		parts = append(parts, fmt.Sprintf("[%s|%d|%d]", strings.Join(ps, " "), b.Blobs, b.Bytes))
	}
	return strings.Join(parts, "")
}

func TestPlan(t *testing.T) {
	lim := Limits{MaxItems: 3, MaxBytes: 100}
	cases := []struct {
		name  string
		items []Item
		want  string
	}{
		{"empty", nil, ""},
		{"one batch, sorted by path", []Item{file("c", 1), file("a", 2), file("b", 3)}, "[a b c|3|6]"},
		{"item limit", []Item{file("a", 1), file("b", 1), file("c", 1), file("d", 1)}, "[a b c|3|3][d|1|1]"},
		{"byte limit", []Item{file("a", 60), file("b", 50), file("c", 40)}, "[a|1|60][b c|2|90]"},
		{"exactly at limits", []Item{file("a", 50), file("b", 50)}, "[a b|2|100]"},
		{"large file alone", []Item{file("a", 10), file("b", 500), file("c", 10)}, "[a|1|10][b|1|500][c|1|10]"},
		{"versions count as items and stay together", []Item{file("a", 1), file("b", 1, 1, 1)}, "[a|1|1][b|3|3]"},
		{"too many versions: alone", []Item{file("a", 1), file("b", 1, 1, 1, 1), file("c", 1)}, "[a|1|1][b|4|4][c|1|1]"},
		{"zero-byte files", []Item{file("a", 0), file("b", 0)}, "[a b|2|0]"},
		{"folders count as items", []Item{file("d/a", 1), file("d/b", 1), file("d/c", 1)}, "[d/a d/b|2|2][d/c|1|1]"},
		{"nested folders count once each", []Item{file("x/y/a", 1), file("x/y/b", 1), file("x/z", 1)}, "[x/y/a|1|1][x/y/b|1|1][x/z|1|1]"},
		{"a shared folder counts once", []Item{file("x/a", 1), file("x/b", 1), file("y", 1)}, "[x/a x/b|2|2][y|1|1]"},
		{"deep file alone", []Item{file("p/q/r/a", 1)}, "[p/q/r/a|1|1]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Plan(c.items, lim)
			if err != nil {
				t.Fatal(err)
			}
			if s := shape(got); s != c.want {
				t.Fatalf("got %s, want %s", s, c.want)
			}
		})
	}
}

func TestPlanDeterministic(t *testing.T) {
	var items []Item
	for i := range 1000 {
		items = append(items, file(fmt.Sprintf("d%02d/f%04d", i%37, i), int64(i*7919%3000000)))
	}
	a, err := Plan(items, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	rev := make([]Item, len(items))
	for i := range items {
		rev[len(items)-1-i] = items[i]
	}
	b, _ := Plan(rev, DefaultLimits)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same items in another order gave other batches")
	}
	n := 0
	for _, bt := range a {
		if bt.Blobs > DefaultLimits.MaxItems || (bt.Bytes > DefaultLimits.MaxBytes && len(bt.Items) > 1) {
			t.Fatalf("batch over the limits: %d items, %d bytes", bt.Blobs, bt.Bytes)
		}
		n += len(bt.Items)
	}
	if n != len(items) {
		t.Fatalf("planned %d items, want %d", n, len(items))
	}
}

func TestPlanRejects(t *testing.T) {
	if _, err := Plan([]Item{file("a", 1)}, Limits{MaxItems: 0, MaxBytes: 1}); err == nil || !strings.Contains(err.Error(), "MaxItems") {
		t.Errorf("zero MaxItems: %v", err)
	}
	if _, err := Plan([]Item{file("a", 1)}, Limits{MaxItems: 1}); err == nil || !strings.Contains(err.Error(), "MaxBytes") {
		t.Errorf("zero MaxBytes: %v", err)
	}
	if _, err := Plan([]Item{{Path: "a"}}, DefaultLimits); err == nil || !strings.Contains(err.Error(), "Versions") {
		t.Errorf("no versions: %v", err)
	}
	if _, err := Plan([]Item{file("Dir/A.txt", 1), file("dir/a.TXT", 1)}, DefaultLimits); err == nil || !strings.Contains(err.Error(), "case") {
		t.Errorf("case collision: %v", err)
	}
}

// TestPlanCountsFolders: 250 files spread over 20 folders made a package of
// 270 items against the 250 recommendation; the folders the package creates
// now count, so no batch exceeds the limit.
func TestPlanCountsFolders(t *testing.T) {
	var items []Item
	for i := 0; i < 250; i++ {
		items = append(items, file(fmt.Sprintf("dir%02d/f%03d", i%20, i), 1))
	}
	for i := 0; i < 4; i++ {
		items = append(items, file(fmt.Sprintf("top/a/b/c/g%d", i), 1))
	}
	bs, err := Plan(items, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, b := range bs {
		if b.Blobs+b.Folders > DefaultLimits.MaxItems {
			t.Errorf("batch %d: %d versions + %d folders = %d items > %d", i, b.Blobs, b.Folders, b.Blobs+b.Folders, DefaultLimits.MaxItems)
		}
		n += len(b.Items)
	}
	if n != len(items) || len(bs) < 2 {
		t.Errorf("%d batches holding %d items", len(bs), n)
	}
	if bs[0].Folders == 0 {
		t.Errorf("batch 0 counts no folders")
	}
}
