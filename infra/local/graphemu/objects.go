package graphemu

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// objectURL canonicalises a URL attribute to the web-relative form used in
// error events ("Document Library/Contracts/nda.pdf").
func (im *importer) objectURL(raw string) string {
	forms := im.urlForms(raw)
	return forms[len(forms)-1]
}

// urlForms are the web-relative readings of a URL attribute: as written and,
// when it decodes, percent-decoded (last). Scheme, host, the site's path and
// surrounding slashes are dropped (spec §6.5).
func (im *importer) urlForms(raw string) []string {
	u := raw
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
		if j := strings.Index(u, "/"); j >= 0 {
			u = u[j:]
		} else {
			u = ""
		}
	}
	web := strings.Trim(sitePath(im.d.c.SiteURL), "/")
	rel := func(u string) string {
		u = strings.Trim(u, "/")
		if web != "" && len(u) >= len(web) && strings.EqualFold(u[:len(web)], web) && (len(u) == len(web) || u[len(web)] == '/') {
			u = strings.TrimPrefix(u[len(web):], "/")
		}
		return u
	}
	if strings.Contains(raw, "://") {
		// An absolute URL is read as a URL: its escapes are decoded once
		// and "#" or "?" end the path, as SharePoint's URL parsing does, so
		// an unescaped "#hash.txt" names the folder, not the file.
		if pu, err := url.Parse(raw); err == nil {
			return []string{rel(pu.Path)}
		}
	}
	forms := []string{rel(u)}
	if dec, err := url.PathUnescape(u); err == nil && dec != u {
		forms = append(forms, rel(dec))
	}
	return forms
}

// checkURLs warns when a URL attribute disagrees with where the item goes
// (its parent id and name decide). URLs are compared after canonicalising
// (spec §6.5: scheme, host, site path, slashes and escapes do not matter).
// Callers hold d.mu.
func (im *importer) checkURLs(objType, id, objURL, want string, urls ...string) {
	for _, raw := range urls {
		if raw != "" && !im.urlMatches(raw, want) {
			im.warn(objType, id, objURL, fmt.Sprintf("Url '%s' does not match the item's location '%s' (its parent id and name)", raw, want))
			return
		}
	}
}

// isWebURL says whether a ParentWebUrl names the container's web.
func (im *importer) isWebURL(raw string) bool {
	web := strings.Trim(sitePath(im.d.c.SiteURL), "/")
	u := raw
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
		j := strings.Index(u, "/")
		if j < 0 {
			return web == ""
		}
		u = u[j:]
	}
	if strings.EqualFold(strings.Trim(u, "/"), web) {
		return true
	}
	dec, err := url.PathUnescape(u)
	return err == nil && strings.EqualFold(strings.Trim(dec, "/"), web)
}

func (im *importer) urlMatches(raw, want string) bool {
	for _, f := range im.urlForms(raw) {
		if strings.EqualFold(f, want) {
			return true
		}
	}
	return false
}

// libraryPath is the web-relative path of an item. Callers hold d.mu.
func (im *importer) libraryPath(it *item) string {
	p := im.d.pathOf(it)
	if p == "" {
		return im.d.c.LibraryFolder
	}
	return im.d.c.LibraryFolder + "/" + p
}

// checkWebURL warns when ParentWebUrl is not the container's web.
func (im *importer) checkWebURL(objType, id, objURL string, nodes ...*node) {
	for _, n := range nodes {
		if v := n.attr("ParentWebUrl"); v != "" && !im.isWebURL(v) {
			im.warn(objType, id, objURL, fmt.Sprintf("ParentWebUrl '%s' is not the container's web '%s'", v, sitePath(im.d.c.SiteURL)))
			return
		}
	}
}

func sitePath(site string) string {
	if p, err := url.Parse(site); err == nil {
		return p.Path
	}
	return site
}

// resolveUser maps an Author/ModifiedBy value to a person, warning once per
// user as SharePoint does.
func (im *importer) resolveUser(ref, objType, objID, objURL string) person {
	if strings.TrimSpace(ref) == "" {
		return systemAccount
	}
	u := im.users[strings.TrimSpace(ref)]
	if u == nil {
		im.warn(objType, objID, objURL, fmt.Sprintf("User id %s is not declared in UserGroup.xml; System Account is used", ref))
		return systemAccount
	}
	if u.resolved != nil {
		return *u.resolved
	}
	var p person
	switch {
	case u.deleted:
		p = person{Name: u.name, Login: u.login, Email: u.email, Deleted: true}
	case im.s.resolves(u.login):
		p = person{Name: u.name, Login: u.login, Email: u.email}
	case u.systemID != "":
		p = person{Name: u.name, Login: u.login, Email: u.email, Deleted: true}
		im.warn(objType, objID, objURL, fmt.Sprintf("Failed to retrieve user '%s' attributes from the SiteUsers; falling back to passed in values", u.login))
	default:
		p = systemAccount
		im.warn(objType, objID, objURL, fmt.Sprintf("Failed to ensure user '%s'", u.login))
	}
	u.resolved = &p
	return p
}

func (s *Server) resolves(login string) bool {
	l := strings.ToLower(login)
	for _, u := range s.cfg.Knobs.UnresolvedLogins {
		u = strings.ToLower(u)
		if l == u || (strings.HasPrefix(u, "@") && strings.HasSuffix(l, u)) {
			return false
		}
	}
	if s.cfg.Knobs.Directory == nil {
		l := strings.ToLower(login)
		return strings.HasPrefix(l, "i:0#.f|membership|") && strings.Contains(l, "@")
	}
	for _, d := range s.cfg.Knobs.Directory {
		if strings.EqualFold(d, login) {
			return true
		}
	}
	return false
}

func (im *importer) times(n *node) (created, modified time.Time) {
	now := im.s.cfg.Now().UTC()
	created, modified = now, now
	if t, err := parseDateTime(n.attr("TimeCreated")); err == nil {
		created = t
	}
	if t, err := parseDateTime(n.attr("TimeLastModified")); err == nil {
		modified = t
	}
	return created, modified
}

// claimInt checks a package list item id; 0 means allocate. Callers hold d.mu.
func (im *importer) claimInt(want int, id string) (int, error) {
	d := im.d
	if want <= 0 {
		return d.allocInt(), nil
	}
	if other, taken := d.byInt[want]; taken && other != id {
		if im.s.cfg.Knobs.IntIDCollision == "error" {
			return 0, fmt.Errorf("List item id %d is already used by another item (%s)", want, other)
		}
		if it := d.items[other]; it != nil {
			it.IntID = d.allocInt()
			d.byInt[it.IntID] = other
		}
	}
	return want, nil
}

func (im *importer) applyFolder(n, f *node) {
	d := im.d
	id := normID(firstNonEmpty(f.attr("Id"), n.attr("Id")))
	objURL := im.objectURL(firstNonEmpty(f.attr("Url"), n.attr("Url")))
	parentID := normID(firstNonEmpty(f.attr("ParentFolderId"), n.attr("ParentId")))
	name := firstNonEmpty(f.attr("Name"), lastSeg(objURL))
	created, modified := im.times(f)
	author := im.resolveUser(f.attr("Author"), "folder", id, objURL)
	editor := im.resolveUser(firstNonEmpty(f.attr("ModifiedBy"), f.attr("Author")), "folder", id, objURL)
	want, _ := strconv.Atoi(f.attr("ListItemIntId"))

	d.mu.Lock()
	defer d.mu.Unlock()
	if id == d.rootID() {
		return // the library's root folder, described by older packages: nothing to do
	}
	parent := d.items[parentID]
	if parent == nil || !parent.Folder {
		im.objError("folder", id, objURL, codeNotFound, fmt.Sprintf("Parent folder %s was not found", parentID))
		return
	}
	if objURL == "" {
		objURL = im.libraryPath(parent) + "/" + name
	}
	for a := parent; a != nil && a.ID != d.rootID(); a = d.items[a.ParentID] {
		if a.ID == id {
			im.objError("folder", id, objURL, codeInvalidArg, fmt.Sprintf("Folder %s cannot be moved into its own subfolder %s", id, parentID))
			return
		}
	}
	if ex := d.child(parentID, name); ex != nil && ex.ID != id {
		im.objError("folder", id, objURL, codeFileExists, fmt.Sprintf("A different item named '%s' already exists in the parent folder", name))
		return
	}
	im.checkURLs("folder", id, objURL, im.libraryPath(parent)+"/"+name, f.attr("Url"), n.attr("Url"))
	it := d.items[id]
	intID, err := im.claimInt(want, id)
	if err != nil {
		im.objError("folder", id, objURL, codeInvalidArg, err.Error())
		return
	}
	if it == nil {
		it = &item{ID: id, Folder: true}
		d.items[id] = it
	} else {
		it.ETagN++
		if d.byInt[it.IntID] == id {
			delete(d.byInt, it.IntID)
		}
	}
	it.Name, it.ParentID, it.IntID = name, parentID, intID
	it.Created, it.Modified, it.CreatedBy, it.ModifiedBy = created, modified, author, editor
	if it.ETagN == 0 {
		it.ETagN = 1
	}
	d.byInt[intID] = id
}

// applyFile imports a file with its versions. Only I/O failures on the
// emulator's own disk are returned; package problems become object errors.
func (im *importer) applyFile(ctx context.Context, n, f *node) error {
	fi := &fileImport{
		im:       im,
		f:        f,
		id:       normID(firstNonEmpty(f.attr("Id"), n.attr("Id"))),
		objURL:   im.objectURL(firstNonEmpty(f.attr("Url"), n.attr("Url"))),
		parentID: normID(firstNonEmpty(f.attr("ParentId"), n.attr("ParentId"))),
	}
	fi.name = firstNonEmpty(f.attr("Name"), lastSeg(fi.objURL))
	if !fi.checkParent(n) {
		return nil
	}
	if im.failObject(fi.name) {
		fi.objError(codeInvalidArg, fmt.Sprintf("File '%s' could not be imported (simulated object failure)", fi.name))
		return nil
	}

	stage := filepath.Join(im.tmp, "f-"+fi.id)
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	versions, ok, err := fi.downloadVersions(ctx, fileVersionNodes(f), stage)
	if err != nil || !ok {
		return err
	}
	return fi.store(versions)
}

// fileImport is one SPFile object being imported.
type fileImport struct {
	im       *importer
	f        *node // the File element
	id       string
	objURL   string
	parentID string
	name     string
}

// objError reports a package problem with this file.
func (fi *fileImport) objError(code, msg string) {
	fi.im.objError("file", fi.id, fi.objURL, code, msg)
}

// checkParent reports whether the parent folder exists, filling in the
// object URL from it when the package gives none and checking the URLs the
// package gives against it.
func (fi *fileImport) checkParent(n *node) bool {
	im, d := fi.im, fi.im.d
	d.mu.Lock()
	parent := d.items[fi.parentID]
	if parent == nil || !parent.Folder {
		d.mu.Unlock()
		fi.objError(codeNotFound, fmt.Sprintf("Parent folder %s was not found", fi.parentID))
		return false
	}
	if fi.objURL == "" {
		fi.objURL = im.libraryPath(parent) + "/" + fi.name
	}
	im.checkURLs("file", fi.id, fi.objURL, im.libraryPath(parent)+"/"+fi.name, fi.f.attr("Url"), n.attr("Url"))
	d.mu.Unlock()
	return true
}

// fileVersionNodes lists a File element's versions in ascending label
// order, then the File element itself, which is the current version.
func fileVersionNodes(f *node) []*node {
	vnodes := []*node{}
	if vs := f.kid("Versions"); vs != nil {
		for _, v := range vs.kids {
			if v.name.Local == "File" {
				vnodes = append(vnodes, v)
			}
		}
	}
	sort.SliceStable(vnodes, func(a, b int) bool { return versionLess(vnodes[a].attr("Version"), vnodes[b].attr("Version")) })
	return append(vnodes, f)
}

// downloadVersions decrypts every version's blob into the stage directory.
// ok is false when a version was reported as an object error; err is set
// only for the context ending or the emulator's own disk failing.
func (fi *fileImport) downloadVersions(ctx context.Context, vnodes []*node, stage string) (versions []version, ok bool, err error) {
	for i, vn := range vnodes {
		v, ok, err := fi.downloadVersion(ctx, vn, filepath.Join(stage, strconv.Itoa(i)+".bin"))
		if err != nil || !ok {
			return nil, ok, err
		}
		versions = append(versions, v)
	}
	return versions, true, nil
}

// downloadVersion decrypts one version's FileValue into the file p and
// describes the version, warning when the blob has no snapshot or its size
// differs from FileSize.
func (fi *fileImport) downloadVersion(ctx context.Context, vn *node, p string) (version, bool, error) {
	im := fi.im
	fv := vn.attr("FileValue")
	label := firstNonEmpty(vn.attr("Version"), "1.0")
	if fv == "" {
		fi.objError(codeNotFound, fmt.Sprintf("Version %s has no FileValue", label))
		return version{}, false, nil
	}
	size, hash, hasSnap, missing, err := im.download(ctx, fv, p)
	if err != nil {
		if ctx.Err() != nil {
			return version{}, false, ctx.Err()
		}
		fi.objError(codeBadData, fmt.Sprintf("Cannot decrypt FileValue '%s' (version %s): %v", fv, label, err))
		return version{}, false, nil
	}
	if missing {
		fi.objError(codeNotFound, fmt.Sprintf("FileValue '%s' (version %s) was not found in the data container", fv, label))
		return version{}, false, nil
	}
	if !hasSnap {
		if im.s.cfg.Knobs.RequireSnapshots {
			fi.objError(codeNotFound, fmt.Sprintf("FileValue '%s' has no snapshot", fv))
			return version{}, false, nil
		}
		im.warn("file", fi.id, fi.objURL, fmt.Sprintf("FileValue '%s' has no snapshot; the blob itself was used", fv))
	}
	if fs := vn.attr("FileSize"); fs != "" {
		if want, err := strconv.ParseInt(fs, 10, 64); err != nil || want != size {
			im.warn("file", fi.id, fi.objURL, fmt.Sprintf("FileSize %s of version %s differs from the decrypted size %d", fs, label, size))
		}
	}
	created, modified := im.times(vn)
	return version{
		Label: label, Size: size, Created: created, Modified: modified, path: p, QuickXorHash: hash,
		CreatedBy:  im.resolveUser(vn.attr("Author"), "file", fi.id, fi.objURL),
		ModifiedBy: im.resolveUser(firstNonEmpty(vn.attr("ModifiedBy"), vn.attr("Author")), "file", fi.id, fi.objURL),
	}, true, nil
}

// store puts the downloaded file into the drive, replacing any file with
// the same id or path, moves its content out of the stage directory and
// counts it in the import's totals.
func (fi *fileImport) store(versions []version) error {
	im, d := fi.im, fi.im.d
	want, _ := strconv.Atoi(fi.f.attr("ListItemIntId"))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.items[fi.parentID] == nil {
		fi.objError(codeNotFound, fmt.Sprintf("Parent folder %s was not found", fi.parentID))
		return nil
	}
	etag, ok := fi.replaceExisting()
	if !ok {
		return nil
	}
	intID, err := im.claimInt(want, fi.id)
	if err != nil {
		fi.objError(codeInvalidArg, err.Error())
		return nil
	}
	if err := moveContent(filepath.Join(d.dir, "content", fi.id), versions); err != nil {
		return err
	}
	cur := versions[len(versions)-1]
	first := versions[0]
	it := &item{ID: fi.id, Name: fi.name, ParentID: fi.parentID, IntID: intID, ETagN: etag,
		Created: first.Created, Modified: cur.Modified, CreatedBy: first.CreatedBy, ModifiedBy: cur.ModifiedBy, Versions: versions}
	d.items[fi.id] = it
	if c, err := parseDateTime(fi.f.attr("TimeCreated")); err == nil {
		it.Created = c
	}
	d.byInt[intID] = fi.id
	for _, v := range versions {
		im.files++
		im.bytes += v.Size
	}
	im.filesCurrent++
	im.bytesCurrent += cur.Size
	return nil
}

// replaceExisting applies replace semantics: a file with the same id or
// the same path is deleted with all its versions. It returns the new item's
// etag version, or false after reporting a folder in the way. Callers hold
// d.mu.
func (fi *fileImport) replaceExisting() (etag int, ok bool) {
	d := fi.im.d
	etag = 1
	if ex := d.items[fi.id]; ex != nil {
		if ex.Folder {
			fi.objError(codeFileExists, "The id is already used by a folder")
			return 0, false
		}
		etag = ex.ETagN + 1
		d.removeFile(ex)
	}
	if ex := d.child(fi.parentID, fi.name); ex != nil {
		if ex.Folder {
			fi.objError(codeFileExists, fmt.Sprintf("A folder named '%s' already exists in the parent folder", fi.name))
			return 0, false
		}
		d.removeFile(ex)
	}
	return etag, true
}

// moveContent moves each version's staged content into dir and points the
// version at it.
func moveContent(dir string, versions []version) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range versions {
		dst := filepath.Join(dir, strconv.Itoa(i)+".bin")
		if err := os.Rename(versions[i].path, dst); err != nil {
			return err
		}
		versions[i].path = dst
	}
	return nil
}

// download streams a data blob (or an archive member) through decryption
// to a file, hashing the plaintext with QuickXorHash on the way.
func (im *importer) download(ctx context.Context, name, dst string) (size int64, hash string, hasSnap, missing bool, err error) {
	var h quickXorHash
	if m, ok := im.archives[name]; ok {
		size, err := im.openArchived(m, dst, &h)
		return size, h.Sum(), true, false, err
	}
	rc, hasSnap, missing, err := im.openBlob(ctx, im.data, name, true, nil)
	if err != nil || missing {
		return 0, "", hasSnap, missing, err
	}
	defer rc.Close()
	f, err := os.Create(dst)
	if err != nil {
		return 0, "", hasSnap, false, err
	}
	defer f.Close()
	size, err = io.Copy(io.MultiWriter(f, &h), rc)
	return size, h.Sum(), hasSnap, false, err
}

var knownFields = []string{"Title", "ContentType", "ContentTypeId", "FileLeafRef", "Created", "Modified", "Author", "Editor",
	"_CheckinComment", "_ModerationComments", "_ModerationStatus", "_UIVersionString", "Description", "_Comments", "Keywords", "Subject"}

func (im *importer) applyListItem(n, li *node) {
	d := im.d
	docID := normID(li.attr("DocId"))
	objURL := im.objectURL(firstNonEmpty(li.attr("FileUrl"), n.attr("Url")))
	itemID := firstNonEmpty(li.attr("Id"), n.attr("Id"))
	d.mu.Lock()
	defer d.mu.Unlock()
	target := d.items[docID]
	_, inPkg := im.pkgItems[docID]
	if target == nil && !inPkg {
		im.objError("listItem", itemID, objURL, codeNotFound, fmt.Sprintf("DocId %s references no File or Folder in the package or the library", li.attr("DocId")))
		return
	}
	if target == nil {
		return // the File/Folder failed and was reported already
	}
	if pf := li.attr("ParentFolderId"); pf != "" && !sameID(pf, target.ParentID) {
		im.objError("listItem", itemID, objURL, codeInvalidArg, fmt.Sprintf("ParentFolderId %s differs from the parent %s of the item it describes", pf, target.ParentID))
		return
	}
	if iv := li.attr("IntId"); iv != "" {
		if n, err := strconv.Atoi(iv); err == nil && n != target.IntID {
			if pkgInt := im.fileInt[docID]; pkgInt != 0 && pkgInt != n {
				im.warn("listItem", itemID, objURL, fmt.Sprintf("IntId %d differs from the ListItemIntId %d of the item it describes", n, pkgInt))
			} else if pkgInt == 0 {
				if _, err := im.claimInt(n, target.ID); err == nil {
					delete(d.byInt, target.IntID)
					target.IntID = n
					d.byInt[n] = target.ID
				}
			}
		}
	}
	im.checkURLs("listItem", itemID, objURL, im.libraryPath(target), li.attr("FileUrl"), n.attr("Url"))
	if parent := d.items[target.ParentID]; parent != nil {
		im.checkURLs("listItem", itemID, objURL, im.libraryPath(parent), li.attr("DirName"))
	}
	target.ListItemID = strings.ToLower(itemID)
	if !target.Folder && im.s.cfg.Knobs.VersionMetadata == "listItem" {
		im.versionsFromListItem(li, target, itemID, objURL)
	}
	if fs := li.kid("Fields"); fs != nil {
		for _, fl := range fs.kids {
			name := firstNonEmpty(fl.attr("Name"), fl.attr("ColName"))
			if name == "" {
				continue
			}
			if !contains(knownFields, name) {
				im.warn("listItem", itemID, objURL, fmt.Sprintf("Field '%s' does not exist in the list; its value was ignored", name))
				continue
			}
			if target.Fields == nil {
				target.Fields = map[string]string{}
			}
			target.Fields[name] = fl.attr("Value")
		}
	}
}

// versionsFromListItem gives each version of a file the Modified and
// Modified By of the list item version with its label; a version the list
// item does not describe takes the current list item's values, which is
// how a package without list-item versions loses its per-version history.
// Callers hold d.mu.
func (im *importer) versionsFromListItem(li *node, target *item, itemID, objURL string) {
	byLabel := map[string]*node{}
	if vs := li.kid("Versions"); vs != nil {
		for _, v := range vs.kids {
			if v.name.Local == "ListItem" {
				byLabel[firstNonEmpty(v.attr("Version"), "1.0")] = v
			}
		}
	}
	_, curModified := im.times(li)
	curEditor := im.resolveUser(firstNonEmpty(li.attr("ModifiedBy"), li.attr("Author")), "listItem", itemID, objURL)
	last := len(target.Versions) - 1
	for i := range target.Versions {
		v := &target.Versions[i]
		src := byLabel[v.Label]
		if i == last {
			src = li
		}
		if src == nil {
			v.Modified, v.ModifiedBy = curModified, curEditor
			continue
		}
		_, v.Modified = im.times(src)
		v.ModifiedBy = im.resolveUser(firstNonEmpty(src.attr("ModifiedBy"), src.attr("Author")), "listItem", itemID, objURL)
	}
	target.Modified, target.ModifiedBy = target.Versions[last].Modified, target.Versions[last].ModifiedBy
}
