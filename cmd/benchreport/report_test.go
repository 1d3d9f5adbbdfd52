package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplaceSectionKeepsHandWrittenText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	doc := "# Benchmarks\n\nintro\n\n" + beginMarker + "\n\nold table\n" + endMarker + "\n\n## Analysis\n\nkept\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(path, "new table\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	for _, want := range []string{"intro", "new table", "## Analysis\n\nkept"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "old table") {
		t.Errorf("old table still there:\n%s", got)
	}
	if strings.Count(got, endMarker) != 1 {
		t.Errorf("markers duplicated:\n%s", got)
	}
}

func TestReplaceSectionCreatesAndAppends(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "new.md")
	if err := replaceSection(fresh, "table\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(fresh)
	if !strings.HasPrefix(string(b), "# Benchmarks") || !strings.Contains(string(b), "table") {
		t.Errorf("new file: %q", b)
	}
	plain := filepath.Join(dir, "plain.md")
	os.WriteFile(plain, []byte("# Notes\n\ntext\n"), 0o644)
	if err := replaceSection(plain, "table\n"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(plain)
	if !strings.HasPrefix(string(b), "# Notes\n\ntext\n\n"+beginMarker) {
		t.Errorf("appended file: %q", b)
	}
}

func TestTableOf(t *testing.T) {
	for path, want := range map[string]string{
		"/devstoreaccount1/Claims":                                  "Claims",
		"/devstoreaccount1/Migrations(PartitionKey='m',RowKey='m')": "Migrations",
		"/devstoreaccount1/$batch":                                  "$batch",
		"/devstoreaccount1/Tables":                                  "Tables",
	} {
		if got := tableOf(path); got != want {
			t.Errorf("tableOf(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestWithTableEndpoint(t *testing.T) {
	conn := "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=k;BlobEndpoint=http://127.0.0.1:1/a;TableEndpoint=http://127.0.0.1:2/a;"
	got := withTableEndpoint(conn, "http://127.0.0.1:9/a")
	if !strings.Contains(got, "TableEndpoint=http://127.0.0.1:9/a;") || !strings.Contains(got, "BlobEndpoint=http://127.0.0.1:1/a;") {
		t.Errorf("got %q", got)
	}
}

func TestDiffAndRatio(t *testing.T) {
	d := diff(map[string]int64{"a": 5, "b": 2, "c": 1}, map[string]int64{"a": 2, "b": 2})
	if len(d) != 2 || d["a"] != 3 || d["c"] != 1 {
		t.Errorf("diff = %v", d)
	}
	if got := fmtCounts(d); got != "a 3, c 1" {
		t.Errorf("fmtCounts = %q", got)
	}
	if ratio(1, 0) != "–" || ratio(1, 4) != "0.25" {
		t.Errorf("ratio: %q %q", ratio(1, 0), ratio(1, 4))
	}
}
