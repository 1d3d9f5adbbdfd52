package spepackage

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The package's blob names, at the metadata container's root (§6.2).
const (
	ManifestFile       = "Manifest.xml"
	ExportSettingsFile = "ExportSettings.xml"
	SystemDataFile     = "SystemData.xml"
	RootObjectMapFile  = "RootObjectMap.xml"
	UserGroupFile      = "UserGroup.xml"
	LookupListMapFile  = "LookupListMap.xml"
	RequirementsFile   = "Requirements.xml"
	ViewFormsListFile  = "ViewFormsList.xml"
)

// Files lists the package's files in the order [Build] writes them.
var Files = []string{
	ManifestFile, UserGroupFile, ExportSettingsFile, SystemDataFile,
	RootObjectMapFile, LookupListMapFile, RequirementsFile, ViewFormsListFile,
}

// timeLayout is xs:dateTime in UTC without a zone, as SharePoint's own
// packages write it (§6.6).
const timeLayout = "2006-01-02T15:04:05"

// Identity is a person as the source knows them. Login is a UPN
// (alice@contoso.com) or an already-formed claims login
// (i:0#.f|membership|alice@contoso.com); Email is used when Login is empty.
// An identity with neither cannot be mapped.
//
// Deleted marks an account that no longer exists in the directory
// (UserGroup.xml IsDeleted="true"): SharePoint then skips the costly lookup
// and keeps the name (§6.3.4). SystemID, when the source knows it (the
// base64 SID or system id), lets SharePoint create a deleted placeholder
// user instead of falling back to System Account when the login does not
// resolve.
type Identity struct {
	Login    string
	Email    string
	Name     string
	Deleted  bool
	SystemID string
}

// claimsLogin is the UPN-based login UserGroup.xml needs (§6.3.4), or "" when
// the identity has nothing UPN-like: a non-UPN login "causes unexpected
// behaviour", so such an item falls back to SharePoint's default author.
func (id Identity) claimsLogin() string {
	l := strings.TrimSpace(id.Login)
	if strings.Contains(l, "|") {
		return l
	}
	if strings.Contains(l, "@") {
		return "i:0#.f|membership|" + strings.ToLower(l)
	}
	if e := strings.TrimSpace(id.Email); strings.Contains(e, "@") {
		return "i:0#.f|membership|" + strings.ToLower(e)
	}
	return ""
}

// Version is one stored version of a file: one blob in the data container.
type Version struct {
	// Label is the version label ("1.0", "1.1", "2.0"). Empty labels are
	// numbered as major versions by position: 1.0, 2.0, ...
	Label string
	// BlobName is the blob's exact name in the data container (FileValue).
	BlobName string
	// Size is the plaintext size in bytes (FileSize).
	Size       int64
	Modified   time.Time
	ModifiedBy Identity
}

// Item is a file or folder to import.
type Item struct {
	// Path is slash-separated, relative to the target's destination folder,
	// and already passed through the naming policy.
	Path   string
	Folder bool
	// Created and Modified are preserved as TimeCreated/TimeLastModified;
	// zero values are left out (SharePoint then uses the import time).
	// For a file, Modified and ModifiedBy of the current version come from
	// its last Version.
	Created time.Time
	Author  Identity
	// Modified and ModifiedBy apply to folders only.
	Modified   time.Time
	ModifiedBy Identity
	// Versions holds a file's versions, oldest first; the last one is the
	// current version. A file has at least one. Folders have none.
	Versions []Version
}

// Package is everything [Build] needs.
type Package struct {
	Target     Target
	Namespace  uuid.UUID
	SourceType SourceType
	IDs        IntIDs
	Items      []Item
	// Options tune what the package says; the zero value takes the
	// documented defaults.
	Options Options
}

// DirNameForm is how ListItem@DirName spells the parent folder (§6.5: the
// samples use both forms and the docs do not settle it).
type DirNameForm string

const (
	// DirNameWebRelative: "Document Library/Contracts" (the default).
	DirNameWebRelative DirNameForm = "webRelative"
	// DirNameServerRelative: "/contentstorage/CSP_<guid>/Document Library/Contracts".
	DirNameServerRelative DirNameForm = "serverRelative"
)

// Defaults for [Options].
const (
	// DefaultSchemaBuild and DefaultDatabaseVersion are SystemData's
	// SchemaVersion@Build and @DatabaseVersion from the docs' example; they
	// are meant to match the target farm (§6.3.2).
	DefaultSchemaBuild     = "16.0.3111.1200"
	DefaultDatabaseVersion = "11552"
	// DefaultMaxVersions is SharePoint's default major-version limit of a
	// document library: older versions would be trimmed on import anyway.
	DefaultMaxVersions = 500
)

// Options tune a package. Zero values take the defaults noted.
type Options struct {
	// SchemaBuild is SystemData SchemaVersion@Build (default
	// [DefaultSchemaBuild]).
	SchemaBuild string
	// DatabaseVersion is SchemaVersion@DatabaseVersion (default
	// [DefaultDatabaseVersion]).
	DatabaseVersion string
	// DirName is the form of ListItem@DirName (default
	// [DirNameWebRelative]).
	DirName DirNameForm
	// MaxVersions caps the versions written per file (default
	// [DefaultMaxVersions]; negative means no cap). A file with more keeps
	// its newest MaxVersions, and [ItemReport.VersionsDropped] says how
	// many older ones were left out.
	MaxVersions int
}

func (o Options) withDefaults() (Options, error) {
	if o.SchemaBuild == "" {
		o.SchemaBuild = DefaultSchemaBuild
	}
	if o.DatabaseVersion == "" {
		o.DatabaseVersion = DefaultDatabaseVersion
	}
	switch o.DirName {
	case "":
		o.DirName = DirNameWebRelative
	case DirNameWebRelative, DirNameServerRelative:
	default:
		return o, fmt.Errorf("Options.DirName %q: use %q or %q", o.DirName, DirNameWebRelative, DirNameServerRelative)
	}
	if o.MaxVersions == 0 {
		o.MaxVersions = DefaultMaxVersions
	}
	return o, nil
}

// AuthorChoice records how an item's authorship was set.
type AuthorChoice string

const (
	// AuthorMapped: Author/ModifiedBy point at users in UserGroup.xml.
	AuthorMapped AuthorChoice = "mapped"
	// AuthorDefault: the item had no usable identity; SharePoint applies
	// its default.
	AuthorDefault AuthorChoice = "default"
)

// ItemReport says what the package holds for one object.
type ItemReport struct {
	Path        string // as given in Item.Path (relative to the destination)
	LibraryPath string // relative to the library root
	Folder      bool
	// Synthesised is set for a parent folder the package creates because
	// a file below it needs it; such folders carry no times or authors.
	Synthesised bool
	ID          uuid.UUID
	ListItemID  uuid.UUID
	IntID       int
	Author      AuthorChoice
	// VersionsDropped counts the oldest versions left out by
	// [Options.MaxVersions].
	VersionsDropped int
}

// Report describes a built package.
type Report struct {
	Items []ItemReport
	Users int // users declared in UserGroup.xml
}

// Build writes the eight files of a package. create is called once per file
// name (see [Files]) and the writer it returns is closed before the next one
// is created; an error from Close (a failed upload, say) stops the build.
// When writing a file fails, Build calls CloseWithError(err) instead of Close
// if the writer has that method, so an upload can abandon a partial file.
// Items are emitted parents first; every folder between the destination and
// an item is created in the package (with a deterministic id), so each
// package stands on its own whatever order batches are imported in.
func Build(ctx context.Context, p Package, create func(name string) (io.WriteCloser, error)) (Report, error) {
	if err := p.Target.Validate(); err != nil {
		return Report{}, fmt.Errorf("build package: %w", err)
	}
	if p.Namespace == uuid.Nil {
		return Report{}, errors.New("build package: Namespace is empty: use a stable UUID for the target")
	}
	if p.IDs == nil {
		return Report{}, errors.New("build package: IDs is nil: pass the migration's list-item id allocator")
	}
	switch p.SourceType {
	case SourceAzureStorage, SourceFileShare:
	default:
		return Report{}, fmt.Errorf("build package: SourceType %q is not supported: use %q or %q", p.SourceType, SourceAzureStorage, SourceFileShare)
	}
	opts, err := p.Options.withDefaults()
	if err != nil {
		return Report{}, fmt.Errorf("build package: %w", err)
	}
	p.Options = opts
	items, err := ordered(p.Items)
	if err != nil {
		return Report{}, fmt.Errorf("build package: %w", err)
	}

	users := &userMap{index: map[string]int{}}
	var rep Report
	err = writeFile(create, ManifestFile, func(w io.Writer) error {
		var err error
		rep, err = writeManifest(ctx, w, p, items, users)
		return err
	})
	if err != nil {
		return Report{}, err
	}
	rep.Users = len(users.list)
	steps := []struct {
		name  string
		write func(io.Writer) error
	}{
		{UserGroupFile, users.write},
		{ExportSettingsFile, func(w io.Writer) error { return writeExportSettings(w, p.Target, p.SourceType) }},
		{SystemDataFile, func(w io.Writer) error { return writeSystemData(w, p.Target, opts, []string{ManifestFile}) }},
		{RootObjectMapFile, func(w io.Writer) error { return writeRootObjectMap(w, p.Target) }},
		{LookupListMapFile, func(w io.Writer) error {
			return writeEmptyRoot(w, "LookupLists", "urn:deployment-lookuplistmap-schema")
		}},
		{RequirementsFile, func(w io.Writer) error {
			return writeEmptyRoot(w, "Requirements", "urn:deployment-requirements-schema")
		}},
		{ViewFormsListFile, func(w io.Writer) error {
			return writeEmptyRoot(w, "ViewFormsList", "urn:deployment-viewformlist-schema")
		}},
	}
	for _, s := range steps {
		if err := writeFile(create, s.name, s.write); err != nil {
			return Report{}, err
		}
	}
	return rep, nil
}

func writeFile(create func(string) (io.WriteCloser, error), name string, write func(io.Writer) error) error {
	w, err := create(name)
	if err != nil {
		return fmt.Errorf("build package: open %s: %w", name, err)
	}
	if err := write(w); err != nil {
		if a, ok := w.(interface{ CloseWithError(error) error }); ok {
			a.CloseWithError(err)
		} else {
			w.Close()
		}
		return fmt.Errorf("build package: write %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("build package: close %s: %w", name, err)
	}
	return nil
}

// ordered validates items and sorts them so that every folder precedes what
// it contains (segment-wise path order), which the import requires (§9.4).
func ordered(in []Item) ([]Item, error) {
	items := slices.Clone(in)
	seen := make(map[string]bool, len(items))
	for i := range items {
		it := &items[i]
		c := cleanPath(it.Path)
		if c == "" || slices.ContainsFunc(strings.Split(strings.Trim(it.Path, "/"), "/"), func(s string) bool {
			return s == "" || s == "." || s == ".."
		}) {
			return nil, fmt.Errorf("item %d: Path %q is not a relative path below the destination (empty, \".\" or \"..\" segment)", i, it.Path)
		}
		k := strings.ToLower(c)
		if seen[k] {
			return nil, fmt.Errorf("item %d: Path %q appears twice (SharePoint ignores case): resolve collisions with the naming policy first", i, it.Path)
		}
		seen[k] = true
		if it.Folder {
			if len(it.Versions) != 0 {
				return nil, fmt.Errorf("item %q: a folder cannot have Versions", it.Path)
			}
			continue
		}
		if len(it.Versions) == 0 {
			return nil, fmt.Errorf("item %q: a file needs at least one Version", it.Path)
		}
		if err := checkVersions(it); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(items, func(a, b Item) int {
		return slices.Compare(strings.Split(cleanPath(a.Path), "/"), strings.Split(cleanPath(b.Path), "/"))
	})
	return items, nil
}

func checkVersions(it *Item) error {
	prevMaj, prevMin := -1, -1
	for i, v := range it.Versions {
		if v.BlobName == "" {
			return fmt.Errorf("item %q version %d: BlobName is empty", it.Path, i)
		}
		if v.Size < 0 {
			return fmt.Errorf("item %q version %d: Size %d is negative", it.Path, i, v.Size)
		}
		if v.Label == "" {
			continue
		}
		maj, min, ok := parseLabel(v.Label)
		if !ok {
			return fmt.Errorf("item %q version %d: Label %q is not of the form major.minor", it.Path, i, v.Label)
		}
		if maj < prevMaj || (maj == prevMaj && min <= prevMin) {
			return fmt.Errorf("item %q version %d: Label %q does not increase on the previous version", it.Path, i, v.Label)
		}
		prevMaj, prevMin = maj, min
	}
	return nil
}

func parseLabel(s string) (maj, min int, ok bool) {
	a, b, found := strings.Cut(s, ".")
	if !found {
		return 0, 0, false
	}
	maj, err1 := strconv.Atoi(a)
	min, err2 := strconv.Atoi(b)
	return maj, min, err1 == nil && err2 == nil && maj >= 0 && min >= 0 && (maj > 0 || min > 0)
}

func label(it *Item, i int) string {
	if l := it.Versions[i].Label; l != "" {
		return l
	}
	return strconv.Itoa(i+1) + ".0"
}

// userMap collects the identities a manifest refers to, each declared once
// (the service blocks duplicate users, §6.3.4).
type userMap struct {
	index  map[string]int
	list   []Identity
	logins []string
}

// id returns the user id for an identity, or "" when it cannot be mapped.
func (u *userMap) id(who Identity) string {
	login := who.claimsLogin()
	if login == "" {
		return ""
	}
	k := strings.ToLower(login)
	if n, ok := u.index[k]; ok {
		return strconv.Itoa(n)
	}
	u.list = append(u.list, who)
	u.logins = append(u.logins, login)
	n := len(u.list)
	u.index[k] = n
	return strconv.Itoa(n)
}

func (u *userMap) write(w io.Writer) error {
	x := newXW(w)
	x.start("UserGroupMap", "xmlns", "urn:deployment-usergroupmap-schema")
	x.start("Users")
	for i, who := range u.list {
		email := strings.TrimSpace(who.Email)
		if email == "" && strings.Contains(who.Login, "@") && !strings.Contains(who.Login, "|") {
			email = strings.TrimSpace(who.Login)
		}
		name := who.Name
		if name == "" {
			name = email
		}
		x.empty("User",
			"Id", strconv.Itoa(i+1),
			"Name", name,
			"Login", u.logins[i],
			"Email", email,
			"IsDomainGroup", "false",
			"IsSiteAdmin", "false",
			"SystemId", strings.TrimSpace(who.SystemID),
			"IsDeleted", strconv.FormatBool(who.Deleted),
			"Flags", "0")
	}
	x.end("Users")
	x.empty("Groups")
	x.end("UserGroupMap")
	return x.close()
}

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
	return ObjectID(m.p.Namespace, parent).String()
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
		if m.emitted[normalise(prefix)] {
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

func choice(ids ...string) AuthorChoice {
	for _, id := range ids {
		if id != "" {
			return AuthorMapped
		}
	}
	return AuthorDefault
}

func (m *manifestWriter) file(ctx context.Context, it *Item, lib string) error {
	intID, err := m.p.IDs.IntID(ctx, lib)
	if err != nil {
		return fmt.Errorf("list item id for %q: %w", lib, err)
	}
	id := ObjectID(m.p.Namespace, lib).String()
	itemID := ListItemID(m.p.Namespace, lib)
	parent := m.parentID(lib)
	name := path.Base(lib)
	url := m.webRelative(lib)
	ints := strconv.Itoa(intID)
	created := fmtTime(it.Created)
	author := m.users.id(it.Author)
	dropped := 0
	if max := m.p.Options.MaxVersions; max > 0 && len(it.Versions) > max {
		// Keep the newest: labels stay as they were, so a dropped 1.0
		// leaves the history starting at its successor.
		dropped = len(it.Versions) - max
		kept := *it
		kept.Versions = it.Versions[dropped:]
		if kept.Versions[0].Label == "" {
			labelled := slices.Clone(kept.Versions)
			for i := range labelled {
				labelled[i].Label = label(it, dropped+i)
			}
			kept.Versions = labelled
		}
		it = &kept
	}
	cur := len(it.Versions) - 1
	editors := make([]string, len(it.Versions))
	for i, v := range it.Versions {
		editors[i] = m.users.id(v.ModifiedBy)
	}

	fileAttrs := func(i int) []string {
		v := it.Versions[i]
		return []string{"Id", id, "Name", name, "Url", url, "ListItemIntId", ints,
			"ListId", m.listID, "ParentId", parent, "ParentWebId", m.webID, "ParentWebUrl", m.web,
			"Version", label(it, i), "FileValue", v.BlobName, "FileSize", strconv.FormatInt(v.Size, 10),
			"TimeCreated", created, "TimeLastModified", fmtTime(v.Modified),
			"Author", author, "ModifiedBy", editors[i]}
	}

	x := m.x
	x.start("SPObject", "Id", id, "ObjectType", "SPFile", "ParentId", parent,
		"ParentWebId", m.webID, "ParentWebUrl", m.web, "Url", m.objectURL(lib))
	x.start("File", fileAttrs(cur)...)
	if cur > 0 {
		x.start("Versions")
		for i := 0; i < cur; i++ {
			x.empty("File", fileAttrs(i)...)
		}
		x.end("Versions")
	}
	x.end("File")
	x.end("SPObject")

	x.start("SPObject", "Id", itemID.String(), "ObjectType", "SPListItem", "ParentId", m.listID,
		"ParentWebId", m.webID, "ParentWebUrl", m.web, "Url", m.objectURL(lib))
	// The list item carries its own version history beside the file's:
	// without it SharePoint may give every version the list item's
	// Modified/Modified By (§6.4.4).
	itemAttrs := func(i int) []string {
		return []string{"Id", itemID.String(), "DocType", "File", "DocId", id,
			"IntId", ints, "Order", strconv.Itoa(intID * 100), "Name", name, "FileUrl", url,
			"DirName", m.dirName(lib), "ParentFolderId", parent,
			"ParentWebId", m.webID, "ParentListId", m.listID, "Version", label(it, i),
			"TimeCreated", created, "TimeLastModified", fmtTime(it.Versions[i].Modified),
			"Author", author, "ModifiedBy", editors[i]}
	}
	x.start("ListItem", itemAttrs(cur)...)
	x.empty("Fields")
	if cur > 0 {
		x.start("Versions")
		for i := 0; i < cur; i++ {
			x.start("ListItem", itemAttrs(i)...)
			x.empty("Fields")
			x.end("ListItem")
		}
		x.end("Versions")
	}
	x.end("ListItem")
	x.end("SPObject")

	m.rep.Items = append(m.rep.Items, ItemReport{
		Path: it.Path, LibraryPath: lib, ID: ObjectID(m.p.Namespace, lib), ListItemID: itemID,
		IntID: intID, Author: choice(append(editors, author)...), VersionsDropped: dropped,
	})
	return x.err
}

func writeExportSettings(w io.Writer, t Target, st SourceType) error {
	x := newXW(w)
	x.start("ExportSettings", "xmlns", "urn:deployment-exportsettings-schema",
		"SiteUrl", t.siteURL(), "FileLocation", "", "IncludeSecurity", "None",
		"IncludeVersions", "All", "SourceType", string(st), "IgnoreWebParts", "true")
	x.start("ExportObjects")
	x.empty("DeploymentObject", "Id", t.ListID.String(), "Type", "List", "ParentId", t.WebID.String())
	x.end("ExportObjects")
	x.end("ExportSettings")
	return x.close()
}

func writeSystemData(w io.Writer, t Target, o Options, manifests []string) error {
	x := newXW(w)
	x.start("SystemData", "xmlns", "urn:deployment-systemdata-schema")
	x.empty("SchemaVersion", "Version", "15.0.0.0", "Build", o.SchemaBuild, "DatabaseVersion", o.DatabaseVersion, "SiteVersion", "15")
	x.start("ManifestFiles")
	for _, m := range manifests {
		x.empty("ManifestFile", "Name", m)
	}
	x.end("ManifestFiles")
	x.start("SystemObjects")
	x.empty("SystemObject", "Id", t.WebID.String(), "Type", "Web", "Url", t.webPath())
	x.end("SystemObjects")
	x.empty("RootWebOnlyLists")
	x.end("SystemData")
	return x.close()
}

func writeRootObjectMap(w io.Writer, t Target) error {
	x := newXW(w)
	web := t.webPath()
	x.start("RootObjects", "xmlns", "urn:deployment-rootobjectmap-schema")
	x.empty("RootObject", "Id", t.ListID.String(), "Type", "List", "ParentId", t.WebID.String(),
		"WebUrl", web, "Url", strings.TrimRight(web, "/")+"/"+t.library(), "IsDependency", "false")
	x.end("RootObjects")
	return x.close()
}

func writeEmptyRoot(w io.Writer, root, ns string) error {
	x := newXW(w)
	x.empty(root, "xmlns", ns)
	return x.close()
}

// xw is a small streaming XML writer over encoding/xml's token encoder. It
// remembers the first error so call sites stay readable; attributes come as
// name/value pairs, and an empty value leaves the attribute out (except
// FileLocation, which the schema examples write empty).
type xw struct {
	enc *xml.Encoder
	err error
}

func newXW(w io.Writer) *xw {
	x := &xw{enc: xml.NewEncoder(w)}
	// One element per line, so the service's line:column errors point somewhere.
	x.enc.Indent("", " ")
	// The declaration is written by hand: encoding/xml's Header spells the
	// encoding in upper case, SharePoint's own packages in lower case.
	_, x.err = io.WriteString(w, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n")
	return x
}

func (x *xw) start(name string, attrs ...string) {
	if x.err != nil {
		return
	}
	se := xml.StartElement{Name: xml.Name{Local: name}}
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] == "" && attrs[i] != "FileLocation" {
			continue
		}
		se.Attr = append(se.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
	}
	x.err = x.enc.EncodeToken(se)
}

func (x *xw) end(name string) {
	if x.err != nil {
		return
	}
	x.err = x.enc.EncodeToken(xml.EndElement{Name: xml.Name{Local: name}})
}

func (x *xw) empty(name string, attrs ...string) {
	x.start(name, attrs...)
	x.end(name)
}

func (x *xw) close() error {
	if x.err != nil {
		return x.err
	}
	return x.enc.Close()
}
