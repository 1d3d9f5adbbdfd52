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

// Limits bound one package. Every version counts as an item (§6.8).
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
	Blobs int   // versions in the batch: the item count the limits apply to
	Bytes int64 // plaintext bytes
}

// Plan cuts items into batches: in path order, each batch within lim, and a
// file too large (or with too many versions) for any batch alone in its own.
// All versions of a file stay in one batch, as the service requires. The
// same items and limits always give the same batches.
func Plan(items []Item, lim Limits) ([]Batch, error) {
	if lim.MaxItems <= 0 {
		return nil, fmt.Errorf("plan: Limits.MaxItems is %d: it must be positive (the service recommends 250)", lim.MaxItems)
	}
	if lim.MaxBytes <= 0 {
		return nil, fmt.Errorf("plan: Limits.MaxBytes is %d: it must be positive (the service recommends 250 MB)", lim.MaxBytes)
	}
	sorted := slices.Clone(items)
	slices.SortStableFunc(sorted, func(a, b Item) int { return strings.Compare(a.Path, b.Path) })
	seen := make(map[string]string, len(sorted))
	for _, it := range sorted {
		if strings.Trim(it.Path, "/") == "" {
			return nil, fmt.Errorf("plan: an item has an empty Path")
		}
		if len(it.Versions) == 0 {
			return nil, fmt.Errorf("plan: item %q has no Versions: give it at least its current source entry", it.Path)
		}
		k := strings.ToLower(strings.Trim(it.Path, "/"))
		if prev, ok := seen[k]; ok {
			return nil, fmt.Errorf("plan: items %q and %q are the same path to SharePoint, which ignores case: apply the naming policy's collision rule first", prev, it.Path)
		}
		seen[k] = it.Path
	}

	var out []Batch
	var cur Batch
	flush := func() {
		if len(cur.Items) > 0 {
			out = append(out, cur)
			cur = Batch{}
		}
	}
	for _, it := range sorted {
		n, size := len(it.Versions), it.Bytes()
		if n > lim.MaxItems || size > lim.MaxBytes {
			flush()
			cur = Batch{Items: []Item{it}, Blobs: n, Bytes: size}
			flush()
			continue
		}
		if cur.Blobs+n > lim.MaxItems || cur.Bytes+size > lim.MaxBytes {
			flush()
		}
		cur.Items = append(cur.Items, it)
		cur.Blobs += n
		cur.Bytes += size
	}
	flush()
	return out, nil
}
