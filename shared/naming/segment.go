package naming

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// deviceNames are the Windows device names; as the part of a name before
// its first dot they make a file Windows clients cannot open.
var deviceNames = func() map[string]bool {
	m := map[string]bool{"con": true, "prn": true, "aux": true, "nul": true}
	for i := '0'; i <= '9'; i++ {
		m["com"+string(i)] = true
		m["lpt"+string(i)] = true
	}
	return m
}()

// reservedNames are refused as whole names, compared case-insensitively.
var reservedNames = func() map[string]bool {
	m := map[string]bool{"con": true, "prn": true, "aux": true, "nul": true, ".lock": true, "desktop.ini": true}
	for i := '0'; i <= '9'; i++ {
		m["com"+string(i)] = true
		m["lpt"+string(i)] = true
	}
	return m
}()

// cleanSegment applies the per-name rules to one path segment. bad is true
// when the policy says to skip rather than repair; notes explain either way.
func (m *Mapper) cleanSegment(seg string, folder, root bool) (name string, notes []note, bad bool) {
	kind := "file"
	if folder {
		kind = "folder"
	}
	repl := m.p.Replacement
	skipping := m.p.Invalid == SkipInvalid
	verdict := func(what string) string {
		if skipping {
			return "skipped"
		}
		return what
	}
	name = seg

	if !utf8.ValidString(name) {
		notes = append(notes, note{RuleInvalidEncoding, fmt.Sprintf("%s name %q is not valid UTF-8; %s (%s)", kind, seg, verdict("invalid bytes replaced with "+quote(repl)), RuleInvalidEncoding)})
		name = strings.ToValidUTF8(name, repl)
		// ToValidUTF8 merges a run of bad bytes into one replacement; fine.
	}

	var refused []string
	seen := map[rune]bool{}
	name = strings.Map(func(r rune) rune {
		if refusedRune(r) {
			if !seen[r] {
				seen[r] = true
				refused = append(refused, fmt.Sprintf("%q", r))
			}
			rr, _ := utf8.DecodeRuneInString(repl)
			return rr
		}
		return r
	}, name)
	if len(refused) > 0 {
		notes = append(notes, note{RuleInvalidCharacter, fmt.Sprintf("%s name %q contains %s, which SharePoint refuses; %s (%s)", kind, seg, strings.Join(refused, " "), verdict("replaced with "+quote(repl)), RuleInvalidCharacter)})
	}

	if t := strings.Trim(name, " "); t != name {
		notes = append(notes, note{RuleSpaces, fmt.Sprintf("%s name %q has leading or trailing spaces, which SharePoint refuses; %s (%s)", kind, seg, verdict("trimmed"), RuleSpaces)})
		name = t
		if name == "" {
			name = repl
		}
	}

	if name == "." || name == ".." {
		notes = append(notes, note{RuleEmptySegment, fmt.Sprintf("%s name %q is a relative path step, not a name; %s (%s)", kind, seg, verdict("dots replaced with "+quote(repl)), RuleEmptySegment)})
		name = strings.Repeat(repl, len(name))
	}

	name, notes = reservedRules(name, kind, verdict, repl, folder && root, notes)
	if m.p.WindowsSafe {
		name, notes = windowsDeviceRule(name, kind, verdict, repl, notes)
	}
	if l := utf16Len(name); l > MaxSegmentLength {
		notes = append(notes, note{RuleSegmentTooLong, fmt.Sprintf("%s name %q is %d characters, over SharePoint's limit of %d; %s (%s)", kind, abbreviate(seg), l, MaxSegmentLength, verdict("shortened, keeping the extension"), RuleSegmentTooLong)})
		name = shorten(name, folder)
	}

	return name, notes, skipping && len(notes) > 0
}

// reservedRules repairs the names SharePoint reserves: device names, lock
// files, a root Forms folder and "_vti_".
func reservedRules(name, kind string, verdict func(string) string, repl string, rootFolder bool, notes []note) (string, []note) {
	lower := strings.ToLower(name)
	switch {
	case reservedNames[lower]:
		notes = append(notes, note{RuleReservedName, fmt.Sprintf("%s name %q is reserved by SharePoint; %s (%s)", kind, name, verdict("prefixed with "+quote(repl)), RuleReservedName)})
		name = repl + name
	case strings.HasPrefix(name, "~$"):
		notes = append(notes, note{RuleReservedName, fmt.Sprintf("%s name %q starts with \"~$\", which SharePoint reserves for lock files; %s (%s)", kind, name, verdict("\"~\" replaced with "+quote(repl)), RuleReservedName)})
		name = repl + name[1:]
	case rootFolder && lower == "forms":
		notes = append(notes, note{RuleFormsFolder, fmt.Sprintf("folder %q at the library root is reserved by SharePoint for list forms; %s (%s)", name, verdict("prefixed with "+quote(repl)), RuleFormsFolder)})
		name = repl + name
	}
	if strings.Contains(strings.ToLower(name), "_vti_") {
		notes = append(notes, note{RuleReservedName, fmt.Sprintf("%s name %q contains \"_vti_\", which SharePoint reserves; %s (%s)", kind, name, verdict("its leading underscore removed"), RuleReservedName)})
		for {
			i := strings.Index(strings.ToLower(name), "_vti_")
			if i < 0 {
				break
			}
			name = name[:i] + name[i+1:]
		}
	}
	return name, notes
}

// windowsDeviceRule repairs a device name followed by an extension
// ("con.txt", "NUL.tar.gz"). SharePoint takes these, but Windows opens the
// device instead of the file, so a synced library breaks on such names. The
// whole name alone is reserved-name's business.
func windowsDeviceRule(name, kind string, verdict func(string) string, repl string, notes []note) (string, []note) {
	stem, _, found := strings.Cut(name, ".")
	if !found || !deviceNames[strings.ToLower(strings.TrimRight(stem, " "))] {
		return name, notes
	}
	notes = append(notes, note{RuleWindowsDevice, fmt.Sprintf("%s name %q starts with the Windows device name %q, which Windows clients cannot sync; %s (%s)", kind, name, stem, verdict("prefixed with "+quote(repl)), RuleWindowsDevice)})
	return repl + name, notes
}

// shorten cuts a name to MaxSegmentLength, keeping a file's extension when
// the extension is short enough to keep.
func shorten(name string, folder bool) string {
	stem, ext := name, ""
	if !folder {
		stem, ext = splitExt(name)
		if utf16Len(ext) > 32 {
			stem, ext = name, ""
		}
	}
	stem = truncateUTF16(stem, MaxSegmentLength-utf16Len(ext))
	stem = strings.TrimRight(stem, " ")
	if stem == "" {
		stem = "_"
	}
	return stem + ext
}

// truncateUTF16 returns the longest prefix of s of at most n UTF-16 code
// units, never splitting a character.
func truncateUTF16(s string, n int) string {
	used := 0
	for i, r := range s {
		w := 1
		if r >= 0x10000 {
			w = 2
		}
		if used+w > n {
			return s[:i]
		}
		used += w
	}
	return s
}

func abbreviate(s string) string {
	if len(s) <= 60 {
		return s
	}
	return truncateUTF16(s, 40) + "…"
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
