package spepackage

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// timeLayout is xs:dateTime in UTC without a zone, as SharePoint's own
// packages write it (§6.6).
const timeLayout = "2006-01-02T15:04:05"

// manifestWriter holds what one Manifest.xml stream needs.
type manifestWriter struct {
	x       *xw
	p       Package
	users   *userMap
	web     string // server-relative web URL
	webID   string
	listID  string
	emitted map[string]bool // normalised library paths of folders in this package
	rep     *Report
}

func writeManifest(ctx context.Context, w io.Writer, p Package, items []Item, users *userMap) (Report, error) {
	m := &manifestWriter{
		x:       newXW(w),
		p:       p,
		users:   users,
		web:     p.Target.webPath(),
		webID:   p.Target.WebID.String(),
		listID:  p.Target.ListID.String(),
		emitted: map[string]bool{},
		rep:     &Report{Items: make([]ItemReport, 0, len(items))},
	}
	m.x.start("SPObjects", "xmlns", "urn:deployment-manifest-schema")
	for i := range items {
		if err := ctx.Err(); err != nil {
			return Report{}, err
		}
		it := &items[i]
		lib := p.Target.LibraryPath(it.Path)
		if err := m.ensureParents(ctx, lib); err != nil {
			return Report{}, err
		}
		var err error
		if it.Folder && m.existing(lib) {
			continue
		}
		if it.Folder {
			err = m.folder(ctx, it, lib, false)
		} else {
			err = m.file(ctx, it, lib)
		}
		if err != nil {
			return Report{}, err
		}
	}
	m.x.end("SPObjects")
	if err := m.x.close(); err != nil {
		return Report{}, err
	}
	return *m.rep, nil
}

// parentID is the GUID of the folder holding libraryPath.
func (m *manifestWriter) parentID(lib string) string {
	parent := parentOf(lib)
	dest := cleanPath(m.p.Target.DestinationPath)
	switch {
	case parent == "":
		return m.p.Target.RootFolderID.String()
	case strings.EqualFold(parent, dest):
		return m.p.Target.DestinationID.String()
	}
	if id, ok := m.p.ExistingFolders[PathKey(parent)]; ok {
		return id.String()
	}
	return ObjectID(m.p.Namespace, parent).String()
}

// existing reports whether lib is a folder the library holds already.
func (m *manifestWriter) existing(lib string) bool {
	_, ok := m.p.ExistingFolders[PathKey(lib)]
	return ok
}

func parentOf(lib string) string {
	d := path.Dir(lib)
	if d == "." {
		return ""
	}
	return d
}

// ensureParents emits every folder strictly between the destination and lib
// that this package has not emitted yet.
func (m *manifestWriter) ensureParents(ctx context.Context, lib string) error {
	dest := cleanPath(m.p.Target.DestinationPath)
	rel := strings.TrimPrefix(strings.TrimPrefix(lib, dest), "/")
	segs := strings.Split(rel, "/")
	prefix := dest
	for _, s := range segs[:len(segs)-1] {
		prefix = cleanPath(path.Join(prefix, s))
		if m.emitted[normalise(prefix)] || m.existing(prefix) {
			continue
		}
		relPath := strings.TrimPrefix(strings.TrimPrefix(prefix, dest), "/")
		if err := m.folder(ctx, &Item{Path: relPath, Folder: true}, prefix, true); err != nil {
			return err
		}
	}
	return nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// objectURL is SPObject@Url, an absolute URL: each path segment is
// escaped, so a name such as "#hash.txt" or "with%20space.txt" names that
// file and not a fragment or "with space.txt".
func (m *manifestWriter) objectURL(lib string) string {
	return m.p.Target.siteURL() + "/" + escapeSegments(m.webRelative(lib))
}

func escapeSegments(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// dirName is ListItem@DirName of the folder holding lib.
func (m *manifestWriter) dirName(lib string) string {
	d := m.webRelative(parentOf(lib))
	if m.p.Options.DirName == DirNameServerRelative {
		return strings.TrimRight(m.web, "/") + "/" + d
	}
	return d
}

func (m *manifestWriter) webRelative(lib string) string {
	if lib == "" {
		return m.p.Target.library()
	}
	return m.p.Target.library() + "/" + lib
}

func (m *manifestWriter) folder(ctx context.Context, it *Item, lib string, synthesised bool) error {
	intID, err := m.p.IDs.IntID(ctx, lib)
	if err != nil {
		return fmt.Errorf("list item id for %q: %w", lib, err)
	}
	m.emitted[normalise(lib)] = true
	id := ObjectID(m.p.Namespace, lib).String()
	itemID := ListItemID(m.p.Namespace, lib)
	parent := m.parentID(lib)
	name := path.Base(lib)
	author, editor := m.users.id(it.Author), m.users.id(it.ModifiedBy)
	created, modified := fmtTime(it.Created), fmtTime(it.Modified)
	ints := strconv.Itoa(intID)
	url := m.webRelative(lib)

	x := m.x
	x.start("SPObject", "Id", id, "ObjectType", "SPFolder", "ParentId", parent,
		"ParentWebId", m.webID, "ParentWebUrl", m.web, "Url", m.objectURL(lib))
	// Folder has no anyAttribute: only schema attributes, empty ones left out.
	x.empty("Folder", "Id", id, "Name", name, "Url", url, "ParentFolderId", parent,
		"ParentWebId", m.webID, "ParentWebUrl", m.web, "ContainingDocumentLibrary", m.listID,
		"ListItemIntId", ints, "TimeCreated", created, "TimeLastModified", modified,
		"Author", author, "ModifiedBy", editor)
	x.end("SPObject")

	x.start("SPObject", "Id", itemID.String(), "ObjectType", "SPListItem", "ParentId", m.listID,
		"ParentWebId", m.webID, "ParentWebUrl", m.web, "Url", m.objectURL(lib))
	x.start("ListItem", "Id", itemID.String(), "DocType", "Folder", "DocId", id,
		"IntId", ints, "Order", strconv.Itoa(intID*100), "Name", name, "FileUrl", url,
		"DirName", m.dirName(lib), "ParentFolderId", parent,
		"ParentWebId", m.webID, "ParentListId", m.listID,
		"TimeCreated", created, "TimeLastModified", modified, "Author", author, "ModifiedBy", editor)
	x.empty("Fields")
	x.end("ListItem")
	x.end("SPObject")

	m.rep.Items = append(m.rep.Items, ItemReport{
		Path: it.Path, LibraryPath: lib, Folder: true, Synthesised: synthesised,
		ID: ObjectID(m.p.Namespace, lib), ListItemID: itemID, IntID: intID,
		Author: choice(author, editor),
	})
	return x.err
}
