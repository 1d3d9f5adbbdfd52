package naming

import (
	"context"
	"fmt"
	"strings"
)

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
