package spepackage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// SourceType is ExportSettings@SourceType, mandatory since 2023 (§6.3.1).
type SourceType string

// The source types spemigrate produces.
const (
	SourceAzureStorage SourceType = "AzureStorage"
	SourceFileShare    SourceType = "FileShare"
)

// Target identifies the SPE container's document library and the folder the
// package imports into. The caller fills it from the Graph drive calls of
// spec §2.6.
type Target struct {
	// SiteURL is the absolute URL of the container "site",
	// e.g. https://contoso.sharepoint.com/contentstorage/CSP_<guid>
	// (sharepointIds.siteUrl).
	SiteURL string
	// WebID, ListID and RootFolderID are sharepointIds.webId, .listId and
	// .listItemUniqueId of the drive root.
	WebID        uuid.UUID
	ListID       uuid.UUID
	RootFolderID uuid.UUID
	// LibraryFolder is the library's folder name as it appears in the
	// root's webUrl, e.g. "Document Library".
	LibraryFolder string
	// DestinationPath is the existing folder, relative to the library root,
	// that items are imported under; empty for the library root.
	DestinationPath string
	// DestinationID is that folder's GUID (from its eTag); ignored when
	// DestinationPath is empty.
	DestinationID uuid.UUID
}

// NewTarget builds a Target for the library root from the string values the
// Graph drive calls return (GUIDs with or without braces), and validates it.
// Set DestinationPath and DestinationID on the result to import below a
// folder.
func NewTarget(siteURL, webID, listID, rootFolderID, libraryFolder string) (Target, error) {
	t := Target{SiteURL: siteURL, LibraryFolder: libraryFolder}
	for _, f := range []struct {
		name, val string
		dst       *uuid.UUID
	}{{"WebID", webID, &t.WebID}, {"ListID", listID, &t.ListID}, {"RootFolderID", rootFolderID, &t.RootFolderID}} {
		id, err := uuid.Parse(strings.Trim(f.val, "{}"))
		if err != nil {
			return Target{}, fmt.Errorf("target: %s %q is not a GUID: take it from the drive root's sharepointIds", f.name, f.val)
		}
		*f.dst = id
	}
	return t, t.Validate()
}

// Validate reports the first field that cannot produce a valid package.
func (t Target) Validate() error {
	u, err := url.Parse(t.SiteURL)
	switch {
	case t.SiteURL == "":
		return errors.New("target: SiteURL is empty: set it from the drive root's sharepointIds.siteUrl")
	case err != nil || !u.IsAbs() || u.Host == "":
		return fmt.Errorf("target: SiteURL %q is not an absolute URL: set it from sharepointIds.siteUrl", t.SiteURL)
	case t.WebID == uuid.Nil:
		return errors.New("target: WebID is empty: set it from the drive root's sharepointIds.webId")
	case t.ListID == uuid.Nil:
		return errors.New("target: ListID is empty: set it from the drive root's sharepointIds.listId")
	case t.RootFolderID == uuid.Nil:
		return errors.New("target: RootFolderID is empty: set it from the drive root's sharepointIds.listItemUniqueId")
	case strings.Trim(t.LibraryFolder, "/ ") == "":
		return errors.New("target: LibraryFolder is empty: derive it from the drive root's webUrl")
	case cleanPath(t.DestinationPath) != "" && t.DestinationID == uuid.Nil:
		return fmt.Errorf("target: DestinationID is empty for destination %q: read it from the folder's eTag", t.DestinationPath)
	}
	return nil
}

// webPath is the server-relative web URL (ParentWebUrl), e.g.
// /contentstorage/CSP_<guid>.
func (t Target) webPath() string {
	u, err := url.Parse(t.SiteURL)
	if err != nil {
		return "/"
	}
	p := "/" + strings.Trim(u.Path, "/")
	return p
}

func (t Target) siteURL() string { return strings.TrimRight(t.SiteURL, "/") }

func (t Target) library() string { return strings.Trim(t.LibraryFolder, "/") }

// LibraryPath is the path of an item relative to the library root: the
// destination folder joined with the item's path.
func (t Target) LibraryPath(itemPath string) string {
	return cleanPath(path.Join(cleanPath(t.DestinationPath), cleanPath(itemPath)))
}

// cleanPath makes a slash-separated path without leading or trailing slashes.
func cleanPath(p string) string {
	if p == "" {
		return ""
	}
	p = path.Clean("/" + p)
	return strings.Trim(p, "/")
}

// normalise is the form ids are derived from: SharePoint paths are
// case-insensitive, so "A/b.txt" and "a/B.TXT" are the same object.
func normalise(libraryPath string) string {
	return strings.ToLower(cleanPath(libraryPath))
}

// ObjectID is the GUID of the file or folder at libraryPath (relative to the
// library root): File@Id / Folder@Id and the SPObject's Id.
func ObjectID(namespace uuid.UUID, libraryPath string) uuid.UUID {
	return uuid.NewSHA1(namespace, []byte("object:"+normalise(libraryPath)))
}

// ListItemID is the GUID of the list item that accompanies the object at
// libraryPath (ListItem@Id, which is not the file id).
func ListItemID(namespace uuid.UUID, libraryPath string) uuid.UUID {
	return uuid.NewSHA1(namespace, []byte("listitem:"+normalise(libraryPath)))
}

// IntIDs hands out list-item integer ids (ListItemIntId / IntId).
// Implementations must return the same id each time one library path is
// asked for within a migration, never give one id to two paths, and only
// return ids above the library's highest existing item id.
type IntIDs interface {
	IntID(ctx context.Context, libraryPath string) (int, error)
}

// MemoryIntIDs is an in-process [IntIDs]: ids are allocated in the order
// paths are first asked for, starting at a base. It forgets everything when
// the process ends, so it suits tests and single-process runs only.
type MemoryIntIDs struct {
	mu   sync.Mutex
	next int
	ids  map[string]int
}

// NewMemoryIntIDs returns an allocator whose first id is first.
func NewMemoryIntIDs(first int) *MemoryIntIDs {
	return &MemoryIntIDs{next: first, ids: map[string]int{}}
}

// IntID implements [IntIDs].
func (m *MemoryIntIDs) IntID(_ context.Context, libraryPath string) (int, error) {
	k := normalise(libraryPath)
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.ids[k]; ok {
		return id, nil
	}
	id := m.next
	m.next++
	m.ids[k] = id
	return id, nil
}

// PathKey is how SharePoint tells library paths apart: case-insensitively,
// with either slash, without leading or trailing ones. Two paths with one
// key are one item.
func PathKey(p string) string {
	return strings.ToLower(strings.Trim(strings.ReplaceAll(p, "\\", "/"), "/"))
}
