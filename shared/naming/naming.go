// Package naming decides, for every source path of a migration, the
// SharePoint path it is imported under, or that it is skipped, and why.
//
// The one entry point is [Mapper.Map]. It applies SharePoint's rules in a
// fixed order, so that the same source under the same [Policy] always yields
// the same [Decision]:
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
// for failures of Claims; every naming problem is a Decision.
func (m *Mapper) Map(ctx context.Context, sourcePath string, size int64) (Decision, error) {
	d := Decision{Source: sourcePath}
	if size > m.p.MaxFileSize {
		return skip(d, []note{{RuleFileTooLarge, fmt.Sprintf("file is %d bytes, over the migration API's limit of %d bytes (%s)", size, m.p.MaxFileSize, RuleFileTooLarge)}}), nil
	}

	segs := strings.Split(sourcePath, "/")
	var notes []note
	// Empty segments carry nothing; a trailing one would make the path a folder.
	var kept []int
	for i, s := range segs {
		if s == "" {
			continue
		}
		kept = append(kept, i)
	}
	if len(kept) != len(segs) {
		n := note{RuleEmptySegment, fmt.Sprintf("path %q has empty segments, which SharePoint cannot name; dropped (%s)", sourcePath, RuleEmptySegment)}
		if len(kept) == 0 || kept[len(kept)-1] != len(segs)-1 || m.p.Invalid == SkipInvalid {
			if len(kept) == 0 || kept[len(kept)-1] != len(segs)-1 {
				n.text = fmt.Sprintf("path %q does not end in a file name (%s)", sourcePath, RuleEmptySegment)
			} else {
				n.text = fmt.Sprintf("path %q has empty segments, which SharePoint cannot name (%s)", sourcePath, RuleEmptySegment)
			}
			return skip(d, []note{n}), nil
		}
		notes = append(notes, n)
	}

	parent := ""
	for k, i := range kept[:len(kept)-1] {
		src := strings.Join(segs[:i+1], "/")
		f, err := m.folder(ctx, src, parent, segs[i], k == 0)
		if err != nil {
			return Decision{}, err
		}
		notes = append(notes, f.notes...)
		if f.skip {
			return skip(d, notes), nil
		}
		d.Folders = append(d.Folders, Folder{Source: src, Target: f.target})
		parent = f.target
	}

	name, fileNotes, bad := m.cleanSegment(segs[len(segs)-1], false, false)
	notes = append(notes, fileNotes...)
	if bad {
		d.Folders = nil
		return skip(d, notes), nil
	}
	target, claimNotes, ok, err := m.claim(ctx, parent, name, "file:"+sourcePath, false, "file", sourcePath)
	if err != nil {
		return Decision{}, err
	}
	notes = append(notes, claimNotes...)
	if !ok {
		d.Folders = nil
		return skip(d, notes), nil
	}
	d.Target = target
	d.Action = Keep
	if target != sourcePath || len(notes) > 0 {
		d.Action = Rename
	}
	if d.Action == Keep {
		d.Reason = "name accepted as is"
		return d, nil
	}
	d.Rules, d.Reason = summarise(notes)
	if d.Reason == "" {
		d.Reason = "renamed"
	}
	return d, nil
}

// folder resolves one source folder, once per Mapper.
func (m *Mapper) folder(ctx context.Context, src, parentTarget, seg string, root bool) (folderResult, error) {
	m.mu.Lock()
	f, ok := m.folders[src]
	m.mu.Unlock()
	if ok {
		return f, nil
	}
	name, notes, bad := m.cleanSegment(seg, true, root)
	if bad {
		f = folderResult{notes: notes, skip: true}
	} else {
		target, claimNotes, ok, err := m.claim(ctx, parentTarget, name, "folder:"+src, true, "folder", src)
		if err != nil {
			return folderResult{}, err
		}
		f = folderResult{target: target, notes: append(notes, claimNotes...), skip: !ok}
	}
	m.mu.Lock()
	m.folders[src] = f
	m.mu.Unlock()
	return f, nil
}

// maxCollisionSuffix bounds the "(n)" search; reaching it means something
// generates names pathologically, and skipping with a reason beats looping.
const maxCollisionSuffix = 10000

// claim claims parent/name for owner, numbering it on collision. ok is false
// when the item must be skipped (reasons in notes).
func (m *Mapper) claim(ctx context.Context, parent, name, owner string, folder bool, kind, src string) (target string, notes []note, ok bool, err error) {
	join := func(n string) string {
		if parent == "" {
			return n
		}
		return parent + "/" + n
	}
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
		got, err := m.claims.Claim(ctx, m.migrationID, Key(path), owner)
		if err != nil {
			return "", nil, false, fmt.Errorf("naming: claim %q for %s %q: %w", path, kind, src, err)
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
