package staging

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spemigrate/spemigrate/shared/source"
)

// Item is one file to migrate, after the naming policy.
type Item struct {
	// Path is the target path relative to the destination folder.
	Path string
	// Versions are the source entries of the file, oldest first, the
	// current one last; a single entry when the source has no versions.
	Versions []source.Entry
}

// Bytes is the plaintext size of all the item's versions.
func (it Item) Bytes() int64 {
	var n int64
	for _, e := range it.Versions {
		n += e.Size
	}
	return n
}

// Limits bound one package. Every version counts as an item (§6.8), and so
// does every folder the package creates: spepackage emits each folder
// between the destination and an item once per package.
type Limits struct {
	MaxItems int
	MaxBytes int64
}

// DefaultLimits are the service's recommendation: 250 items or 250 MB,
// whichever comes first.
var DefaultLimits = Limits{MaxItems: 250, MaxBytes: 250 << 20}

// Batch is one package's worth of items.
type Batch struct {
	Items []Item
	Blobs int // versions in the batch
	// Folders is how many folders the batch's package creates (every
	// distinct parent folder of its items below the destination).
	// Blobs+Folders is the item count the limits apply to.
	Folders int
	Bytes   int64 // plaintext bytes
}

// Plan cuts items into batches: in path order, each batch within lim, and a
// file too large (or with too many versions) for any batch alone in its own.
// All versions of a file stay in one batch, as the service requires. The
// same items and limits always give the same batches.
func Plan(items []Item, lim Limits) ([]Batch, error) {
	groups, err := PlanBy(items, lim, func(it Item) (string, int, int64) {
		return it.Path, len(it.Versions), it.Bytes()
	})
	if err != nil {
		return nil, err
	}
	out := make([]Batch, len(groups))
	for i, g := range groups {
		out[i].Items = g
		folders := map[string]bool{}
		for _, it := range g {
			out[i].Blobs += len(it.Versions)
			out[i].Bytes += it.Bytes()
			for _, f := range parentFolders(it.Path) {
				folders[f] = true
			}
		}
		out[i].Folders = len(folders)
	}
	return out, nil
}

// parentFolders lists the folders above path (relative to the destination),
// case-folded as SharePoint compares them: "a/b/c.txt" gives "a", "a/b".
func parentFolders(p string) []string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	out := make([]string, 0, len(segs)-1)
	for i := 1; i < len(segs); i++ {
		out = append(out, strings.ToLower(strings.Join(segs[:i], "/")))
	}
	return out
}

// PlanBy is [Plan] for callers with their own item type: describe returns an
// item's target path, its number of blobs (versions) and its plaintext bytes.
// The folders above each path count towards MaxItems once per batch.
func PlanBy[T any](items []T, lim Limits, describe func(T) (path string, blobs int, bytes int64)) ([][]T, error) {
	if lim.MaxItems <= 0 {
		return nil, fmt.Errorf("plan: Limits.MaxItems is %d: it must be positive (the service recommends 250)", lim.MaxItems)
	}
	if lim.MaxBytes <= 0 {
		return nil, fmt.Errorf("plan: Limits.MaxBytes is %d: it must be positive (the service recommends 250 MB)", lim.MaxBytes)
	}
	type entry struct {
		item  T
		path  string
		blobs int
		bytes int64
	}
	sorted := make([]entry, len(items))
	for i, it := range items {
		p, n, b := describe(it)
		sorted[i] = entry{it, p, n, b}
	}
	slices.SortStableFunc(sorted, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	seen := make(map[string]string, len(sorted))
	for _, e := range sorted {
		if strings.Trim(e.path, "/") == "" {
			return nil, fmt.Errorf("plan: an item has an empty Path")
		}
		if e.blobs <= 0 {
			return nil, fmt.Errorf("plan: item %q has no Versions: give it at least its current source entry", e.path)
		}
		k := strings.ToLower(strings.Trim(e.path, "/"))
		if prev, ok := seen[k]; ok {
			return nil, fmt.Errorf("plan: items %q and %q are the same path to SharePoint, which ignores case: apply the naming policy's collision rule first", prev, e.path)
		}
		seen[k] = e.path
	}

	var out [][]T
	var cur []T
	var count int // blobs plus folders of cur
	var size int64
	folders := map[string]bool{}
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
			cur, count, size = nil, 0, 0
			clear(folders)
		}
	}
	newFolders := func(p string) []string {
		var n []string
		for _, f := range parentFolders(p) {
			if !folders[f] {
				n = append(n, f)
			}
		}
		return n
	}
	for _, e := range sorted {
		alone := e.blobs + len(parentFolders(e.path))
		if alone > lim.MaxItems || e.bytes > lim.MaxBytes {
			flush()
			out = append(out, []T{e.item})
			continue
		}
		nf := newFolders(e.path)
		if count+e.blobs+len(nf) > lim.MaxItems || size+e.bytes > lim.MaxBytes {
			flush()
			nf = newFolders(e.path)
		}
		cur = append(cur, e.item)
		for _, f := range nf {
			folders[f] = true
		}
		count += e.blobs + len(nf)
		size += e.bytes
	}
	flush()
	return out, nil
}
