package naming

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits SharePoint puts on what the migration API imports (spec §6.8 and the
// SharePoint naming rules).
const (
	// MaxPathLength is the longest decoded server-relative path SharePoint
	// accepts, counted in UTF-16 code units as SharePoint (.NET) counts them.
	MaxPathLength = 400
	// MaxSegmentLength is the longest single file or folder name.
	MaxSegmentLength = 255
	// DefaultMaxFileSize is the migration API's documented per-file limit,
	// "15 GB". Read as decimal gigabytes: the stricter reading, so a file the
	// service might refuse is skipped with a reason instead of failing late.
	DefaultMaxFileSize int64 = 15_000_000_000
)

// InvalidMode says what happens to a name SharePoint refuses.
type InvalidMode string

const (
	// ReplaceInvalid repairs the name (see [Policy.Replacement]) and records
	// the item as renamed. It is the default.
	ReplaceInvalid InvalidMode = "replace"
	// SkipInvalid leaves the item out and records why.
	SkipInvalid InvalidMode = "skip"
)

// CollisionMode says what happens when two source paths name the same
// SharePoint path once case is ignored.
type CollisionMode string

const (
	// RenameCollisions gives the later claimant a numbered name,
	// "name (2).ext", "name (3).ext", …. It is the default.
	RenameCollisions CollisionMode = "rename"
	// SkipCollisions leaves the later claimant out and records why.
	SkipCollisions CollisionMode = "skip"
)

// Policy is one migration's naming policy. The zero value is usable: replace
// invalid names with "_", rename collisions, 15 GB file limit.
type Policy struct {
	// Invalid is ReplaceInvalid (default) or SkipInvalid. It governs refused
	// characters, leading/trailing spaces, reserved names, empty segments and
	// over-long names; paths over 400 characters and files over the size
	// limit are always skipped, since no rename can repair them safely.
	Invalid InvalidMode
	// Replacement is the single character that stands in for a refused one.
	// Empty means "_". It must itself be acceptable to SharePoint and may not
	// be a space or a dot.
	Replacement string
	// Collisions is RenameCollisions (default) or SkipCollisions.
	Collisions CollisionMode
	// MaxFileSize is the largest file migrated, in bytes. Zero means
	// DefaultMaxFileSize.
	MaxFileSize int64
	// LibraryURL is the decoded server-relative URL of the target library
	// root, e.g. "/contentstorage/CSP_…/Document Library". It is not part of
	// the mapped path but counts toward the 400-character limit, so give it
	// whenever it is known. Empty counts as zero characters.
	LibraryURL string
	// WindowsSafe also repairs names whose part before the first dot is a
	// Windows device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9), such as
	// "con.txt" or "NUL.tar.gz": SharePoint stores them, but OneDrive sync
	// on Windows cannot write them. Off in the zero Policy, so that the
	// package's rules stay SharePoint's own; migration requests turn it on
	// by default (options.naming.windowsSafe).
	WindowsSafe bool
}

// Validate reports the first problem with the policy, naming the field.
func (p Policy) Validate() error {
	switch p.Invalid {
	case "", ReplaceInvalid, SkipInvalid:
	default:
		return fmt.Errorf("naming: Policy.Invalid is %q: use %q or %q", p.Invalid, ReplaceInvalid, SkipInvalid)
	}
	switch p.Collisions {
	case "", RenameCollisions, SkipCollisions:
	default:
		return fmt.Errorf("naming: Policy.Collisions is %q: use %q or %q", p.Collisions, RenameCollisions, SkipCollisions)
	}
	if p.Replacement != "" {
		r, n := utf8.DecodeRuneInString(p.Replacement)
		switch {
		case r == utf8.RuneError || n != len(p.Replacement):
			return fmt.Errorf("naming: Policy.Replacement %q must be exactly one character, such as \"_\" or \"-\"", p.Replacement)
		case refusedRune(r):
			return fmt.Errorf("naming: Policy.Replacement %q is itself a character SharePoint refuses; choose one such as \"_\" or \"-\"", p.Replacement)
		case r == '.' || unicode.IsSpace(r):
			return fmt.Errorf("naming: Policy.Replacement %q would create names SharePoint refuses (dot or space at the ends); choose one such as \"_\" or \"-\"", p.Replacement)
		case r == '~' || r == '$':
			return fmt.Errorf("naming: Policy.Replacement %q could create reserved \"~$\" names; choose one such as \"_\" or \"-\"", p.Replacement)
		}
	}
	if p.MaxFileSize < 0 {
		return fmt.Errorf("naming: Policy.MaxFileSize is %d: use a positive size in bytes, or 0 for the 15 GB default", p.MaxFileSize)
	}
	if p.LibraryURL != "" {
		if !strings.HasPrefix(p.LibraryURL, "/") {
			return fmt.Errorf("naming: Policy.LibraryURL %q must be a server-relative URL starting with \"/\"", p.LibraryURL)
		}
		if utf16Len(p.LibraryURL)+2 > MaxPathLength {
			return fmt.Errorf("naming: Policy.LibraryURL is %d characters long: it leaves no room under SharePoint's %d-character path limit", utf16Len(p.LibraryURL), MaxPathLength)
		}
	}
	return nil
}

// withDefaults fills the zero fields with their documented defaults.
func (p Policy) withDefaults() Policy {
	if p.Invalid == "" {
		p.Invalid = ReplaceInvalid
	}
	if p.Collisions == "" {
		p.Collisions = RenameCollisions
	}
	if p.Replacement == "" {
		p.Replacement = "_"
	}
	if p.MaxFileSize == 0 {
		p.MaxFileSize = DefaultMaxFileSize
	}
	p.LibraryURL = strings.TrimRight(p.LibraryURL, "/")
	return p
}

// refusedRune reports characters SharePoint refuses anywhere in a name, plus
// those XML 1.0 cannot carry (the manifest would be invalid, spec §6.1).
func refusedRune(r rune) bool {
	switch r {
	case '"', '*', ':', '<', '>', '?', '/', '\\', '|':
		return true
	case 0xFFFE, 0xFFFF:
		return true
	}
	return r < 0x20 || (r >= 0xD800 && r <= 0xDFFF)
}

// utf16Len counts a string the way SharePoint does: in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}
