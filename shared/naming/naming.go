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
//     names over 255 characters, and with [Policy.WindowsSafe] a Windows
//     device name before an extension ("con.txt"). Under [ReplaceInvalid] each is repaired
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
	RuleWindowsDevice    Rule = "windows-device-name"    // "con.txt", "NUL.tar.gz": with Policy.WindowsSafe
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
