package scan

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spemigrate/spemigrate/shared/naming"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
)

func writeTree(t *testing.T, files map[string]int) string {
	t.Helper()
	root := t.TempDir()
	for p, n := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, bytes.Repeat([]byte("x"), n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func scanTree(t *testing.T, root string, edit func(*request.Request)) *Report {
	t.Helper()
	r := request.Request{V: 1, Source: request.Source{Kind: request.KindLocalFolder, Path: root}, Target: request.Target{ContainerID: "b!c", Folder: "in"}}
	r.Options.Batch = request.Batch{MaxItems: 3, MaxBytes: 1 << 20}
	if edit != nil {
		edit(&r)
	}
	src, err := source.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), r, src, Options{Top: 2})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// A scan of a local folder names, plans and counts as the engine would,
// and lists what it changes with the rule.
func TestScanLocalFolder(t *testing.T) {
	root := writeTree(t, map[string]int{
		"a.txt": 10, "docs/Report.pdf": 200, "docs/report.pdf": 300, "docs/con.txt": 5,
		"x:y.txt": 7, "media/big.mp4": 3 << 20, "media/clip.mp4": 20, "README": 1,
	})
	rep := scanTree(t, root, nil)
	if rep.Files != 8 || rep.Bytes != 3<<20+543 {
		t.Errorf("totals: %d files, %d bytes", rep.Files, rep.Bytes)
	}
	if rep.Renamed != 3 || rep.Skipped != 0 || rep.Kept != 5 {
		t.Errorf("kept %d renamed %d skipped %d, want 5 3 0; renames %+v", rep.Kept, rep.Renamed, rep.Skipped, rep.Renames)
	}
	want := map[string]naming.Rule{"docs/con.txt": naming.RuleWindowsDevice, "x:y.txt": naming.RuleInvalidCharacter, "docs/report.pdf": naming.RuleCaseCollision}
	for _, c := range rep.Renames {
		rule, ok := want[c.Source]
		if !ok || len(c.Rules) == 0 || c.Rules[0] != rule || !strings.Contains(c.Reason, string(rule)) {
			t.Errorf("rename %+v not expected", c)
		}
	}
	// 3 MiB is over the 1 MiB package limit: a package of its own; the
	// other seven with their folders fill three-item packages.
	if rep.Packages < 3 || rep.Jobs != rep.Packages {
		t.Errorf("packages %d jobs %d", rep.Packages, rep.Jobs)
	}
	if len(rep.Largest) != 2 || rep.Largest[0].Source != "media/big.mp4" || rep.Largest[1].Source != "docs/report.pdf" {
		t.Errorf("largest: %+v", rep.Largest)
	}
	if rep.LongestPaths[0].PathLength != len(TypicalLibraryURL+"/in/docs/report (2).pdf") {
		t.Errorf("longest: %+v", rep.LongestPaths)
	}
	if x := rep.Extensions; len(x) != 4 || x[0].Ext != ".txt" || x[0].Files != 3 || x[1].Ext != ".mp4" || x[3].Ext != "" {
		t.Errorf("extensions: %+v", rep.Extensions)
	}
	if rep.Estimate.Medium.Files != 1 || rep.Estimate.Heavy.Files != 7 || rep.Estimate.Duration <= 0 {
		t.Errorf("estimate: %+v", rep.Estimate)
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out, 20); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"files:", "8 (8 versions)", "docs/con.txt → in/docs/_con.txt", "windows-device-name", "Extensions:", "estimate:"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, out.String())
		}
	}
}

// The request's naming options reach the scan: skip instead of rename,
// and windowsSafe off.
func TestScanRequestNamingOptions(t *testing.T) {
	root := writeTree(t, map[string]int{"con.txt": 1, "a:b.txt": 1, "ok": 1})
	off := false
	rep := scanTree(t, root, func(r *request.Request) {
		r.Options.Naming.InvalidChars = request.InvalidCharsSkip
		r.Options.Naming.WindowsSafe = &off
	})
	if rep.Skipped != 1 || rep.Kept != 2 || rep.Skips[0].Source != "a:b.txt" {
		t.Errorf("kept %d skipped %d %+v", rep.Kept, rep.Skipped, rep.Skips)
	}
	if rep.Packages != 1 {
		t.Errorf("packages %d, want 1", rep.Packages)
	}
}

func TestEstimateRates(t *testing.T) {
	var e Estimate
	e.add(LightMinBytes)
	e.add(MediumMinBytes)
	e.add(1)
	e.finish(Rates{Light: LightMinBytes, Medium: MediumMinBytes, Heavy: 1})
	if e.Duration.Hours() != 72 {
		t.Errorf("three files of one day each: %s", e.Duration)
	}
}
