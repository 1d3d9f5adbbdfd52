// Package verify checks a finished migration against its source: every
// eligible file is in the target drive, byte-identical (SHA-256, streamed),
// with the source's timestamps and author, no file is there twice, and every
// renamed or skipped file is in the per-item report with the reason the
// naming policy gives. It reads the target only through Graph's drive
// endpoints, so the same check runs against the local emulator or a real
// tenant. The demo and the end-to-end tests use it.
package verify

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/spemigrate/spemigrate/infra/local/sample"
	spv "github.com/spemigrate/spemigrate/shared/verify"
)

// The drive reader and the report parser are the production package's;
// this package keeps the check against a seeded sample, whose SHA-256 it
// knows, for the demo and the tests.
type (
	Graph     = spv.Graph
	DriveItem = spv.DriveItem
	Row       = spv.Row
	Summary   = spv.Summary
)

var (
	NewGraph    = spv.NewGraph
	ParseReport = spv.ParseReport
	Summarise   = spv.Summarise
	ErrNotFound = spv.ErrNotFound
)

// Options say what to check.
type Options struct {
	Graph   *Graph
	DriveID string
	// Folder is the request's destination folder ("" for the root).
	Folder string
	// Source is the uploaded set; SourceRoot is the request's prefix, which
	// the migration strips from source paths.
	Source     []sample.Blob
	SourceRoot string
	Report     []Row
	// Times and Authors turn on the timestamp and author checks (the
	// request's preserve options).
	Times, Authors bool
	// Exclusive: the folder holds nothing but this migration's files and
	// Preexisting.
	Exclusive bool
	// Preexisting are files the folder held before the migration (paths
	// relative to Folder, as Graph.Walk returns them, e.g. what a container
	// in use holds): the exclusive check leaves them out unless the
	// migration brought a file to the same path.
	Preexisting []string
	// Concurrency bounds parallel content downloads (default 4).
	Concurrency int
}

// Result is what Check found.
type Result struct {
	// Checked counts files read back from the target and compared.
	Checked int
	// Bytes counts the content bytes read back.
	Bytes    int64
	Renamed  int
	Skipped  int
	Problems []string
}

// OK reports whether the migration passed.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

// Err is nil for a passed check, otherwise an error listing the problems.
func (r *Result) Err() error {
	if r.OK() {
		return nil
	}
	const show = 20
	var b strings.Builder
	fmt.Fprintf(&b, "verification failed: %d problems", len(r.Problems))
	for i, p := range r.Problems {
		if i == show {
			fmt.Fprintf(&b, "\n  … and %d more", len(r.Problems)-show)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(p)
	}
	return errors.New(b.String())
}

// Check compares the target with the source. It returns an error only when
// it could not check (Graph unreachable); differences are Result.Problems.
func Check(ctx context.Context, o Options) (*Result, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	c := &checker{o: o, res: &Result{}}
	wants := c.matchReport()
	if err := c.checkTarget(ctx, wants); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if o.Exclusive {
		if err := c.checkExclusive(ctx, wants); err != nil {
			return nil, fmt.Errorf("verify: walk target: %w", err)
		}
	}
	sort.Strings(c.res.Problems)
	return c.res, nil
}

// checker is one Check run. Its problem method is safe for the parallel
// content checks; the counters in res are guarded by mu while those run.
type checker struct {
	o   Options
	mu  sync.Mutex
	res *Result
}

// want is a source file the target should hold.
type want struct {
	blob   sample.Blob
	target string // path in the drive
}

func (c *checker) problem(format string, args ...any) {
	c.mu.Lock()
	c.res.Problems = append(c.res.Problems, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// matchReport checks that every source file has exactly one report row
// with the outcome its naming expectation calls for, and that the report
// names nothing else. It returns the files that should be in the target.
func (c *checker) matchReport() []want {
	o := c.o
	byPath := map[string][]Row{}
	for _, r := range o.Report {
		byPath[r.SourcePath] = append(byPath[r.SourcePath], r)
	}
	known := map[string]bool{}
	var wants []want
	for _, b := range o.Source {
		rel := strings.TrimPrefix(b.Path, o.SourceRoot)
		known[rel] = true
		rows := byPath[rel]
		if len(rows) != 1 {
			c.problem("%q: %d report rows, want 1", rel, len(rows))
			continue
		}
		if w, ok := c.matchRow(b, rel, rows[0]); ok {
			wants = append(wants, w)
		}
	}
	for _, r := range o.Report {
		if !known[r.SourcePath] {
			c.problem("%q: in the report but not in the source", r.SourcePath)
		}
	}
	return wants
}

// matchRow checks the report row r of source file b (rel below the source
// root) and counts renames and skips. It returns where the file should be
// in the target, or false when it should not be there or the row is wrong.
func (c *checker) matchRow(b sample.Blob, rel string, r Row) (want, bool) {
	same := joinPath(c.o.Folder, rel) // report targets are container paths
	switch {
	case b.ExpectSkipped:
		if r.Outcome != "skipped" || !strings.Contains(r.Reason, b.Expect) {
			c.problem("%q: outcome %s (%s), want skipped for %s", rel, r.Outcome, r.Reason, b.Expect)
		}
		c.res.Skipped++
		return want{}, false
	case b.Expect != "":
		if r.Outcome != "renamed" || !strings.Contains(r.Reason, b.Expect) || r.TargetPath == same {
			c.problem("%q: outcome %s to %q (%s), want renamed for %s", rel, r.Outcome, r.TargetPath, r.Reason, b.Expect)
			return want{}, false
		}
		c.res.Renamed++
	default:
		if r.Outcome != "imported" || r.TargetPath != same {
			c.problem("%q: outcome %s to %q (%s), want imported under the same path", rel, r.Outcome, r.TargetPath, r.Reason)
			return want{}, false
		}
	}
	if r.Size != b.Size {
		c.problem("%q: report size %d, source %d", rel, r.Size, b.Size)
	}
	return want{b, r.TargetPath}, true
}

// checkTarget reads every wanted file back from the target, Concurrency
// at a time, and compares it with its source.
func (c *checker) checkTarget(ctx context.Context, wants []want) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.o.Concurrency)
	for _, w := range wants {
		g.Go(func() error { return c.checkFile(gctx, w) })
	}
	return g.Wait()
}

// checkFile compares one target file's size, content and, when asked,
// timestamps and author with its source.
func (c *checker) checkFile(ctx context.Context, w want) error {
	o := c.o
	it, err := o.Graph.ItemByPath(ctx, o.DriveID, w.target)
	if errors.Is(err, ErrNotFound) {
		c.problem("%q: not in the target at %q", w.blob.Path, w.target)
		return nil
	}
	if err != nil {
		return err
	}
	if it.File == nil {
		c.problem("%q: target %q is not a file", w.blob.Path, w.target)
		return nil
	}
	if it.Size != w.blob.Size {
		c.problem("%q: target size %d, source %d", w.blob.Path, it.Size, w.blob.Size)
	}
	sum, n, err := o.Graph.ContentSHA256(ctx, o.DriveID, it.ID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.res.Checked++
	c.res.Bytes += n
	c.mu.Unlock()
	if sum != w.blob.SHA256 {
		c.problem("%q: content differs (SHA-256 %x, source %x)", w.blob.Path, sum[:8], w.blob.SHA256[:8])
	}
	c.checkMetadata(w.blob, it)
	return nil
}

// checkMetadata compares the timestamps (Options.Times) and the author
// (Options.Authors) the target kept with the source's.
func (c *checker) checkMetadata(b sample.Blob, it DriveItem) {
	if c.o.Times {
		if !sameSecond(it.CreatedDateTime, b.Created) {
			c.problem("%q: created %s, source %s", b.Path, it.CreatedDateTime.Format(time.RFC3339), b.Created.Format(time.RFC3339))
		}
		if !sameSecond(it.LastModifiedDateTime, b.Modified) {
			c.problem("%q: modified %s, source %s", b.Path, it.LastModifiedDateTime.Format(time.RFC3339), b.Modified.Format(time.RFC3339))
		}
	}
	if a := b.Author(); c.o.Authors && a != "" && !strings.EqualFold(it.CreatedBy.Who(), a) {
		c.problem("%q: created by %q, source author %q", b.Path, it.CreatedBy.Who(), a)
	}
}

// checkExclusive walks the destination folder and reports every file that
// is not one of wants (a duplicate, say) and a file count that differs.
func (c *checker) checkExclusive(ctx context.Context, wants []want) error {
	files, err := c.o.Graph.Walk(ctx, c.o.DriveID, c.o.Folder)
	if err != nil {
		return err
	}
	expected := map[string]bool{}
	for _, w := range wants {
		expected[strings.ToLower(w.target)] = true
	}
	before := map[string]bool{}
	for _, p := range c.o.Preexisting {
		before[strings.ToLower(p)] = true
	}
	var extra []string
	n := 0
	for p := range files {
		k := strings.ToLower(p)
		if before[k] && !expected[k] {
			continue
		}
		n++
		if !expected[k] {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	for _, p := range extra {
		c.problem("%q: in the target but not expected (a duplicate?)", p)
	}
	if n != len(wants) {
		c.problem("target holds %d files besides those it held before, want %d", n, len(wants))
	}
	return nil
}

func joinPath(folder, p string) string {
	if folder == "" {
		return p
	}
	return path.Join(folder, p)
}

// sameSecond compares times at the precision a manifest carries.
func sameSecond(a, b time.Time) bool {
	return a.UTC().Truncate(time.Second).Equal(b.UTC().Truncate(time.Second))
}
