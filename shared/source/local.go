package source

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Local is a folder on the local file system, for small runs and tests.
//
// It lists regular files (symbolic links to files are followed, links to
// folders are not, so a link cycle cannot loop) in lexical order segment by
// segment, the order of fs.WalkDir. Nothing outside the folder is read: the
// folder's own path is resolved once, every read goes through os.Root, and a
// link that leads outside is listed but refused by Open (ErrOutsideRoot), so
// the item is reported failed with that reason. The cursor is the last path returned.
// Times come from the file system; Created is zero because portable Go
// cannot read a birth time. ETag is derived from size and modification time.
type Local struct {
	root string
}

// NewLocal opens the folder at root.
func NewLocal(root string) (*Local, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("source: local folder %q: %w", root, err)
	}
	// Resolved once: a link swapped in for the folder later changes nothing.
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("source: local folder %q: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("source: local folder %q: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("source: local folder %q is not a folder: give the folder to migrate", root)
	}
	return &Local{root: abs}, nil
}

// String names the source for logs.
func (l *Local) String() string { return l.root }

// List returns up to max files after cursor, in walk order.
func (l *Local) List(ctx context.Context, cursor string, max int) (Page, error) {
	if max <= 0 {
		return Page{}, fmt.Errorf("source: list page size is %d: give a positive size", max)
	}
	w := walker{ctx: ctx, root: l.root, after: cursor, limit: max + 1}
	if err := w.dir(""); err != nil && err != errPageFull {
		return Page{}, err
	}
	p := Page{Entries: w.out}
	if len(p.Entries) > max {
		p.Entries = p.Entries[:max]
		p.Next = p.Entries[max-1].Path
	}
	return p, nil
}

var errPageFull = fmt.Errorf("page full")

type walker struct {
	ctx   context.Context
	root  string
	after string
	limit int
	out   []Entry
}

// dir walks one folder (rel is slash-separated, "" for the root), skipping
// whole subtrees that sort before the cursor.
func (w *walker) dir(rel string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	des, err := readDirInRoot(w.root, rel)
	if err != nil {
		return fmt.Errorf("source: read folder %q: %w", rel, err)
	}
	sort.Slice(des, func(i, j int) bool { return des[i].Name() < des[j].Name() })
	for _, de := range des {
		p := path.Join(rel, de.Name())
		mode := de.Type()
		var info fs.FileInfo
		if mode&fs.ModeSymlink != 0 {
			full := filepath.Join(w.root, filepath.FromSlash(p))
			outside, ok := outsideRoot(w.root, full)
			if !ok {
				continue // dangling
			}
			if outside {
				// Listed without reading where it leads; Open refuses it,
				// so the report says why the file is missing.
				if w.after != "" && comparePaths(p, w.after) <= 0 {
					continue
				}
				w.out = append(w.out, Entry{Path: p})
				if len(w.out) >= w.limit {
					return errPageFull
				}
				continue
			}
			fi, err := os.Stat(full)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			info, mode = fi, 0
		}
		if mode.IsDir() {
			if w.after != "" && comparePaths(p, w.after) < 0 && !strings.HasPrefix(w.after, p+"/") {
				continue
			}
			if err := w.dir(p); err != nil {
				return err
			}
			continue
		}
		if !mode.IsRegular() {
			continue
		}
		if w.after != "" && comparePaths(p, w.after) <= 0 {
			continue
		}
		if info == nil {
			if info, err = de.Info(); err != nil {
				return fmt.Errorf("source: stat %q: %w", p, err)
			}
		}
		mod := info.ModTime().UTC()
		w.out = append(w.out, Entry{
			Path:     p,
			Size:     info.Size(),
			Modified: mod,
			ETag:     strconv.FormatInt(info.Size(), 16) + "-" + strconv.FormatInt(mod.UnixNano(), 16),
		})
		if len(w.out) >= w.limit {
			return errPageFull
		}
	}
	return nil
}

// comparePaths orders slash paths segment by segment, which is the order
// the walk visits them ("a/b" before "a-c", unlike plain string order).
func comparePaths(a, b string) int {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if c := strings.Compare(as[i], bs[i]); c != 0 {
			return c
		}
	}
	return len(as) - len(bs)
}

// Open streams the file at e.Path.
func (l *Local) Open(ctx context.Context, e Entry) (io.ReadCloser, error) {
	if !filepath.IsLocal(filepath.FromSlash(e.Path)) {
		return nil, fmt.Errorf("source: open %q: path leaves the source folder", e.Path)
	}
	f, err := openInRoot(l.root, e.Path)
	if err != nil {
		return nil, fmt.Errorf("source: open %q: %w", e.Path, err)
	}
	return f, nil
}
