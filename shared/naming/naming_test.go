package naming

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func newMapper(t *testing.T, p Policy) *Mapper {
	t.Helper()
	m, err := NewMapper("mig-1", p, NewMemoryClaims())
	if err != nil {
		t.Fatalf("NewMapper: %v", err)
	}
	return m
}

// TestMapRules runs every rule alone, under the default (replace) policy and
// under SkipInvalid, on a fresh mapper so no collisions interfere.
func TestMapRules(t *testing.T) {
	long := strings.Repeat("a", 300)
	win := Policy{WindowsSafe: true}
	tests := []struct {
		name    string
		src     string
		size    int64
		policy  Policy
		action  Action
		target  string
		rule    Rule
		skipAlt bool // under SkipInvalid the item is skipped with the same rule
	}{
		{name: "plain", src: "docs/report.pdf", action: Keep, target: "docs/report.pdf"},
		{name: "unicode kept", src: "Ünïcødé/日本語 ファイル.txt", action: Keep, target: "Ünïcødé/日本語 ファイル.txt"},
		{name: "hash and percent kept", src: "a#b%c.txt", action: Keep, target: "a#b%c.txt"},
		{name: "colon", src: "a:b.txt", action: Rename, target: "a_b.txt", rule: RuleInvalidCharacter, skipAlt: true},
		{name: "every refused character", src: `x"*:<>?\|.txt`, action: Rename, target: "x________.txt", rule: RuleInvalidCharacter, skipAlt: true},
		{name: "control character", src: "a\tb\x01.txt", action: Rename, target: "a_b_.txt", rule: RuleInvalidCharacter, skipAlt: true},
		{name: "custom replacement", src: "a?b.txt", policy: Policy{Replacement: "-"}, action: Rename, target: "a-b.txt", rule: RuleInvalidCharacter},
		{name: "invalid utf8", src: "bad\xff\xfename.txt", action: Rename, target: "bad_name.txt", rule: RuleInvalidEncoding, skipAlt: true},
		{name: "leading space", src: " a.txt", action: Rename, target: "a.txt", rule: RuleSpaces, skipAlt: true},
		{name: "trailing space folder", src: "dir /a.txt", action: Rename, target: "dir/a.txt", rule: RuleSpaces, skipAlt: true},
		{name: "only spaces", src: "   ", action: Rename, target: "_", rule: RuleSpaces, skipAlt: true},
		{name: "double slash", src: "a//b.txt", action: Rename, target: "a/b.txt", rule: RuleEmptySegment, skipAlt: true},
		{name: "trailing slash", src: "a/", action: Skip, rule: RuleEmptySegment},
		{name: "dot segment", src: "./a.txt", action: Rename, target: "_/a.txt", rule: RuleEmptySegment, skipAlt: true},
		{name: "dotdot segment", src: "../a.txt", action: Rename, target: "__/a.txt", rule: RuleEmptySegment, skipAlt: true},
		{name: "CON", src: "CON", action: Rename, target: "_CON", rule: RuleReservedName, skipAlt: true},
		{name: "con lower folder", src: "con/x.txt", action: Rename, target: "_con/x.txt", rule: RuleReservedName, skipAlt: true},
		{name: "PRN", src: "PRN", action: Rename, target: "_PRN", rule: RuleReservedName},
		{name: "AUX", src: "x/AUX", action: Rename, target: "x/_AUX", rule: RuleReservedName},
		{name: "NUL", src: "nul", action: Rename, target: "_nul", rule: RuleReservedName},
		{name: "COM0", src: "COM0", action: Rename, target: "_COM0", rule: RuleReservedName},
		{name: "COM9", src: "COM9", action: Rename, target: "_COM9", rule: RuleReservedName},
		{name: "LPT5", src: "lpt5", action: Rename, target: "_lpt5", rule: RuleReservedName},
		{name: "CON with extension allowed", src: "CON.txt", action: Keep, target: "CON.txt"},
		{name: "COM10 allowed", src: "COM10", action: Keep, target: "COM10"},
		{name: ".lock", src: "a/.lock", action: Rename, target: "a/_.lock", rule: RuleReservedName, skipAlt: true},
		{name: "desktop.ini", src: "Desktop.INI", action: Rename, target: "_Desktop.INI", rule: RuleReservedName, skipAlt: true},
		{name: "tilde dollar", src: "~$budget.xlsx", action: Rename, target: "_$budget.xlsx", rule: RuleReservedName, skipAlt: true},
		{name: "vti", src: "a_vti_b.txt", action: Rename, target: "avti_b.txt", rule: RuleReservedName, skipAlt: true},
		{name: "vti folder upper", src: "_VTI_cnf/x", action: Rename, target: "VTI_cnf/x", rule: RuleReservedName},
		{name: "vti made by replacement", src: "_vti:x", action: Rename, target: "vti_x", rule: RuleReservedName},
		{name: "root forms folder", src: "Forms/a.txt", action: Rename, target: "_Forms/a.txt", rule: RuleFormsFolder, skipAlt: true},
		{name: "nested forms folder allowed", src: "x/forms/a.txt", action: Keep, target: "x/forms/a.txt"},
		{name: "root file named forms allowed", src: "forms", action: Keep, target: "forms"},
		{name: "segment too long", src: long + ".txt", action: Rename, target: strings.Repeat("a", 251) + ".txt", rule: RuleSegmentTooLong, skipAlt: true},
		{name: "segment 255 kept", src: strings.Repeat("b", 251) + ".txt", action: Keep, target: strings.Repeat("b", 251) + ".txt"},
		{name: "segment counts utf16", src: strings.Repeat("😀", 128), action: Rename, target: strings.Repeat("😀", 127), rule: RuleSegmentTooLong},
		{name: "path too long", src: strings.Repeat("d/", 200) + "f", action: Skip, rule: RulePathTooLong},
		{name: "path limit counts library url", src: strings.Repeat("x", 200) + "/" + strings.Repeat("y", 150), policy: Policy{LibraryURL: "/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04/Document Library"}, action: Skip, rule: RulePathTooLong},
		{name: "path at limit kept", src: strings.Repeat("x", 200) + "/" + strings.Repeat("y", 198), action: Keep, target: strings.Repeat("x", 200) + "/" + strings.Repeat("y", 198)},
		{name: "file too large", src: "big.iso", size: DefaultMaxFileSize + 1, action: Skip, rule: RuleFileTooLarge},
		{name: "file at limit", src: "big.iso", size: DefaultMaxFileSize, action: Keep, target: "big.iso"},
		{name: "custom size limit", src: "big.iso", size: 11, policy: Policy{MaxFileSize: 10}, action: Skip, rule: RuleFileTooLarge},
		{name: "windows-safe con.txt", src: "con.txt", policy: win, action: Rename, target: "_con.txt", rule: RuleWindowsDevice, skipAlt: true},
		{name: "windows-safe NUL.tar.gz", src: "d/NUL.tar.gz", policy: win, action: Rename, target: "d/_NUL.tar.gz", rule: RuleWindowsDevice, skipAlt: true},
		{name: "windows-safe LPT9.log", src: "LPT9.log", policy: win, action: Rename, target: "_LPT9.log", rule: RuleWindowsDevice},
		{name: "windows-safe COM1.x", src: "COM1.x", policy: win, action: Rename, target: "_COM1.x", rule: RuleWindowsDevice},
		{name: "windows-safe AUX.y", src: "AUX.y", policy: win, action: Rename, target: "_AUX.y", rule: RuleWindowsDevice},
		{name: "windows-safe PRN.z", src: "PRN.z", policy: win, action: Rename, target: "_PRN.z", rule: RuleWindowsDevice},
		{name: "windows-safe folder aux.d", src: "aux.d/a.txt", policy: win, action: Rename, target: "_aux.d/a.txt", rule: RuleWindowsDevice},
		{name: "windows-safe COM10.txt allowed", src: "COM10.txt", policy: win, action: Keep, target: "COM10.txt"},
		{name: "windows-safe console.txt allowed", src: "console.txt", policy: win, action: Keep, target: "console.txt"},
		{name: "windows-safe CON alone is reserved-name", src: "CON", policy: win, action: Rename, target: "_CON", rule: RuleReservedName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := newMapper(t, tc.policy).Map(context.Background(), tc.src, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if d.Action != tc.action || d.Target != tc.target {
				t.Fatalf("Map(%q) = %s %q, want %s %q (reason %q)", tc.src, d.Action, d.Target, tc.action, tc.target, d.Reason)
			}
			checkReason(t, d, tc.rule)
			if tc.skipAlt {
				p := tc.policy
				p.Invalid = SkipInvalid
				d, err := newMapper(t, p).Map(context.Background(), tc.src, tc.size)
				if err != nil {
					t.Fatal(err)
				}
				if d.Action != Skip || d.Target != "" || d.Folders != nil {
					t.Fatalf("SkipInvalid: Map(%q) = %s %q, want skip", tc.src, d.Action, d.Target)
				}
				checkReason(t, d, tc.rule)
			}
		})
	}
}

func checkReason(t *testing.T, d Decision, rule Rule) {
	t.Helper()
	if d.Reason == "" {
		t.Errorf("decision for %q has no reason", d.Source)
	}
	if rule == "" {
		if len(d.Rules) != 0 {
			t.Errorf("decision for %q applied rules %v, want none", d.Source, d.Rules)
		}
		return
	}
	if !slices.Contains(d.Rules, rule) {
		t.Errorf("decision for %q has rules %v, want %s", d.Source, d.Rules, rule)
	}
	if !strings.Contains(d.Reason, string(rule)) {
		t.Errorf("reason %q does not name rule %s", d.Reason, rule)
	}
}

func TestCollisions(t *testing.T) {
	ctx := context.Background()
	m := newMapper(t, Policy{})
	want := []struct{ src, target string }{
		{"Docs/Report.pdf", "Docs/Report.pdf"},
		{"docs/report.pdf", "docs (2)/report.pdf"}, // folder "docs" collides with "Docs"
		{"Docs/REPORT.pdf", "Docs/REPORT (2).pdf"},
		{"Docs/report.PDF", "Docs/report (3).PDF"},
		{"docs/other.txt", "docs (2)/other.txt"}, // same renamed folder for every file under it
		{"a", "a"},
		{"A/b", "A (2)/b"},       // a folder colliding with a file
		{".profile", ".profile"}, // no extension split on a leading dot
		{".PROFILE", ".PROFILE (2)"},
		{"Docs/x:y.txt", "Docs/x_y.txt"},
		{"Docs/x?y.txt", "Docs/x_y (2).txt"}, // collision created by a repair
	}
	for _, w := range want {
		d, err := m.Map(ctx, w.src, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d.Target != w.target {
			t.Fatalf("Map(%q) = %q, want %q (%s)", w.src, d.Target, w.target, d.Reason)
		}
	}
	d, _ := m.Map(ctx, "docs/report.pdf", 1)
	if d.Action != Rename || !slices.Contains(d.Rules, RuleCaseCollision) || !strings.Contains(d.Reason, `source folder "Docs"`) {
		t.Errorf("collision decision = %+v, want a rename naming the folder it collides with", d)
	}
	if len(d.Folders) != 1 || d.Folders[0] != (Folder{Source: "docs", Target: "docs (2)"}) {
		t.Errorf("Folders = %+v", d.Folders)
	}
}

func TestCollisionSkip(t *testing.T) {
	ctx := context.Background()
	m := newMapper(t, Policy{Collisions: SkipCollisions})
	first, _ := m.Map(ctx, "A.txt", 1)
	second, err := m.Map(ctx, "a.txt", 1)
	if err != nil {
		t.Fatal(err)
	}
	if first.Action != Keep || second.Action != Skip {
		t.Fatalf("got %s then %s, want keep then skip", first.Action, second.Action)
	}
	checkReason(t, second, RuleCaseCollision)
	if !strings.Contains(second.Reason, `"A.txt"`) {
		t.Errorf("reason %q does not name the path it collides with", second.Reason)
	}
	under, _ := m.Map(ctx, "a.TXT/child", 1) // a folder colliding with a file: the whole subtree goes
	if under.Action != Skip {
		t.Errorf("file under colliding folder: %s %q", under.Action, under.Target)
	}
}

// TestIdempotent re-maps a source, in a different order and through new
// mappers (as after a crash), against the same persistent claims.
func TestIdempotent(t *testing.T) {
	ctx := context.Background()
	claims := NewMemoryClaims()
	paths := []string{"X/a.txt", "x/A.txt", "x/b.txt", "X/B.txt", "x:y/c", "x_y/c", "CON/d"}
	run := func(order []string) map[string]Decision {
		m, err := NewMapper("mig", Policy{}, claims)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]Decision{}
		for _, p := range order {
			d, err := m.Map(ctx, p, 1)
			if err != nil {
				t.Fatal(err)
			}
			out[p] = d
		}
		return out
	}
	first := run(paths)
	rev := slices.Clone(paths)
	slices.Reverse(rev)
	second := run(rev)
	for _, p := range paths {
		if first[p].Target != second[p].Target || first[p].Action != second[p].Action || first[p].Reason != second[p].Reason {
			t.Errorf("%q: first run %s %q (%s), re-run %s %q (%s)", p, first[p].Action, first[p].Target, first[p].Reason, second[p].Action, second[p].Target, second[p].Reason)
		}
	}
	targets := map[string]string{}
	for p, d := range first {
		if other, dup := targets[Key(d.Target)]; dup {
			t.Errorf("%q and %q both map to %q", p, other, d.Target)
		}
		targets[Key(d.Target)] = p
	}
	// Another migration has its own namespace.
	m, _ := NewMapper("other", Policy{}, claims)
	if d, _ := m.Map(ctx, "x/A.txt", 1); d.Target != "x/A.txt" {
		t.Errorf("other migration: %q", d.Target)
	}
}

// TestFolderConsistency: every file under a renamed folder reports the same
// folder target, including from a second mapper (a later page).
func TestFolderConsistency(t *testing.T) {
	ctx := context.Background()
	claims := NewMemoryClaims()
	m1, _ := NewMapper("mig", Policy{}, claims)
	m2, _ := NewMapper("mig", Policy{}, claims)
	if _, err := m1.Map(ctx, "Data/one", 1); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for i, m := range []*Mapper{m1, m2, m1, m2} {
		d, err := m.Map(ctx, fmt.Sprintf("data/sub:dir/f%d", i), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Folders) != 2 {
			t.Fatalf("folders %+v", d.Folders)
		}
		targets = append(targets, d.Folders[0].Target+"|"+d.Folders[1].Target)
	}
	for _, got := range targets {
		if got != "data (2)|data (2)/sub_dir" {
			t.Errorf("folder targets %q, want data (2)|data (2)/sub_dir", got)
		}
	}
}

func TestCollisionRenameKeepsLimits(t *testing.T) {
	ctx := context.Background()
	m := newMapper(t, Policy{})
	name := strings.Repeat("n", 251) + ".txt"
	m.Map(ctx, name, 1)
	d, err := m.Map(ctx, strings.ToUpper(name[:251])+".txt", 1)
	if err != nil {
		t.Fatal(err)
	}
	if utf16Len(d.Target) > MaxSegmentLength || !strings.HasSuffix(d.Target, " (2).txt") {
		t.Errorf("renamed %d chars %q", utf16Len(d.Target), d.Target)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		p     Policy
		field string
	}{
		{Policy{}, ""},
		{Policy{Replacement: "-", Invalid: SkipInvalid, Collisions: SkipCollisions, MaxFileSize: 1, LibraryURL: "/sites/x/Docs"}, ""},
		{Policy{Replacement: ":"}, "Policy.Replacement"},
		{Policy{Replacement: "|"}, "Policy.Replacement"},
		{Policy{Replacement: "__"}, "Policy.Replacement"},
		{Policy{Replacement: " "}, "Policy.Replacement"},
		{Policy{Replacement: "."}, "Policy.Replacement"},
		{Policy{Replacement: "~"}, "Policy.Replacement"},
		{Policy{Replacement: "\x00"}, "Policy.Replacement"},
		{Policy{Invalid: "drop"}, "Policy.Invalid"},
		{Policy{Collisions: "overwrite"}, "Policy.Collisions"},
		{Policy{MaxFileSize: -1}, "Policy.MaxFileSize"},
		{Policy{LibraryURL: "https://x/Docs"}, "Policy.LibraryURL"},
		{Policy{LibraryURL: "/" + strings.Repeat("l", 399)}, "Policy.LibraryURL"},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		if tc.field == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.p, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: error %v, want one naming %s", tc.p, err, tc.field)
		}
		if _, err := NewMapper("m", tc.p, NewMemoryClaims()); err == nil {
			t.Errorf("NewMapper accepted %+v", tc.p)
		}
	}
}

type failingClaims struct{}

func (failingClaims) Claim(context.Context, string, string, string) (string, error) {
	return "", errors.New("table unavailable")
}

func TestClaimErrorSurfaces(t *testing.T) {
	m, _ := NewMapper("m", Policy{}, failingClaims{})
	if _, err := m.Map(context.Background(), "a/b", 1); err == nil || !strings.Contains(err.Error(), "table unavailable") {
		t.Fatalf("err = %v", err)
	}
	// Decided without claims: no error.
	if d, err := m.Map(context.Background(), "big", DefaultMaxFileSize+1); err != nil || d.Action != Skip {
		t.Fatalf("oversized file: %v %v", d.Action, err)
	}
}

func TestKey(t *testing.T) {
	if Key("Ünï/ABC") != Key("ünÏ/abc") {
		t.Error("Key does not fold case")
	}
}
