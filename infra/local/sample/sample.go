// Package sample builds and uploads deterministic source content for the demo
// and the end-to-end tests: nested folders of files of several types, with the
// names a real share collects (unicode, characters SharePoint refuses,
// reserved names, case collisions, a path too long to import), zero-byte and
// large files, and author metadata.
//
// Content is pseudo-random from a seed derived from the file's path, produced
// while it is uploaded: a 200 MB file never sits in memory. Seed records the
// SHA-256 of every upload and the times the storage service assigned, which is
// what a verification compares the target against.
package sample

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"strings"
)

// File is one source file to create.
type File struct {
	// Path is the blob name (slash-separated), exactly as the source has it.
	Path        string
	Size        int64
	ContentType string
	// Metadata is set on the blob (e.g. author, modifiedby); values are
	// ASCII, as blob metadata travels in HTTP headers.
	Metadata map[string]string

	// Revised files get their metadata updated after every file is
	// uploaded, so their last-modified time comes later than their creation
	// time (the storage service sets both).
	Revised bool

	// Expect is what the default naming policy should do with the path: ""
	// for an import under the same path, otherwise the rule the per-item
	// report must name (e.g. "invalid-character", "case-collision").
	Expect string
	// ExpectSkipped: the policy skips the file rather than renaming it.
	ExpectSkipped bool
}

// Author returns the file's author metadata, or "".
func (f File) Author() string {
	for k, v := range f.Metadata {
		if strings.EqualFold(k, "author") {
			return v
		}
	}
	return ""
}

// Options shape a generated set.
type Options struct {
	// Files is the number of ordinary files spread over the folders (the
	// naming cases and the large file come on top).
	Files int
	// LargeSize, when positive, adds one file of that many bytes.
	LargeSize int64
	// MaxSmall bounds an ordinary file's size (default 256 KiB); a few files
	// of MaxSmall*8 are added to give batches some weight.
	MaxSmall int64
	// NamingCases adds the files the naming policy must act on.
	NamingCases bool
	// Root prefixes every path (e.g. "run-1/"), so several sets can share a
	// container.
	Root string
}

// Demo is the demo's set: 520 ordinary files in nested folders, the naming
// cases, and one 200 MiB file.
func Demo() []File {
	return Generate(Options{Files: 520, LargeSize: 200 << 20, NamingCases: true})
}

// Small is a quick set for tests: n ordinary small files plus the naming cases.
func Small(root string, n int) []File {
	return Generate(Options{Files: n, MaxSmall: 16 << 10, NamingCases: true, Root: root})
}

var folders = []string{
	"Projects/2026/Alpha/Specs",
	"Projects/2026/Alpha/Meetings",
	"Projects/2026/Beta",
	"Projects/2025/Archive/Q4",
	"Finance/Reports/Q1",
	"Finance/Reports/Q2",
	"Finance/Invoices/2026-03",
	"HR/Policies",
	"HR/Onboarding/Checklists",
	"Marketing/Brand Assets/Logos",
	"Marketing/Campagnes été 2026",
	"Photos/Trips/日本/東京",
	"Photos/Trips/España",
	"Legal/Müller & Söhne/Verträge",
	"Engineering/src/docs",
	"Engineering/Design #2 (final)",
	"Shared/Ελληνικά",
	"",
}

type kind struct {
	ext, contentType string
	text             bool
}

var kinds = []kind{
	{".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", false},
	{".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", false},
	{".pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation", false},
	{".pdf", "application/pdf", false},
	{".txt", "text/plain; charset=utf-8", true},
	{".csv", "text/csv", true},
	{".md", "text/markdown", true},
	{".json", "application/json", true},
	{".png", "image/png", false},
	{".jpg", "image/jpeg", false},
	{".zip", "application/zip", false},
}

var stems = []string{"report", "notes", "budget", "summary", "plan", "minutes", "draft", "final", "overview", "résumé", "データ", "チェックリスト", "Übersicht", "presupuesto"}

var authors = []string{"alice@contoso.com", "bob@contoso.com", "chloe@contoso.com", "dmitri@contoso.com"}

// Generate returns a deterministic set of files for opts.
func Generate(opts Options) []File {
	if opts.MaxSmall <= 0 {
		opts.MaxSmall = 256 << 10
	}
	r := rand.New(rand.NewPCG(1, 2))
	var out []File
	add := func(f File) {
		f.Path = opts.Root + f.Path
		if f.ContentType == "" {
			f.ContentType = contentType(f.Path)
		}
		out = append(out, f)
	}
	for i := range opts.Files {
		dir := folders[i%len(folders)]
		k := kinds[r.IntN(len(kinds))]
		name := fmt.Sprintf("%s-%03d%s", stems[r.IntN(len(stems))], i, k.ext)
		size := 1 + r.Int64N(opts.MaxSmall)
		if i%97 == 13 {
			size = opts.MaxSmall * 8 // a few heavier files
		}
		f := File{Path: path.Join(dir, name), Size: size, ContentType: k.contentType, Revised: i%5 == 2}
		if i%3 == 0 {
			f.Metadata = map[string]string{"author": authors[r.IntN(len(authors))]}
			if i%6 == 0 {
				f.Metadata["modifiedby"] = authors[r.IntN(len(authors))]
			}
		}
		add(f)
	}
	if opts.NamingCases {
		for _, f := range namingCases() {
			add(f)
		}
	}
	if opts.LargeSize > 0 {
		add(File{Path: "Engineering/datasets/telemetry-2026.bin", Size: opts.LargeSize, ContentType: "application/octet-stream",
			Metadata: map[string]string{"author": "dmitri@contoso.com"}})
	}
	return out
}

// namingCases are the names the default naming policy must rename or skip,
// with the rule its report must name.
func namingCases() []File {
	long := "Deep/" + strings.Repeat("a very long folder name that keeps going/", 10) + "file.txt"
	return []File{
		{Path: "Naming/a:b.txt", Size: 100, Expect: "invalid-character"},
		{Path: "Naming/what?.docx", Size: 2000, Expect: "invalid-character"},
		{Path: "Naming/CON", Size: 10, Expect: "reserved-name"},
		{Path: "Naming/~$lock.docx", Size: 162, Expect: "reserved-name"},
		{Path: "Naming/desktop.ini", Size: 50, Expect: "reserved-name"},
		{Path: "Naming/trailing space ", Size: 30, Expect: "leading-trailing-space"},
		{Path: "Naming/ leading space.txt", Size: 30, Expect: "leading-trailing-space"},
		{Path: "Naming/Folder with trailing space /inside.txt", Size: 40, Expect: "leading-trailing-space"},
		{Path: "Naming/Report.pdf", Size: 5000},
		{Path: "Naming/report.pdf", Size: 6000, Expect: "case-collision"},
		{Path: "Naming/empty.txt", Size: 0},
		{Path: "Naming/emoji 🎉 party.txt", Size: 64},
		{Path: "Naming/100% done #1.txt", Size: 64},
		{Path: long, Size: 20, Expect: "path-too-long", ExpectSkipped: true},
	}
}

func contentType(p string) string {
	ext := strings.ToLower(path.Ext(p))
	for _, k := range kinds {
		if k.ext == ext {
			return k.contentType
		}
	}
	return "application/octet-stream"
}

func isText(p string) bool {
	ext := strings.ToLower(path.Ext(p))
	for _, k := range kinds {
		if k.ext == ext {
			return k.text
		}
	}
	return false
}

// Content returns a reader of the file's bytes: deterministic, derived from
// its path, produced on demand.
func (f File) Content() io.Reader {
	sum := sha256.Sum256([]byte(f.Path))
	var seed [32]byte
	copy(seed[:], sum[:])
	var src io.Reader = rand.NewChaCha8(seed)
	if isText(f.Path) {
		src = &textReader{r: rand.New(rand.NewPCG(binary.LittleEndian.Uint64(sum[:8]), binary.LittleEndian.Uint64(sum[8:16])))}
	}
	return io.LimitReader(src, f.Size)
}

// textReader produces lines of words, so text files look like text.
type textReader struct {
	r   *rand.Rand
	buf []byte
}

var words = strings.Fields("the quarterly figures show growth in every region; see the appendix for détails, コスト and Übersicht of next steps")

func (t *textReader) Read(p []byte) (int, error) {
	for len(t.buf) < len(p) {
		n := 3 + t.r.IntN(12)
		for i := range n {
			if i > 0 {
				t.buf = append(t.buf, ' ')
			}
			t.buf = append(t.buf, words[t.r.IntN(len(words))]...)
		}
		t.buf = append(t.buf, '\n')
	}
	n := copy(p, t.buf)
	t.buf = t.buf[n:]
	return n, nil
}
