package graphemu

import (
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// person is an author or editor as imported.
type person struct {
	Name    string `json:"displayName"`
	Login   string `json:"login,omitempty"`
	Email   string `json:"email,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`
}

var systemAccount = person{Name: "System Account", Login: "SHAREPOINT\\system"}

// version is one stored version of a file; its content is a file on disk.
type version struct {
	Label        string    `json:"label"`
	Size         int64     `json:"size"`
	QuickXorHash string    `json:"quickXorHash"`
	Created      time.Time `json:"createdDateTime"`
	Modified     time.Time `json:"lastModifiedDateTime"`
	CreatedBy    person    `json:"createdBy"`
	ModifiedBy   person    `json:"lastModifiedBy"`
	path         string
}

// item is a folder or a file in a container's library.
type item struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Path       string            `json:"path"`
	ParentID   string            `json:"parentId,omitempty"`
	Folder     bool              `json:"folder"`
	IntID      int               `json:"intId"`
	Created    time.Time         `json:"createdDateTime"`
	Modified   time.Time         `json:"lastModifiedDateTime"`
	CreatedBy  person            `json:"createdBy"`
	ModifiedBy person            `json:"lastModifiedBy"`
	ETagN      int               `json:"etagVersion"`
	Versions   []version         `json:"versions,omitempty"`
	Fields     map[string]string `json:"fields,omitempty"`
	ListItemID string            `json:"listItemId,omitempty"`
}

// drive is the imported content of one SPE container. Item metadata is in
// memory; file content lives under dir.
type drive struct {
	c   Container
	dir string

	mu    sync.Mutex
	items map[string]*item // by lower-case GUID
	byInt map[int]string
	next  int

	// epoch, seq, stamps and seqs serve delta (delta.go): change
	// sequence numbers given out since this start.
	epoch  string
	seq    int64
	stamps map[string]string
	seqs   map[string]int64
}

func newDrive(c Container, dir string) (*drive, error) {
	if err := os.MkdirAll(filepath.Join(dir, "content"), 0o755); err != nil {
		return nil, fmt.Errorf("graphemu: drive dir: %w", err)
	}
	root := &item{ID: normID(c.RootFolderID), Name: c.LibraryFolder, Folder: true, ETagN: 1,
		Created: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), CreatedBy: systemAccount, ModifiedBy: systemAccount}
	root.Modified = root.Created
	d := &drive{c: c, dir: dir, items: map[string]*item{root.ID: root}, byInt: map[int]string{}, next: 1, epoch: newEpoch()}
	if err := d.load(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *drive) rootID() string { return normID(d.c.RootFolderID) }

// pathOf is the item's path below the library root ("" for the root).
// Callers hold d.mu.
func (d *drive) pathOf(it *item) string {
	var parts []string
	// The importer refuses cycles; the depth bound is a second guard.
	for depth := 0; it != nil && it.ID != d.rootID() && depth < 10000; depth++ {
		parts = append(parts, it.Name)
		it = d.items[it.ParentID]
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/")
}

// child finds a child by name, case-insensitively. Callers hold d.mu.
func (d *drive) child(parentID, name string) *item {
	for _, it := range d.items {
		if it.ParentID == parentID && strings.EqualFold(it.Name, name) {
			return it
		}
	}
	return nil
}

// byPath resolves a library-relative path. Callers hold d.mu.
func (d *drive) byPath(p string) *item {
	it := d.items[d.rootID()]
	for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		if seg == "" {
			continue
		}
		if it = d.child(it.ID, seg); it == nil {
			return nil
		}
	}
	return it
}

func (d *drive) children(parentID string) []*item {
	var out []*item
	for _, it := range d.items {
		if it.ParentID == parentID && it.ID != d.rootID() {
			out = append(out, it)
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out
}

// allocInt returns a free list item id. Callers hold d.mu.
func (d *drive) allocInt() int {
	for {
		n := d.next
		d.next++
		if _, taken := d.byInt[n]; !taken {
			return n
		}
	}
}

// removeFile deletes a file and all its versions. Callers hold d.mu.
func (d *drive) removeFile(it *item) {
	delete(d.items, it.ID)
	if d.byInt[it.IntID] == it.ID {
		delete(d.byInt, it.IntID)
	}
	_ = os.RemoveAll(filepath.Join(d.dir, "content", it.ID))
}

func guidUpper(id string) string { return strings.ToUpper(id) }

// itemKey is the driveItem id of an item. Like Graph's, it is opaque and is
// not the item's GUID (that one is in the eTag and in
// sharepointIds.listItemUniqueId), so a client that confuses the two fails
// here as it would against Graph.
func itemKey(guid string) string {
	u, err := uuid.Parse(guid)
	if err != nil {
		return guid
	}
	return "01" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(u[:])
}

func guidFromKey(key string) string {
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimPrefix(key, "01"))
	if err != nil || len(b) != 16 || !strings.HasPrefix(key, "01") {
		return ""
	}
	u, _ := uuid.FromBytes(b)
	return u.String()
}

// driveItemJSON renders an item the way Graph renders a driveItem.
func (s *Server) driveItemJSON(d *drive, it *item) map[string]any {
	p := d.pathOf(it)
	web := strings.TrimSuffix(d.c.SiteURL, "/") + "/" + escapePath(d.c.LibraryFolder)
	if p != "" {
		web += "/" + escapePath(p)
	}
	m := map[string]any{
		"id":                   itemKey(it.ID),
		"name":                 it.Name,
		"eTag":                 fmt.Sprintf("\"{%s},%d\"", guidUpper(it.ID), it.ETagN),
		"cTag":                 fmt.Sprintf("\"c:{%s},%d\"", guidUpper(it.ID), it.ETagN),
		"createdDateTime":      it.Created.UTC().Format(time.RFC3339),
		"lastModifiedDateTime": it.Modified.UTC().Format(time.RFC3339),
		"createdBy":            identity(it.CreatedBy),
		"lastModifiedBy":       identity(it.ModifiedBy),
		"webUrl":               web,
		"sharepointIds": map[string]any{
			"listId":           d.c.ListID,
			"listItemId":       strconv.Itoa(it.IntID),
			"listItemUniqueId": it.ID,
			"siteId":           d.c.SiteID,
			"siteUrl":          d.c.SiteURL,
			"tenantId":         d.c.TenantID,
			"webId":            d.c.WebID,
		},
	}
	if it.ID == d.rootID() {
		m["root"] = map[string]any{}
		m["name"] = "root"
		m["parentReference"] = map[string]any{"driveId": d.c.ID, "driveType": "documentLibrary"}
	} else {
		parent := d.items[it.ParentID]
		pp := "/drives/" + d.c.ID + "/root:"
		if parent != nil && parent.ID != d.rootID() {
			pp += "/" + d.pathOf(parent)
		}
		m["parentReference"] = map[string]any{"driveId": d.c.ID, "driveType": "documentLibrary", "id": itemKey(it.ParentID), "path": pp}
	}
	if it.Folder {
		m["folder"] = map[string]any{"childCount": len(d.children(it.ID))}
		m["size"] = 0
	} else {
		cur := it.Versions[len(it.Versions)-1]
		m["size"] = cur.Size
		mt := mime.TypeByExtension(path.Ext(it.Name))
		if mt == "" {
			mt = "application/octet-stream"
		}
		m["file"] = map[string]any{"mimeType": mt, "hashes": map[string]any{"quickXorHash": cur.QuickXorHash}}
	}
	return m
}

func identity(p person) map[string]any {
	u := map[string]any{"displayName": p.Name}
	if p.Email != "" {
		u["email"] = p.Email
	}
	return map[string]any{"user": u}
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// driveRoute parses the part of a drive URL after "drives/".
func (s *Server) driveRoute(method, dr string) (string, http.HandlerFunc) {
	driveID, rest, _ := strings.Cut(dr, "/")
	sel, suffix, ok := s.itemSelector(rest)
	if !ok {
		return "", nil
	}
	name, h := s.driveItemHandler(method, rest, suffix)
	if h == nil {
		return "", nil
	}
	return name, s.withItem(driveID, sel, h)
}

// itemHandler answers a call about one drive item. It is called with d.mu
// held and must unlock it.
type itemHandler func(w http.ResponseWriter, r *http.Request, d *drive, it *item)

// itemSelector resolves the item a drive URL addresses (root,
// root:/path[:], items/{id}) into a lookup run under the drive's lock, and
// returns what follows the item in the URL ("/children", "/content", ...).
func (s *Server) itemSelector(rest string) (sel func(d *drive) *item, suffix string, ok bool) {
	switch {
	case rest == "root" || strings.HasPrefix(rest, "root/"):
		suffix = strings.TrimPrefix(rest, "root")
		return func(d *drive) *item { return d.items[d.rootID()] }, suffix, true
	case strings.HasPrefix(rest, "root:"):
		p := strings.TrimPrefix(rest, "root:")
		if i := strings.Index(p, ":"); i >= 0 {
			p, suffix = p[:i], p[i+1:]
		}
		return func(d *drive) *item { return d.byPath(p) }, suffix, true
	case strings.HasPrefix(rest, "items/"):
		id, sfx, _ := strings.Cut(strings.TrimPrefix(rest, "items/"), "/")
		if sfx != "" {
			suffix = "/" + sfx
		}
		return func(d *drive) *item {
			if g := guidFromKey(id); g != "" {
				return d.items[g]
			}
			if s.cfg.Knobs.StrictItemIDs {
				return nil
			}
			return d.items[strings.ToLower(strings.Trim(id, "{}"))]
		}, suffix, true
	}
	return nil, "", false
}

// withItem turns h into a handler that finds the drive and the item sel
// selects, answering 404 when either is missing, and calls h with the
// drive locked.
func (s *Server) withItem(driveID string, sel func(d *drive) *item, h itemHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := s.container(driveID)
		if d == nil {
			writeError(w, r, http.StatusNotFound, "itemNotFound", "", "The drive was not found.")
			return
		}
		d.mu.Lock()
		it := sel(d)
		if it == nil {
			d.mu.Unlock()
			writeError(w, r, http.StatusNotFound, "itemNotFound", "", "The resource could not be found.")
			return
		}
		h(w, r, d, it) // h unlocks d.mu
	}
}

// driveItemHandler picks the route name and handler for method and the URL
// suffix after the item, or a nil handler when the call is not emulated.
func (s *Server) driveItemHandler(method, rest, suffix string) (string, itemHandler) {
	switch {
	case suffix == "" && method == http.MethodGet:
		if rest == "root" {
			return RouteDriveRoot, s.getItem
		}
		return RouteDriveItem, s.getItem
	case suffix == "/delta" && rest == "root/delta" && method == http.MethodGet:
		return RouteDriveDelta, s.delta
	case suffix == "/children" && method == http.MethodGet:
		return RouteDriveChildren, s.listChildren
	case suffix == "/children" && method == http.MethodPost:
		return RouteCreateFolder, s.createFolder
	case suffix == "/content" && method == http.MethodGet:
		return RouteDriveContent, s.currentContent
	case suffix == "/versions" && method == http.MethodGet:
		return RouteDriveVersions, s.listVersions
	case strings.HasPrefix(suffix, "/versions/") && strings.HasSuffix(suffix, "/content") && method == http.MethodGet:
		label := strings.TrimSuffix(strings.TrimPrefix(suffix, "/versions/"), "/content")
		return RouteDriveContent, s.versionContent(label)
	}
	return "", nil
}

// getItem answers GET of a drive item (or the root) with its JSON,
// honouring $select.
func (s *Server) getItem(w http.ResponseWriter, r *http.Request, d *drive, it *item) {
	m := s.driveItemJSON(d, it)
	d.mu.Unlock()
	writeJSON(w, http.StatusOK, selectFields(m, r.URL.Query()))
}

// currentContent answers GET .../content with the current version's bytes.
func (s *Server) currentContent(w http.ResponseWriter, r *http.Request, d *drive, it *item) {
	if it.Folder {
		d.mu.Unlock()
		writeError(w, r, http.StatusBadRequest, "invalidRequest", "", "A folder has no content.")
		return
	}
	v := it.Versions[len(it.Versions)-1]
	d.mu.Unlock()
	s.content(w, r, v)
}

// listVersions answers GET .../versions, newest first as Graph lists them.
func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, d *drive, it *item) {
	vals := []map[string]any{}
	for i := len(it.Versions) - 1; i >= 0; i-- {
		v := it.Versions[i]
		vals = append(vals, map[string]any{
			"id":                   v.Label,
			"lastModifiedDateTime": v.Modified.UTC().Format(time.RFC3339),
			"lastModifiedBy":       identity(v.ModifiedBy),
			"size":                 v.Size,
		})
	}
	d.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"value": vals})
}

// versionContent answers GET .../versions/{label}/content.
func (s *Server) versionContent(label string) itemHandler {
	return func(w http.ResponseWriter, r *http.Request, d *drive, it *item) {
		for _, v := range it.Versions {
			if v.Label == label {
				d.mu.Unlock()
				s.content(w, r, v)
				return
			}
		}
		d.mu.Unlock()
		writeError(w, r, http.StatusNotFound, "itemNotFound", "", "The version was not found.")
	}
}

// content answers a /content call: the bytes, or with the ContentRedirect
// knob a 302 to a pre-authenticated download URL, as Graph does.
func (s *Server) content(w http.ResponseWriter, r *http.Request, v version) {
	if !s.cfg.Knobs.ContentRedirect {
		serveContent(w, r, v)
		return
	}
	tok := uuid.NewString()
	s.mu.Lock()
	s.downloads[tok] = download{v: v, expires: s.cfg.Now().Add(time.Hour)}
	s.mu.Unlock()
	w.Header().Set("Location", s.url+"/_download/"+tok)
	w.WriteHeader(http.StatusFound)
}

// download is a pre-authenticated download URL's target.
type download struct {
	v       version
	expires time.Time
}

// serveDownload answers a pre-authenticated download URL (no token needed,
// not a Graph call, so not counted).
func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request, tok string) {
	s.mu.Lock()
	dl, ok := s.downloads[tok]
	s.mu.Unlock()
	if !ok || s.cfg.Now().After(dl.expires) {
		http.Error(w, "download URL unknown or expired", http.StatusNotFound)
		return
	}
	serveContent(w, r, dl.v)
}

func serveContent(w http.ResponseWriter, r *http.Request, v version) {
	f, err := os.Open(v.path)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "generalException", "", "content missing")
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(v.Size, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, f)
}

// selectFields applies $select to top-level properties.
func selectFields(m map[string]any, q url.Values) map[string]any {
	var sel string
	for k, v := range q {
		if strings.EqualFold(k, "$select") && len(v) > 0 {
			sel = v[0]
		}
	}
	if sel == "" {
		return m
	}
	out := map[string]any{}
	for _, f := range strings.Split(sel, ",") {
		f = strings.TrimSpace(f)
		for k, v := range m {
			if strings.EqualFold(k, f) {
				out[k] = v
			}
		}
	}
	return out
}

func (s *Server) createFolder(w http.ResponseWriter, r *http.Request, d *drive, parent *item) {
	defer d.mu.Unlock()
	var body struct {
		Name     string          `json:"name"`
		Folder   json.RawMessage `json:"folder"`
		Conflict string          `json:"@microsoft.graph.conflictBehavior"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Name == "" || body.Folder == nil {
		writeError(w, r, http.StatusBadRequest, "invalidRequest", "", "Body must be {\"name\": \"…\", \"folder\": {}}; only folders can be created here.")
		return
	}
	if !parent.Folder {
		writeError(w, r, http.StatusBadRequest, "invalidRequest", "", "The parent is not a folder.")
		return
	}
	if ex := d.child(parent.ID, body.Name); ex != nil {
		switch body.Conflict {
		case "replace":
			if ex.Folder {
				writeJSON(w, http.StatusOK, s.driveItemJSON(d, ex))
				return
			}
		case "rename":
			for i := 1; d.child(parent.ID, body.Name) != nil; i++ {
				body.Name = fmt.Sprintf("%s %d", strings.TrimSuffix(body.Name, fmt.Sprintf(" %d", i-1)), i)
			}
		default:
			writeError(w, r, http.StatusConflict, "nameAlreadyExists", "", "An item with the same name already exists.")
			return
		}
	}
	now := s.cfg.Now().UTC()
	it := &item{ID: uuid.NewString(), Name: body.Name, ParentID: parent.ID, Folder: true, IntID: d.allocInt(),
		Created: now, Modified: now, CreatedBy: systemAccount, ModifiedBy: systemAccount, ETagN: 1}
	d.items[it.ID] = it
	d.byInt[it.IntID] = it.ID
	if err := d.save(); err != nil {
		s.log.Warn("save drive", "container", d.c.ID, "err", err)
	}
	writeJSON(w, http.StatusCreated, s.driveItemJSON(d, it))
}

func cutTree(rest string) (string, bool) {
	id, ok := strings.CutPrefix(rest, "containers/")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(id, "/tree")
}

// serveTree is the verification endpoint of spec §9.7.
func (s *Server) serveTree(w http.ResponseWriter, r *http.Request, id string) {
	d := s.container(id)
	if d == nil {
		http.NotFound(w, r)
		return
	}
	d.mu.Lock()
	var out []item
	for _, it := range d.items {
		c := *it
		c.Path = d.pathOf(it)
		out = append(out, c)
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

// existingNS seeds the GUIDs of [Knobs.Existing] items, so a restarted
// emulator recognises the ones it seeded before.
var existingNS = uuid.MustParse("5d8e2c8a-52b4-4f3e-9a51-0c6f2f7b1e00")

// firstExistingIntID is where seeded items' list item ids start: a library
// in use has ids a client must allocate above.
const firstExistingIntID = 1001

// seed creates the Existing paths (and their parents) that are not there
// yet, as System Account at the given time. A path ending in "/" is a folder.
func (d *drive) seed(paths []string, at time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(paths) == 0 {
		return nil
	}
	if d.next < firstExistingIntID {
		d.next = firstExistingIntID
	}
	for _, p := range paths {
		folder := strings.HasSuffix(p, "/")
		segs := strings.Split(strings.Trim(p, "/"), "/")
		parent := d.items[d.rootID()]
		for i, seg := range segs {
			isFolder := folder || i < len(segs)-1
			if ex := d.child(parent.ID, seg); ex != nil {
				parent = ex
				continue
			}
			id := uuid.NewSHA1(existingNS, []byte(strings.ToLower(d.c.ID+"/"+strings.Join(segs[:i+1], "/")))).String()
			it := &item{ID: id, Name: seg, ParentID: parent.ID, Folder: isFolder, IntID: d.allocInt(), ETagN: 1,
				Created: at, Modified: at, CreatedBy: systemAccount, ModifiedBy: systemAccount}
			if !isFolder {
				body := []byte("existing content of " + strings.Join(segs[:i+1], "/") + "\n")
				dir := filepath.Join(d.dir, "content", id)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return fmt.Errorf("graphemu: seed %s: %w", p, err)
				}
				vp := filepath.Join(dir, "0.bin")
				if err := os.WriteFile(vp, body, 0o644); err != nil {
					return fmt.Errorf("graphemu: seed %s: %w", p, err)
				}
				var h quickXorHash
				_, _ = h.Write(body)
				it.Versions = []version{{Label: "1.0", Size: int64(len(body)), QuickXorHash: h.Sum(), Created: at, Modified: at,
					CreatedBy: systemAccount, ModifiedBy: systemAccount, path: vp}}
			}
			d.items[id] = it
			d.byInt[it.IntID] = id
			parent = it
		}
	}
	return d.save()
}
