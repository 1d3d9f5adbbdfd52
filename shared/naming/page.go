package naming

import (
	"context"
	"fmt"
	"strings"
)

// MapPage decides the SharePoint paths of a page of files, one Decision per
// entry, in order. It claims the page's names level by level (the
// outermost folders first, then what they hold), each level in one call of
// [BatchClaims.ClaimMany] when claims provides it, so a page costs a few
// round trips instead of one per file and folder. A name whose claim is
// lost is then renamed one candidate at a time.
//
// Within a page, names that are free as they are win over the numbered
// renames of colliding names ("a (2).txt" keeps its name and the second
// "A.txt" becomes "A (3).txt"), and earlier entries win over later ones;
// the decisions are deterministic for the same page, also when it is
// mapped again after a crash or concurrently, because claims are
// persistent and a claim owned by the same source path is not a
// collision.
func (m *Mapper) MapPage(ctx context.Context, entries []Entry) ([]Decision, error) {
	pg := &page{m: m, entries: entries, out: make([]Decision, len(entries)), es: make([]entryState, len(entries)), fres: map[string]folderResult{}}
	depth := pg.split()
	for d := 0; d <= depth; d++ {
		if err := pg.claimLevel(ctx, d); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	for src, f := range pg.fres {
		m.folders[src] = f
	}
	m.mu.Unlock()
	for i := range pg.es {
		if !pg.es[i].done {
			pg.out[i] = pg.assemble(i)
		}
	}
	return pg.out, nil
}

// page is one MapPage call's work.
type page struct {
	m       *Mapper
	entries []Entry
	out     []Decision
	es      []entryState
	// fres holds this page's folder results, on top of the Mapper's memory.
	fres map[string]folderResult
}

type entryState struct {
	done     bool
	notes    []note
	segs     []string
	folders  []string // source folder paths, outermost first
	fileName string
	file     *claimResult
}

// split cuts every entry into its folders and file name, deciding at once
// the entries that cannot be named at all; it returns the deepest folder
// level.
func (pg *page) split() int {
	depth := 0
	for i, e := range pg.entries {
		pg.out[i] = Decision{Source: e.Path}
		st := &pg.es[i]
		if e.Size > pg.m.p.MaxFileSize {
			pg.out[i] = skip(pg.out[i], []note{{RuleFileTooLarge, fmt.Sprintf("file is %d bytes, over the migration API's limit of %d bytes (%s)", e.Size, pg.m.p.MaxFileSize, RuleFileTooLarge)}})
			st.done = true
			continue
		}
		segs := strings.Split(e.Path, "/")
		// Empty segments carry nothing; a trailing one would make the path a folder.
		var kept []int
		for j, sg := range segs {
			if sg != "" {
				kept = append(kept, j)
			}
		}
		if len(kept) != len(segs) {
			n := note{RuleEmptySegment, fmt.Sprintf("path %q has empty segments, which SharePoint cannot name; dropped (%s)", e.Path, RuleEmptySegment)}
			noFile := len(kept) == 0 || kept[len(kept)-1] != len(segs)-1
			if noFile || pg.m.p.Invalid == SkipInvalid {
				n.text = fmt.Sprintf("path %q has empty segments, which SharePoint cannot name (%s)", e.Path, RuleEmptySegment)
				if noFile {
					n.text = fmt.Sprintf("path %q does not end in a file name (%s)", e.Path, RuleEmptySegment)
				}
				pg.out[i] = skip(pg.out[i], []note{n})
				st.done = true
				continue
			}
			st.notes = append(st.notes, n)
		}
		for _, j := range kept[:len(kept)-1] {
			st.folders = append(st.folders, strings.Join(segs[:j+1], "/"))
			st.segs = append(st.segs, segs[j])
		}
		st.fileName = segs[len(segs)-1]
		depth = max(depth, len(st.folders))
	}
	return depth
}

func (pg *page) lookup(src string) (folderResult, bool) {
	if f, ok := pg.fres[src]; ok {
		return f, true
	}
	pg.m.mu.Lock()
	f, ok := pg.m.folders[src]
	pg.m.mu.Unlock()
	return f, ok
}

// claimLevel proposes and claims the names at folder depth d: the folders
// at that depth not yet decided, and the files directly in a folder of
// depth d-1, in one claimAll. A child is proposed only once its parent's
// target is known.
func (pg *page) claimLevel(ctx context.Context, d int) error {
	var props []*proposal
	proposed := map[string]bool{}
	for i := range pg.es {
		st := &pg.es[i]
		if st.done || len(st.folders) < d {
			continue
		}
		parent := ""
		if d > 0 {
			pf, ok := pg.lookup(st.folders[d-1])
			if !ok || pf.skip {
				continue // skipped with its folder when assembled
			}
			parent = pf.target
		}
		if d < len(st.folders) {
			src := st.folders[d]
			if _, ok := pg.lookup(src); ok || proposed[src] {
				continue
			}
			proposed[src] = true
			name, notes, bad := pg.m.cleanSegment(st.segs[d], true, d == 0)
			if bad {
				pg.fres[src] = folderResult{notes: notes, skip: true}
				continue
			}
			props = append(props, &proposal{parent: parent, name: name, owner: "folder:" + src, folder: true, kind: "folder", src: src, clean: notes})
			continue
		}
		name, notes, bad := pg.m.cleanSegment(st.fileName, false, false)
		st.file = &claimResult{notes: notes}
		if bad {
			st.file.bad = true
			continue
		}
		props = append(props, &proposal{parent: parent, name: name, owner: "file:" + pg.entries[i].Path, kind: "file", src: pg.entries[i].Path, result: st.file})
	}
	if err := pg.m.claimAll(ctx, props); err != nil {
		return err
	}
	for _, pr := range props {
		if pr.folder {
			pg.fres[pr.src] = folderResult{target: pr.target, notes: append(pr.clean, pr.notes...), skip: !pr.ok}
		} else {
			pr.result.target, pr.result.ok = pr.target, pr.ok
			pr.result.notes = append(pr.result.notes, pr.notes...)
		}
	}
	return nil
}

// assemble turns entry i's folder and file results into its decision.
func (pg *page) assemble(i int) Decision {
	st := &pg.es[i]
	d, notes := pg.out[i], st.notes
	for _, src := range st.folders {
		f, _ := pg.lookup(src)
		notes = append(notes, f.notes...)
		if f.skip {
			return skip(d, notes)
		}
		d.Folders = append(d.Folders, Folder{Source: src, Target: f.target})
	}
	notes = append(notes, st.file.notes...)
	if st.file.bad || !st.file.ok {
		return skip(d, notes)
	}
	d.Target = st.file.target
	if d.Target == pg.entries[i].Path && len(notes) == 0 {
		d.Action, d.Reason = Keep, "name accepted as is"
		return d
	}
	d.Action = Rename
	d.Rules, d.Reason = summarise(notes)
	if d.Reason == "" {
		d.Reason = "renamed"
	}
	return d
}
