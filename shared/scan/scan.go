// Package scan is the readiness scan (dry run) of a migration request: it
// lists the request's source, applies the request's naming policy with
// claims held in memory, plans the batches the engine would plan, and
// reports totals, renames and skips with their reasons, the largest files,
// the longest paths, an extension histogram, the packages and jobs to
// expect and an ingest time estimate. It reads the source only: nothing is
// stored, enqueued or sent to Graph, so the CLI (spemigrate scan) and the
// API (POST /api/migrations?dryRun=true) can run it freely.
package scan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/spemigrate/spemigrate/shared/naming"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/staging"
)

// TypicalLibraryURL stands in for the target library's server-relative URL
// when the scan cannot ask Graph: an SPE container's library URL has this
// shape and length, so the 400-character path check counts about right.
const TypicalLibraryURL = "/contentstorage/CSP_00000000-0000-0000-0000-000000000000/Document Library"

// Options tune a scan. The zero value scans like the engine's defaults.
type Options struct {
	// PageSize is the listing page the engine plans at once (default 1000,
	// as SPEMIGRATE_PAGE_SIZE); batches never span pages.
	PageSize int
	// Top is how many largest files and longest paths are listed (default 10).
	Top int
	// MaxListed bounds the renames and skips listed (default 1000); the
	// counts are always complete.
	MaxListed int
	// MaxVersions is how many versions of a file are kept, newest first
	// (default 500 as SPEMIGRATE_MAX_VERSIONS, -1 for no cap).
	MaxVersions int
	// LibraryURL is the target library's server-relative URL, counted
	// toward the path limit; empty means TypicalLibraryURL.
	LibraryURL string
	// Rates are the ingest rates; zero fields take DefaultRates'.
	Rates Rates
	// Now is the clock for Elapsed (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.PageSize <= 0 {
		o.PageSize = 1000
	}
	if o.Top <= 0 {
		o.Top = 10
	}
	if o.MaxListed <= 0 {
		o.MaxListed = 1000
	}
	if o.MaxVersions == 0 {
		o.MaxVersions = 500
	}
	if o.LibraryURL == "" {
		o.LibraryURL = TypicalLibraryURL
	}
	o.Rates.Light = cmp.Or(o.Rates.Light, DefaultRates.Light)
	o.Rates.Medium = cmp.Or(o.Rates.Medium, DefaultRates.Medium)
	o.Rates.Heavy = cmp.Or(o.Rates.Heavy, DefaultRates.Heavy)
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Report is what a scan found. Paths are source paths relative to the
// source root (after the request's prefix) and target paths relative to
// the container's library root, as in a migration's report.
type Report struct {
	DryRun bool   `json:"dryRun"` // always true: nothing was created
	Source string `json:"source"` // the source, without secrets
	Target string `json:"target"` // container id and folder

	Files    int   `json:"files"`    // source files (current versions)
	Versions int   `json:"versions"` // blobs, counting every version kept
	Bytes    int64 `json:"bytes"`    // of every version kept

	Kept    int `json:"kept"`    // imported under their own names
	Renamed int `json:"renamed"` // imported under another name
	Skipped int `json:"skipped"` // left out by the naming policy
	// ImportBytes is the plaintext the migration would move (kept and renamed).
	ImportBytes int64 `json:"importBytes"`
	// Rules counts files per naming rule applied.
	Rules    map[naming.Rule]int `json:"rules"`
	Renames  []Change            `json:"renames"`
	Skips    []Change            `json:"skips"`
	Truncate bool                `json:"listTruncated,omitempty"` // Renames or Skips hit MaxListed

	Largest      []File      `json:"largest"`
	LongestPaths []File      `json:"longestPaths"`
	Extensions   []Extension `json:"extensions"`

	Packages int            `json:"packages"` // import packages (one per batch)
	Jobs     int            `json:"jobs"`     // migration jobs: one per package
	Limits   staging.Limits `json:"limits"`
	Estimate Estimate       `json:"estimate"`

	// Notes say what a scan cannot know.
	Notes   []string      `json:"notes"`
	Elapsed time.Duration `json:"elapsed"`
}

// Change is one renamed or skipped file.
type Change struct {
	Source string        `json:"source"`
	Target string        `json:"target,omitempty"`
	Rules  []naming.Rule `json:"rules"`
	Reason string        `json:"reason"`
}

// File is one entry of the largest files or longest paths.
type File struct {
	Source string `json:"source"`
	Target string `json:"target,omitempty"`
	Size   int64  `json:"size"`
	// PathLength is the decoded server-relative length SharePoint checks
	// against 400, in UTF-16 code units, library URL included.
	PathLength int `json:"pathLength"`
}

// Extension is one line of the extension histogram.
type Extension struct {
	Ext   string `json:"ext"` // lower-case with its dot, "" for none
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
}

// Run scans the source src of request r (src is what the request's source
// names; the caller opens it, with credentials the caller holds).
func Run(ctx context.Context, r request.Request, src source.Source, o Options) (*Report, error) {
	if src == nil {
		return nil, errors.New("scan: source is nil")
	}
	o = o.withDefaults()
	r.ApplyDefaults()
	start := o.Now()
	pol := NamingPolicy(r)
	pol.LibraryURL = o.LibraryURL
	mp, err := naming.NewMapper("scan", pol, naming.NewMemoryClaims())
	if err != nil {
		return nil, fmt.Errorf("scan: naming policy: %w", err)
	}
	s := &scanner{r: r, o: o, mapper: mp, exts: map[string]*Extension{}, rep: &Report{
		DryRun: true, Source: describeSource(r.Source), Target: describeTarget(r.Target),
		Rules: map[naming.Rule]int{}, Renames: []Change{}, Skips: []Change{},
		Limits: limits(r),
	}}
	cursor := ""
	for {
		pg, err := src.List(ctx, cursor, o.PageSize)
		if err != nil {
			return nil, fmt.Errorf("scan: list source: %w", err)
		}
		if err := s.page(ctx, pg.Entries); err != nil {
			return nil, err
		}
		if pg.Next == "" || pg.Next == cursor {
			break
		}
		cursor = pg.Next
	}
	s.finish()
	s.rep.Elapsed = o.Now().Sub(start)
	return s.rep, nil
}

// NamingPolicy is the naming policy a request asks for, without the
// library URL (the engine learns it from Graph). The engine's naming
// adapter and the scan both use it, so they decide the same names.
func NamingPolicy(r request.Request) naming.Policy {
	n := r.Options.Naming
	pol := naming.Policy{Replacement: n.Replacement, WindowsSafe: n.IsWindowsSafe()}
	if n.InvalidChars == request.InvalidCharsSkip {
		pol.Invalid = naming.SkipInvalid
	}
	if n.Collisions == request.CollisionsSkip {
		pol.Collisions = naming.SkipCollisions
	}
	return pol
}

func limits(r request.Request) staging.Limits {
	lim := staging.Limits{MaxItems: r.Options.Batch.MaxItems, MaxBytes: r.Options.Batch.MaxBytes}
	if lim.MaxItems <= 0 || lim.MaxBytes <= 0 {
		lim = staging.DefaultLimits
	}
	return lim
}

func describeSource(s request.Source) string {
	where := s.Path
	if s.Kind == request.KindAzureBlob {
		where = source.Redact(s.ContainerURL)
	}
	if s.Prefix != "" {
		where += " (prefix " + s.Prefix + ")"
	}
	return s.Kind + " " + where
}

func describeTarget(t request.Target) string {
	if t.Folder == "" {
		return t.ContainerID
	}
	return t.ContainerID + " folder " + t.Folder
}

// destPath is where the engine puts a source path: under the request's
// destination folder.
func destPath(r request.Request, p string) string {
	if f := strings.Trim(r.Target.Folder, "/"); f != "" {
		return f + "/" + p
	}
	return p
}

func utf16Len(s string) int { return len(utf16.Encode([]rune(s))) }

// extOf is the histogram key of a path: its last extension, lower-cased.
func extOf(p string) string {
	e := path.Ext(path.Base(p))
	if e == path.Base(p) { // ".bashrc" has no extension
		return ""
	}
	return strings.ToLower(e)
}

// keepTop inserts f into top (sorted by less, at most n) and returns it.
func keepTop(top []File, f File, n int, less func(a, b File) bool) []File {
	// Ties go after what is already listed, so earlier files win.
	i, _ := slices.BinarySearchFunc(top, f, func(a, b File) int {
		if less(b, a) {
			return 1
		}
		return -1
	})
	if i >= n {
		return top
	}
	top = slices.Insert(top, i, f)
	if len(top) > n {
		top = top[:n]
	}
	return top
}
