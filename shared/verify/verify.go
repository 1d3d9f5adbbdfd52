// Package verify checks a finished migration against its target through
// Microsoft Graph's drive endpoints, read-only: for every file the report
// says was imported or renamed, that the target has a file at the reported
// path, with the source's size, times and author, and the same content
// where it can tell: Graph's quickXorHash of the target against the same
// hash of the source bytes, and, for a sample of the files, a byte-by-byte
// comparison of the downloaded content. Results are per item, so a report
// says exactly which files failed and why. spemigrate verify uses it; the
// local demo's stricter check (infra/local/verify) reads Graph through it.
package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Expect is one file the target should hold.
type Expect struct {
	Source string // source path, as in the report
	Target string // path in the drive (the report's target_path)
	Size   int64
	// Created and Modified are the source's times; zero is not checked.
	Created, Modified time.Time
	// Author is the identity the file should be created by; empty is not
	// checked.
	Author string
	// Open reads the source content, for the hash and byte comparisons;
	// nil checks presence, size, times and author only.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// Options say how to check.
type Options struct {
	DriveID string
	// Concurrency bounds the files checked at once (default 4).
	Concurrency int
	// Sample is the fraction of files, 0 to 1, whose content is also
	// downloaded and compared byte by byte with the source (default 0:
	// the hash only). The choice is a hash of the source path, so the same
	// files are sampled each time.
	Sample float64
}

// Item outcomes.
const (
	Passed  = "passed"
	Failed  = "failed"
	Missing = "missing"
)

// ItemResult is what was found for one file.
type ItemResult struct {
	Source string `json:"source"`
	Target string `json:"target"`
	Status string `json:"status"` // passed, failed or missing
	// Checked lists what was compared: size, created, modified, author,
	// quickXorHash, bytes.
	Checked  []string `json:"checked"`
	Problems []string `json:"problems,omitempty"`
	// TargetItemID and TargetListItemID are the driveItem id and the
	// SharePoint list item id found at the target path.
	TargetItemID     string `json:"targetItemId,omitempty"`
	TargetListItemID string `json:"targetListItemId,omitempty"`
}

// Result is a whole check.
type Result struct {
	Items   []ItemResult `json:"items"`
	Passed  int          `json:"passed"`
	Failed  int          `json:"failed"`
	Missing int          `json:"missing"`
	// HashChecked and BytesCompared count files whose content was compared
	// by quickXorHash and byte by byte.
	HashChecked   int `json:"hashChecked"`
	BytesCompared int `json:"bytesCompared"`
}

// OK reports whether every file passed.
func (r *Result) OK() bool { return r.Failed == 0 && r.Missing == 0 }

// Check reads every expected file back through g. It returns an error only
// when it could not check (Graph unreachable, a source that cannot be
// read is a failed item instead); differences are failed items.
func Check(ctx context.Context, g *Graph, want []Expect, o Options) (*Result, error) {
	if g == nil || o.DriveID == "" {
		return nil, errors.New("verify: a Graph reader and Options.DriveID are required")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	res := &Result{Items: make([]ItemResult, len(want))}
	var mu sync.Mutex
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(o.Concurrency)
	for i, w := range want {
		eg.Go(func() error {
			ir, hashed, compared, err := checkOne(ectx, g, w, o)
			if err != nil {
				return fmt.Errorf("verify %q: %w", w.Target, err)
			}
			mu.Lock()
			defer mu.Unlock()
			res.Items[i] = ir
			res.HashChecked += hashed
			res.BytesCompared += compared
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	for _, it := range res.Items {
		switch it.Status {
		case Passed:
			res.Passed++
		case Missing:
			res.Missing++
		default:
			res.Failed++
		}
	}
	return res, nil
}

// checkOne checks one file; the counts say whether its hash was compared
// and whether its bytes were.
func checkOne(ctx context.Context, g *Graph, w Expect, o Options) (ItemResult, int, int, error) {
	ir := ItemResult{Source: w.Source, Target: w.Target, Status: Passed, Checked: []string{}}
	fail := func(format string, args ...any) {
		ir.Status = Failed
		ir.Problems = append(ir.Problems, fmt.Sprintf(format, args...))
	}
	it, err := g.ItemByPath(ctx, o.DriveID, w.Target)
	if errors.Is(err, ErrNotFound) {
		ir.Status, ir.Problems = Missing, []string{"not in the target"}
		return ir, 0, 0, nil
	}
	if err != nil {
		return ir, 0, 0, err
	}
	ir.TargetItemID = it.ID
	if it.SharepointIDs != nil {
		ir.TargetListItemID = it.SharepointIDs.ListItemID
	}
	if it.File == nil {
		fail("the target is a folder, not a file")
		return ir, 0, 0, nil
	}
	checkMetadata(&ir, it, w, fail)
	if w.Open == nil {
		return ir, 0, 0, nil
	}
	sampled := o.Sample > 0 && sampledPath(w.Source, o.Sample)
	hashed, compared, err := checkContent(ctx, g, o.DriveID, it, w, sampled, &ir, fail)
	return ir, hashed, compared, err
}

func checkMetadata(ir *ItemResult, it DriveItem, w Expect, fail func(string, ...any)) {
	ir.Checked = append(ir.Checked, "size")
	if it.Size != w.Size {
		fail("size %d, source %d", it.Size, w.Size)
	}
	if !w.Created.IsZero() {
		ir.Checked = append(ir.Checked, "created")
		if !sameSecond(it.CreatedDateTime, w.Created) {
			fail("created %s, source %s", it.CreatedDateTime.UTC().Format(time.RFC3339), w.Created.UTC().Format(time.RFC3339))
		}
	}
	if !w.Modified.IsZero() {
		ir.Checked = append(ir.Checked, "modified")
		if !sameSecond(it.LastModifiedDateTime, w.Modified) {
			fail("modified %s, source %s", it.LastModifiedDateTime.UTC().Format(time.RFC3339), w.Modified.UTC().Format(time.RFC3339))
		}
	}
	if w.Author != "" {
		ir.Checked = append(ir.Checked, "author")
		if !strings.EqualFold(it.CreatedBy.Who(), w.Author) {
			fail("created by %q, source author %q", it.CreatedBy.Who(), w.Author)
		}
	}
}

// checkContent hashes the source (when Graph gives the target's
// quickXorHash) and, for a sampled file, compares the target's bytes with
// the source's as both stream.
func checkContent(ctx context.Context, g *Graph, driveID string, it DriveItem, w Expect, sampled bool, ir *ItemResult, fail func(string, ...any)) (int, int, error) {
	want := it.File.Hashes.QuickXorHash
	if want == "" && !sampled {
		return 0, 0, nil
	}
	src, err := w.Open(ctx)
	if err != nil {
		fail("source cannot be read: %v", err)
		return 0, 0, nil
	}
	defer src.Close()
	qx := NewQuickXor()
	var rd io.Reader = io.TeeReader(src, qx)
	hashed, compared := 0, 0
	if sampled {
		tgt, err := g.Content(ctx, driveID, it.ID)
		if err != nil {
			return 0, 0, err
		}
		defer tgt.Close()
		ir.Checked = append(ir.Checked, "bytes")
		compared = 1
		if off, same, err := sameStream(rd, tgt); err != nil {
			fail("bytes not compared: %v", err)
		} else if !same {
			fail("content differs from the source at byte %d", off)
		}
		if _, err := io.Copy(io.Discard, rd); err != nil { // finish the source's hash
			fail("source cannot be read: %v", err)
			return 0, compared, nil
		}
	} else if _, err := io.Copy(io.Discard, rd); err != nil {
		fail("source cannot be read: %v", err)
		return 0, 0, nil
	}
	if want != "" {
		ir.Checked = append(ir.Checked, "quickXorHash")
		hashed = 1
		if got := QuickXorString(qx.Sum(nil)); got != want {
			fail("content differs: quickXorHash %s, source %s", want, got)
		}
	}
	return hashed, compared, nil
}

// sameStream compares two streams to their ends; off is the first byte
// that differs (or where one ends early).
func sameStream(a, b io.Reader) (off int64, same bool, err error) {
	ba, bb := make([]byte, 256<<10), make([]byte, 256<<10)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if i := firstDiff(ba[:na], bb[:nb]); i >= 0 {
			return off + int64(i), false, nil
		}
		off += int64(na)
		aEnd := ea == io.EOF || ea == io.ErrUnexpectedEOF
		bEnd := eb == io.EOF || eb == io.ErrUnexpectedEOF
		switch {
		case ea != nil && !aEnd:
			return off, false, fmt.Errorf("source: %w", ea)
		case eb != nil && !bEnd:
			return off, false, fmt.Errorf("target: %w", eb)
		case aEnd || bEnd:
			return off, aEnd && bEnd, nil
		}
	}
}

func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i += 4096 {
		j := min(i+4096, n)
		if !bytes.Equal(a[i:j], b[i:j]) {
			for k := i; k < j; k++ {
				if a[k] != b[k] {
					return k
				}
			}
		}
	}
	if len(a) != len(b) {
		return n
	}
	return -1
}

// sampledPath picks a stable fraction of paths.
func sampledPath(p string, fraction float64) bool {
	if fraction >= 1 {
		return true
	}
	h := sha256.Sum256([]byte(p))
	return float64(binary.BigEndian.Uint64(h[:8]))/float64(^uint64(0)) < fraction
}

// sameSecond compares times at the precision a manifest carries.
func sameSecond(a, b time.Time) bool {
	return a.UTC().Truncate(time.Second).Equal(b.UTC().Truncate(time.Second))
}

// Failures returns the items that did not pass, in target order.
func (r *Result) Failures() []ItemResult {
	var out []ItemResult
	for _, it := range r.Items {
		if it.Status != Passed {
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b ItemResult) int { return strings.Compare(a.Target, b.Target) })
	return out
}
