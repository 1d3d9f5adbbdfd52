package scan

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/spemigrate/spemigrate/shared/naming"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/staging"
)

// scanner is one Run's running totals.
type scanner struct {
	r      request.Request
	o      Options
	mapper *naming.Mapper
	rep    *Report
	exts   map[string]*Extension
}

// page names and plans one listing page, as the engine's plan step does.
func (s *scanner) page(ctx context.Context, entries []source.Entry) error {
	files := group(entries, s.o.MaxVersions)
	if len(files) == 0 {
		return nil
	}
	es := make([]naming.Entry, len(files))
	for i, f := range files {
		es[i] = naming.Entry{Path: destPath(s.r, f[len(f)-1].Path), Size: f[len(f)-1].Size}
	}
	ds, err := s.mapper.MapPage(ctx, es)
	if err != nil {
		return fmt.Errorf("scan: naming: %w", err)
	}
	var items []staging.Item
	for i, d := range ds {
		if s.count(files[i], d) {
			items = append(items, staging.Item{Path: d.Target, Versions: files[i]})
		}
	}
	if len(items) == 0 {
		return nil
	}
	batches, err := staging.Plan(items, s.rep.Limits)
	if err != nil {
		return fmt.Errorf("scan: plan: %w", err)
	}
	s.rep.Packages += len(batches)
	s.rep.Jobs += len(batches)
	return nil
}

// group gathers the versions of each file (consecutive entries of one
// path, oldest first), keeping the newest max of them (max < 0: all).
func group(entries []source.Entry, max int) [][]source.Entry {
	var out [][]source.Entry
	for i := 0; i < len(entries); {
		j := i + 1
		for j < len(entries) && entries[j].Path == entries[i].Path {
			j++
		}
		vs := entries[i:j]
		if max > 0 && len(vs) > max {
			vs = vs[len(vs)-max:]
		}
		out = append(out, vs)
		i = j
	}
	return out
}

// count adds one file and its naming decision to the report and says
// whether the file would be imported.
func (s *scanner) count(versions []source.Entry, d naming.Decision) bool {
	rep := s.rep
	cur := versions[len(versions)-1]
	rep.Files++
	rep.Versions += len(versions)
	var bytes int64
	for _, v := range versions {
		bytes += v.Size
	}
	rep.Bytes += bytes
	for _, rule := range d.Rules {
		rep.Rules[rule]++
	}
	ch := Change{Source: cur.Path, Target: d.Target, Rules: d.Rules, Reason: d.Reason}
	target := d.Target
	switch d.Action {
	case naming.Skip:
		rep.Skipped++
		rep.Skips = s.list(rep.Skips, ch)
		target = destPath(s.r, cur.Path)
	case naming.Rename:
		rep.Renamed++
		rep.Renames = s.list(rep.Renames, ch)
	default:
		rep.Kept++
	}
	f := File{Source: cur.Path, Target: d.Target, Size: cur.Size, PathLength: utf16Len(s.o.LibraryURL + "/" + target)}
	rep.Largest = keepTop(rep.Largest, f, s.o.Top, func(a, b File) bool { return a.Size > b.Size })
	rep.LongestPaths = keepTop(rep.LongestPaths, f, s.o.Top, func(a, b File) bool { return a.PathLength > b.PathLength })
	x := s.exts[extOf(cur.Path)]
	if x == nil {
		x = &Extension{Ext: extOf(cur.Path)}
		s.exts[x.Ext] = x
	}
	x.Files++
	x.Bytes += bytes
	if d.Action == naming.Skip {
		return false
	}
	rep.ImportBytes += bytes
	for _, v := range versions {
		rep.Estimate.add(v.Size)
	}
	return true
}

func (s *scanner) list(l []Change, c Change) []Change {
	if len(l) >= s.o.MaxListed {
		s.rep.Truncate = true
		return l
	}
	return append(l, c)
}

// finish sorts the histogram and notes what the scan could not check.
func (s *scanner) finish() {
	rep := s.rep
	for _, x := range s.exts {
		rep.Extensions = append(rep.Extensions, *x)
	}
	slices.SortFunc(rep.Extensions, func(a, b Extension) int {
		return cmp.Or(cmp.Compare(b.Files, a.Files), cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(a.Ext, b.Ext))
	})
	if rep.Largest == nil {
		rep.Largest, rep.LongestPaths, rep.Extensions = []File{}, []File{}, []Extension{}
	}
	rep.Estimate.finish(s.o.Rates)
	rep.Notes = []string{
		fmt.Sprintf("path lengths count the library URL as %d characters (%s)", utf16Len(s.o.LibraryURL), s.o.LibraryURL),
		"not known to a scan: files an incremental re-run would leave out as unchanged, and what the target already holds",
		"the estimate is the service's ingest time at the published rates; staging and throttling add to it",
	}
}
