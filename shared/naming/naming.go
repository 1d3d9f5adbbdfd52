// Package naming decides, for every source path of a migration, the
// SharePoint path it is imported under, or that it is skipped, and why.
//
// The entry points are [Mapper.MapPage], for a page of files (its claims go
// out level by level in batches, see [BatchClaims]), and [Mapper.Map], for
// one. They apply SharePoint's rules in a fixed order, so that the same
// source under the same [Policy] always yields the same [Decision]:
//
//  1. files over the size limit (15 GB by default) are skipped;
//  2. each path segment is checked on its own: invalid UTF-8, the characters
//     " * : < > ? / \ | and control characters, leading or trailing spaces,
//     empty and dot-only segments, reserved names (CON, PRN, AUX, NUL,
//     COM0-9, LPT0-9, .lock, desktop.ini, names starting with ~$, names
//     containing _vti_, and a folder named "forms" at the library root),
//     names over 255 characters. Under [ReplaceInvalid] each is repaired
//     (see below), under [SkipInvalid] the item is skipped;
//  3. folders, then the file, claim their case-folded target path for the
//     migration through [Claims]: SharePoint ignores case, Blob Storage does
//     not. A path already claimed by another source path collides: the later
//     one is renamed "name (2).ext" ([RenameCollisions]) or skipped
//     ([SkipCollisions]);
//  4. a path whose decoded length, with [Policy.LibraryURL], is over 400
//     characters is skipped.
//
// Repairs: a refused character becomes the replacement character; leading
// and trailing spaces are trimmed; a reserved name gets the replacement
// character in front ("_CON", "_desktop.ini", "_forms"), "~$x" becomes "_$x",
// "_vti_" loses its leading underscore; an over-long name is cut to 255
// characters keeping its extension; empty segments ("a//b") are dropped.
//
// Folder decisions are remembered per source folder, so every file under a
// renamed folder lands in the identically renamed folder, across pages and
// re-runs, because the claims are persistent and a claim owned by the same
// source path is not a collision.
package naming

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
)

// Action is what happens to one source item.
type Action string

const (
	Keep   Action = "keep"   // imported under its own name
	Rename Action = "rename" // imported under a different name
	Skip   Action = "skip"   // not imported
)

// Rule names one SharePoint rule a decision applied. The values are stable:
// they are stored with per-item results.
type Rule string

const (
	RuleInvalidCharacter Rule = "invalid-character"      // " * : < > ? / \ | or a control character
	RuleInvalidEncoding  Rule = "invalid-utf8"           // bytes that are not UTF-8
	RuleSpaces           Rule = "leading-trailing-space" // spaces at either end of a name
	RuleEmptySegment     Rule = "empty-segment"          // "a//b", "/a", "." or ".."
	RuleReservedName     Rule = "reserved-name"          // CON, PRN, …, .lock, desktop.ini, ~$…, _vti_
	RuleFormsFolder      Rule = "root-forms-folder"      // a folder named "forms" at the library root
	RuleSegmentTooLong   Rule = "segment-too-long"       // a name over 255 characters
	RulePathTooLong      Rule = "path-too-long"          // a decoded path over 400 characters
	RuleCaseCollision    Rule = "case-collision"         // same path as another once case is ignored
	RuleFileTooLarge     Rule = "file-too-large"         // over the migration API's file size limit
)

// Decision is the outcome for one source path.
type Decision struct {
	// Source is the source path as given to Map.
	Source string `json:"source"`
	// Target is the slash-separated path relative to the library root;
	// empty when Action is Skip.
	Target string `json:"target,omitempty"`
	Action Action `json:"action"`
	// Rules lists every rule that applied, in the order applied; empty for Keep.
	Rules []Rule `json:"rules,omitempty"`
	// Reason is a human-readable account naming each rule, fit for a report.
	Reason string `json:"reason"`
	// Folders are the target's parent folders, outermost first; nil when
	// skipped. Each is reported identically for every file beneath it.
	Folders []Folder `json:"folders,omitempty"`
}

// Folder is one folder a file's target path implies.
type Folder struct {
	// Source is the source folder path ("a/b"), Target its library-relative
	// target path ("a/b (2)").
	Source string `json:"source"`
	Target string `json:"target"`
}

// Claims is the migration-wide memory that makes collision detection work
// across pages, processes and re-runs.
//
// Claim inserts key for migrationID with the given owner if the key is
// absent, atomically, and returns the owner now holding the key: owner
// itself when the insert won or when owner already held it. Keys are
// case-folded library-relative paths and may contain any character,
// including "/", "#" and "?" (a Table Storage implementation must encode
// them, e.g. as a hash, and keep the key in a property). Owners are
// "file:<source path>" or "folder:<source folder path>".
type Claims interface {
	Claim(ctx context.Context, migrationID, key, owner string) (existingOwner string, err error)
}

// BatchClaims is a [Claims] that claims many keys in one call, with the
// result of claiming them one by one in order: owners[i] is the holder of
// keys[i] afterwards. [Mapper.MapPage] uses it when Claims provides it.
type BatchClaims interface {
	ClaimMany(ctx context.Context, migrationID string, keys, owners []string) ([]string, error)
}

// Key is the claim key for a target path: the path with case folded the way
// SharePoint compares names.
func Key(target string) string {
	return strings.Map(func(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }, target)
}

// Mapper applies one migration's policy. It remembers the folders it has
// resolved, so create one per page or per worker; the persistent truth lives
// in Claims. It is safe for concurrent use.
type Mapper struct {
	migrationID string
	p           Policy
	claims      Claims

	mu      sync.Mutex
	folders map[string]folderResult
}

type folderResult struct {
	target string
	notes  []note
	skip   bool
}

// note is one applied rule with its human-readable account.
type note struct {
	rule Rule
	text string
}

// NewMapper returns a Mapper for one migration. It fails when the policy is
// invalid or claims is nil.
func NewMapper(migrationID string, p Policy, claims Claims) (*Mapper, error) {
	if migrationID == "" {
		return nil, errors.New("naming: migration id is empty")
	}
	if claims == nil {
		return nil, errors.New("naming: claims is nil: use a Table Storage implementation, or NewMemoryClaims for a single-process run")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Mapper{migrationID: migrationID, p: p.withDefaults(), claims: claims, folders: map[string]folderResult{}}, nil
}

// Policy returns the policy in force, with defaults filled in.
func (m *Mapper) Policy() Policy { return m.p }

// Map decides the SharePoint path of the file at sourcePath (slash-separated,
// relative to the source root) whose size is size bytes. The error is only
// for failures of Claims; every naming problem is a Decision. It is
// MapPage of one entry.
func (m *Mapper) Map(ctx context.Context, sourcePath string, size int64) (Decision, error) {
	ds, err := m.MapPage(ctx, []Entry{{Path: sourcePath, Size: size}})
	if err != nil {
		return Decision{}, err
	}
	return ds[0], nil
}

// Entry is one source file to map.
type Entry struct {
	Path string
	Size int64
}

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
	type entryState struct {
		done     bool
		notes    []note
		segs     []string
		folders  []string // source folder paths, outermost first
		fileName string
		file     *claimResult
	}
	out := make([]Decision, len(entries))
	es := make([]entryState, len(entries))
	depth := 0
	for i, e := range entries {
		out[i] = Decision{Source: e.Path}
		st := &es[i]
		if e.Size > m.p.MaxFileSize {
			out[i] = skip(out[i], []note{{RuleFileTooLarge, fmt.Sprintf("file is %d bytes, over the migration API's limit of %d bytes (%s)", e.Size, m.p.MaxFileSize, RuleFileTooLarge)}})
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
			if len(kept) == 0 || kept[len(kept)-1] != len(segs)-1 || m.p.Invalid == SkipInvalid {
				if len(kept) == 0 || kept[len(kept)-1] != len(segs)-1 {
					n.text = fmt.Sprintf("path %q does not end in a file name (%s)", e.Path, RuleEmptySegment)
				} else {
					n.text = fmt.Sprintf("path %q has empty segments, which SharePoint cannot name (%s)", e.Path, RuleEmptySegment)
				}
				out[i] = skip(out[i], []note{n})
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

	// Folder results: this page's, on top of the Mapper's memory.
	fres := map[string]folderResult{}
	lookup := func(src string) (folderResult, bool) {
		if f, ok := fres[src]; ok {
			return f, true
		}
		m.mu.Lock()
		f, ok := m.folders[src]
		m.mu.Unlock()
		return f, ok
	}
	for d := 0; d <= depth; d++ {
		var props []*proposal
		proposed := map[string]bool{}
		for i := range es {
			st := &es[i]
			if st.done || len(st.folders) < d {
				continue
			}
			parent := ""
			if d > 0 {
				pf, ok := lookup(st.folders[d-1])
				if !ok || pf.skip {
					continue // skipped with its folder when assembled
				}
				parent = pf.target
			}
			if d < len(st.folders) {
				src := st.folders[d]
				if _, ok := lookup(src); ok || proposed[src] {
					continue
				}
				proposed[src] = true
				name, notes, bad := m.cleanSegment(st.segs[d], true, d == 0)
				if bad {
					fres[src] = folderResult{notes: notes, skip: true}
					continue
				}
				props = append(props, &proposal{parent: parent, name: name, owner: "folder:" + src, folder: true, kind: "folder", src: src, clean: notes})
				continue
			}
			name, notes, bad := m.cleanSegment(st.fileName, false, false)
			st.file = &claimResult{notes: notes}
			if bad {
				st.file.bad = true
				continue
			}
			props = append(props, &proposal{parent: parent, name: name, owner: "file:" + entries[i].Path, kind: "file", src: entries[i].Path, result: st.file})
		}
		if err := m.claimAll(ctx, props); err != nil {
			return nil, err
		}
		for _, pr := range props {
			if pr.folder {
				fres[pr.src] = folderResult{target: pr.target, notes: append(pr.clean, pr.notes...), skip: !pr.ok}
			} else {
				pr.result.target, pr.result.ok = pr.target, pr.ok
				pr.result.notes = append(pr.result.notes, pr.notes...)
			}
		}
	}
	m.mu.Lock()
	for src, f := range fres {
		m.folders[src] = f
	}
	m.mu.Unlock()

	for i := range es {
		st := &es[i]
		if st.done {
			continue
		}
		d, notes := out[i], st.notes
		skipped := false
		for _, src := range st.folders {
			f, _ := lookup(src)
			notes = append(notes, f.notes...)
			if f.skip {
				skipped = true
				break
			}
			d.Folders = append(d.Folders, Folder{Source: src, Target: f.target})
		}
		if skipped {
			out[i] = skip(d, notes)
			continue
		}
		notes = append(notes, st.file.notes...)
		if st.file.bad || !st.file.ok {
			out[i] = skip(d, notes)
			continue
		}
		d.Target = st.file.target
		d.Action = Keep
		if d.Target != entries[i].Path || len(notes) > 0 {
			d.Action = Rename
		}
		if d.Action == Keep {
			d.Reason = "name accepted as is"
			out[i] = d
			continue
		}
		d.Rules, d.Reason = summarise(notes)
		if d.Reason == "" {
			d.Reason = "renamed"
		}
		out[i] = d
	}
	return out, nil
}

// claimResult is a file's naming outcome: notes holds the segment's repairs,
// then the claim's.
type claimResult struct {
	target string
	notes  []note
	bad    bool // the name itself is refused
	ok     bool
}

// proposal is one name to claim under an already-resolved parent.
type proposal struct {
	parent, name, owner string
	folder              bool
	kind, src           string
	clean               []note       // a folder's segment repairs
	result              *claimResult // a file's outcome

	target string
	notes  []note
	ok     bool
}

// claimAll claims every proposal's name as it is, in one batch, then
// renames the losers one by one, in order.
func (m *Mapper) claimAll(ctx context.Context, props []*proposal) error {
	var keys, owners []string
	var asked []*proposal
	for _, pr := range props {
		path := joinPath(pr.parent, pr.name)
		if l := utf16Len(m.p.LibraryURL) + 1 + utf16Len(path); l > MaxPathLength {
			// Too long even unnumbered: claim nothing (claim says why).
			continue
		}
		keys = append(keys, Key(path))
		owners = append(owners, pr.owner)
		asked = append(asked, pr)
	}
	holders := map[*proposal]string{}
	if len(keys) > 0 {
		var got []string
		var err error
		if bc, ok := m.claims.(BatchClaims); ok {
			got, err = bc.ClaimMany(ctx, m.migrationID, keys, owners)
			if err == nil && len(got) != len(keys) {
				err = fmt.Errorf("%d holders for %d keys", len(got), len(keys))
			}
			if err != nil {
				return fmt.Errorf("naming: claim %d names: %w", len(keys), err)
			}
		} else {
			got = make([]string, len(keys))
			for i := range keys {
				if got[i], err = m.claims.Claim(ctx, m.migrationID, keys[i], owners[i]); err != nil {
					return fmt.Errorf("naming: claim %q for %s %q: %w", joinPath(asked[i].parent, asked[i].name), asked[i].kind, asked[i].src, err)
				}
			}
		}
		for i, pr := range asked {
			holders[pr] = got[i]
		}
	}
	for _, pr := range props {
		var err error
		pr.target, pr.notes, pr.ok, err = m.claim(ctx, pr.parent, pr.name, pr.owner, pr.folder, pr.kind, pr.src, holders[pr])
		if err != nil {
			return err
		}
	}
	return nil
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "/" + name
}

// maxCollisionSuffix bounds the "(n)" search; reaching it means something
// generates names pathologically, and skipping with a reason beats looping.
const maxCollisionSuffix = 10000

// claim claims parent/name for owner, numbering it on collision. ok is false
// when the item must be skipped (reasons in notes).
// known, when not empty, is the holder of the unnumbered name, already
// claimed in a batch.
func (m *Mapper) claim(ctx context.Context, parent, name, owner string, folder bool, kind, src, known string) (target string, notes []note, ok bool, err error) {
	join := func(n string) string { return joinPath(parent, n) }
	first := join(name)
	holder := "" // who holds the unnumbered name, for the reason text
	for n := 1; n <= maxCollisionSuffix; n++ {
		cand := name
		if n > 1 {
			cand = numbered(name, n, folder)
		}
		path := join(cand)
		if l := utf16Len(m.p.LibraryURL) + 1 + utf16Len(path); l > MaxPathLength {
			if holder != "" {
				notes = append(notes, note{RuleCaseCollision, fmt.Sprintf("%s %q collides with %s once case is ignored (%s)", kind, first, describeOwner(holder), RuleCaseCollision)})
			}
			notes = append(notes, note{RulePathTooLong, fmt.Sprintf("%s path %q is %d characters with the library URL, over SharePoint's limit of %d (%s)", kind, path, l, MaxPathLength, RulePathTooLong)})
			return "", notes, false, nil
		}
		got := known
		if n > 1 || known == "" {
			if got, err = m.claims.Claim(ctx, m.migrationID, Key(path), owner); err != nil {
				return "", nil, false, fmt.Errorf("naming: claim %q for %s %q: %w", path, kind, src, err)
			}
		}
		if got == owner {
			if n > 1 {
				notes = append(notes, note{RuleCaseCollision, fmt.Sprintf("%s %q collides with %s once case is ignored; renamed %q (%s)", kind, first, describeOwner(holder), cand, RuleCaseCollision)})
			}
			return path, notes, true, nil
		}
		if n == 1 {
			holder = got
		}
		if m.p.Collisions == SkipCollisions {
			notes = append(notes, note{RuleCaseCollision, fmt.Sprintf("%s %q collides with %s once case is ignored; skipped (%s)", kind, first, describeOwner(holder), RuleCaseCollision)})
			return "", notes, false, nil
		}
	}
	notes = append(notes, note{RuleCaseCollision, fmt.Sprintf("%s %q collides with %s and %d numbered variants; skipped (%s)", kind, first, describeOwner(holder), maxCollisionSuffix, RuleCaseCollision)})
	return "", notes, false, nil
}

func describeOwner(owner string) string {
	if kind, src, ok := strings.Cut(owner, ":"); ok && (kind == "file" || kind == "folder") {
		return fmt.Sprintf("source %s %q", kind, src)
	}
	return fmt.Sprintf("%q", owner)
}

// numbered returns "stem (n).ext" for files and "name (n)" for folders,
// shortening the stem if the result would exceed the segment limit.
func numbered(name string, n int, folder bool) string {
	stem, ext := name, ""
	if !folder {
		stem, ext = splitExt(name)
	}
	suffix := fmt.Sprintf(" (%d)", n)
	stem = truncateUTF16(stem, MaxSegmentLength-utf16Len(suffix)-utf16Len(ext))
	stem = strings.TrimRight(stem, " ")
	return stem + suffix + ext
}

// splitExt splits at the last dot, but a leading dot (".profile") is part
// of the stem.
func splitExt(name string) (stem, ext string) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return name, ""
	}
	return name[:i], name[i:]
}

func skip(d Decision, notes []note) Decision {
	d.Action = Skip
	d.Target = ""
	d.Folders = nil
	d.Rules, d.Reason = summarise(notes)
	return d
}

func summarise(notes []note) ([]Rule, string) {
	var rules []Rule
	var texts []string
	seen := map[Rule]bool{}
	for _, n := range notes {
		if !seen[n.rule] {
			seen[n.rule] = true
			rules = append(rules, n.rule)
		}
		texts = append(texts, n.text)
	}
	return rules, strings.Join(texts, "; ")
}

// MemoryClaims is an in-process Claims for tests and single-process runs.
// Its memory ends with the process, so a resumed migration needs a
// persistent implementation to keep its decisions.
type MemoryClaims struct {
	mu sync.Mutex
	m  map[[2]string]string
}

// NewMemoryClaims returns an empty MemoryClaims.
func NewMemoryClaims() *MemoryClaims { return &MemoryClaims{m: map[[2]string]string{}} }

// Claim implements Claims.
func (c *MemoryClaims) Claim(ctx context.Context, migrationID, key, owner string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2]string{migrationID, key}
	if got, ok := c.m[k]; ok {
		return got, nil
	}
	c.m[k] = owner
	return owner, nil
}

// ClaimMany implements [BatchClaims].
func (c *MemoryClaims) ClaimMany(ctx context.Context, migrationID string, keys, owners []string) ([]string, error) {
	if len(keys) != len(owners) {
		return nil, fmt.Errorf("naming: %d keys but %d owners", len(keys), len(owners))
	}
	out := make([]string, len(keys))
	for i := range keys {
		var err error
		if out[i], err = c.Claim(ctx, migrationID, keys[i], owners[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
