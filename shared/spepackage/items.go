package spepackage

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Version is one stored version of a file: one blob in the data container.
type Version struct {
	// Label is the version label ("1.0", "1.1", "2.0"). Empty labels are
	// numbered as major versions by position: 1.0, 2.0, ...
	Label string
	// BlobName is the blob's exact name in the data container (FileValue).
	BlobName string
	// Size is the plaintext size in bytes (FileSize).
	Size       int64
	Modified   time.Time
	ModifiedBy Identity
}

// Item is a file or folder to import.
type Item struct {
	// Path is slash-separated, relative to the target's destination folder,
	// and already passed through the naming policy.
	Path   string
	Folder bool
	// Created and Modified are preserved as TimeCreated/TimeLastModified;
	// zero values are left out (SharePoint then uses the import time).
	// For a file, Modified and ModifiedBy of the current version come from
	// its last Version.
	Created time.Time
	Author  Identity
	// Modified and ModifiedBy apply to folders only.
	Modified   time.Time
	ModifiedBy Identity
	// Versions holds a file's versions, oldest first; the last one is the
	// current version. A file has at least one. Folders have none.
	Versions []Version
}

// ordered validates items and sorts them so that every folder precedes what
// it contains (segment-wise path order), which the import requires (§9.4).
func ordered(in []Item) ([]Item, error) {
	items := slices.Clone(in)
	seen := make(map[string]bool, len(items))
	for i := range items {
		it := &items[i]
		c := cleanPath(it.Path)
		if c == "" || slices.ContainsFunc(strings.Split(strings.Trim(it.Path, "/"), "/"), func(s string) bool {
			return s == "" || s == "." || s == ".."
		}) {
			return nil, fmt.Errorf("item %d: Path %q is not a relative path below the destination (empty, \".\" or \"..\" segment)", i, it.Path)
		}
		k := strings.ToLower(c)
		if seen[k] {
			return nil, fmt.Errorf("item %d: Path %q appears twice (SharePoint ignores case): resolve collisions with the naming policy first", i, it.Path)
		}
		seen[k] = true
		if it.Folder {
			if len(it.Versions) != 0 {
				return nil, fmt.Errorf("item %q: a folder cannot have Versions", it.Path)
			}
			continue
		}
		if len(it.Versions) == 0 {
			return nil, fmt.Errorf("item %q: a file needs at least one Version", it.Path)
		}
		if err := checkVersions(it); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(items, func(a, b Item) int {
		return slices.Compare(strings.Split(cleanPath(a.Path), "/"), strings.Split(cleanPath(b.Path), "/"))
	})
	return items, nil
}

func checkVersions(it *Item) error {
	prevMaj, prevMin := -1, -1
	for i, v := range it.Versions {
		if v.BlobName == "" {
			return fmt.Errorf("item %q version %d: BlobName is empty", it.Path, i)
		}
		if v.Size < 0 {
			return fmt.Errorf("item %q version %d: Size %d is negative", it.Path, i, v.Size)
		}
		if v.Label == "" {
			continue
		}
		maj, min, ok := parseLabel(v.Label)
		if !ok {
			return fmt.Errorf("item %q version %d: Label %q is not of the form major.minor", it.Path, i, v.Label)
		}
		if maj < prevMaj || (maj == prevMaj && min <= prevMin) {
			return fmt.Errorf("item %q version %d: Label %q does not increase on the previous version", it.Path, i, v.Label)
		}
		prevMaj, prevMin = maj, min
	}
	return nil
}

func parseLabel(s string) (maj, min int, ok bool) {
	a, b, found := strings.Cut(s, ".")
	if !found {
		return 0, 0, false
	}
	maj, err1 := strconv.Atoi(a)
	min, err2 := strconv.Atoi(b)
	return maj, min, err1 == nil && err2 == nil && maj >= 0 && min >= 0 && (maj > 0 || min > 0)
}

func label(it *Item, i int) string {
	if l := it.Versions[i].Label; l != "" {
		return l
	}
	return strconv.Itoa(i+1) + ".0"
}
