package spepackage

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"

	"github.com/google/uuid"
)

// fileObject is what a file's SPFile and SPListItem objects share, worked
// out once: both carry the same ids, names, author and per-version editors.
type fileObject struct {
	it      *Item // versions already capped by Options.MaxVersions
	lib     string
	id      string
	itemID  uuid.UUID
	parent  string
	name    string
	url     string
	dirName string
	intID   int
	created string
	author  string
	editors []string // user id of each version's ModifiedBy, "" when unmapped
}

// current is the index of the current (newest) version.
func (f *fileObject) current() int { return len(f.it.Versions) - 1 }

// file emits a file as an SPFile object and its SPListItem, each with the
// file's older versions nested under Versions.
func (m *manifestWriter) file(ctx context.Context, it *Item, lib string) error {
	intID, err := m.p.IDs.IntID(ctx, lib)
	if err != nil {
		return fmt.Errorf("list item id for %q: %w", lib, err)
	}
	// The author is looked up before the editors so user ids are handed out
	// in the same order as the item reads.
	author := m.users.id(it.Author)
	kept, dropped := capVersions(it, m.p.Options.MaxVersions)
	f := &fileObject{
		it:      kept,
		lib:     lib,
		id:      ObjectID(m.p.Namespace, lib).String(),
		itemID:  ListItemID(m.p.Namespace, lib),
		parent:  m.parentID(lib),
		name:    path.Base(lib),
		url:     m.webRelative(lib),
		dirName: m.dirName(lib),
		intID:   intID,
		created: fmtTime(it.Created),
		author:  author,
		editors: make([]string, len(kept.Versions)),
	}
	for i, v := range kept.Versions {
		f.editors[i] = m.users.id(v.ModifiedBy)
	}

	m.writeSPFile(f)
	m.writeFileListItem(f)

	m.rep.Items = append(m.rep.Items, ItemReport{
		Path: kept.Path, LibraryPath: lib, ID: ObjectID(m.p.Namespace, lib), ListItemID: f.itemID,
		IntID: intID, Author: choice(append(f.editors, f.author)...), VersionsDropped: dropped,
	})
	return m.x.err
}

// capVersions keeps the newest max versions of it (max <= 0: all of them)
// and says how many older ones it dropped. Labels stay as they were, so a
// dropped 1.0 leaves the history starting at its successor; unlabelled
// versions get the label their position in the full history gives them.
func capVersions(it *Item, max int) (*Item, int) {
	if max <= 0 || len(it.Versions) <= max {
		return it, 0
	}
	dropped := len(it.Versions) - max
	kept := *it
	kept.Versions = it.Versions[dropped:]
	if kept.Versions[0].Label == "" {
		labelled := slices.Clone(kept.Versions)
		for i := range labelled {
			labelled[i].Label = label(it, dropped+i)
		}
		kept.Versions = labelled
	}
	return &kept, dropped
}

// writeSPFile emits the SPFile object: the current version's File element
// with the older versions nested inside it.
func (m *manifestWriter) writeSPFile(f *fileObject) {
	x := m.x
	cur := f.current()
	x.start("SPObject", "Id", f.id, "ObjectType", "SPFile", "ParentId", f.parent,
		"ParentWebId", m.webID, "ParentWebUrl", m.web, "Url", m.objectURL(f.lib))
	x.start("File", m.fileAttrs(f, cur)...)
	if cur > 0 {
		x.start("Versions")
		for i := 0; i < cur; i++ {
			x.empty("File", m.fileAttrs(f, i)...)
		}
		x.end("Versions")
	}
	x.end("File")
	x.end("SPObject")
}

// fileAttrs are the File element's attributes for version i.
func (m *manifestWriter) fileAttrs(f *fileObject, i int) []string {
	v := f.it.Versions[i]
	return []string{"Id", f.id, "Name", f.name, "Url", f.url, "ListItemIntId", strconv.Itoa(f.intID),
		"ListId", m.listID, "ParentId", f.parent, "ParentWebId", m.webID, "ParentWebUrl", m.web,
		"Version", label(f.it, i), "FileValue", v.BlobName, "FileSize", strconv.FormatInt(v.Size, 10),
		"TimeCreated", f.created, "TimeLastModified", fmtTime(v.Modified),
		"Author", f.author, "ModifiedBy", f.editors[i]}
}

// writeFileListItem emits the file's SPListItem object. The list item
// carries its own version history beside the file's: without it SharePoint
// may give every version the list item's Modified/Modified By (§6.4.4).
func (m *manifestWriter) writeFileListItem(f *fileObject) {
	x := m.x
	cur := f.current()
	x.start("SPObject", "Id", f.itemID.String(), "ObjectType", "SPListItem", "ParentId", m.listID,
		"ParentWebId", m.webID, "ParentWebUrl", m.web, "Url", m.objectURL(f.lib))
	x.start("ListItem", m.listItemAttrs(f, cur)...)
	x.empty("Fields")
	if cur > 0 {
		x.start("Versions")
		for i := 0; i < cur; i++ {
			x.start("ListItem", m.listItemAttrs(f, i)...)
			x.empty("Fields")
			x.end("ListItem")
		}
		x.end("Versions")
	}
	x.end("ListItem")
	x.end("SPObject")
}

// listItemAttrs are the ListItem element's attributes for version i.
func (m *manifestWriter) listItemAttrs(f *fileObject, i int) []string {
	return []string{"Id", f.itemID.String(), "DocType", "File", "DocId", f.id,
		"IntId", strconv.Itoa(f.intID), "Order", strconv.Itoa(f.intID * 100), "Name", f.name, "FileUrl", f.url,
		"DirName", f.dirName, "ParentFolderId", f.parent,
		"ParentWebId", m.webID, "ParentListId", m.listID, "Version", label(f.it, i),
		"TimeCreated", f.created, "TimeLastModified", fmtTime(f.it.Versions[i].Modified),
		"Author", f.author, "ModifiedBy", f.editors[i]}
}
