package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// DriveEntry is what a migration needs to know about an existing drive
// item: whether it is a folder, and the GUID a package references it by.
type DriveEntry struct {
	Name string
	// GUID is the item's unique id (sharepointIds.listItemUniqueId, the
	// GUID of its eTag), without braces, lower case: a manifest's
	// ParentId / ParentFolderId for a folder (spec §2.6).
	GUID   string
	Folder bool
	// ListItemID is sharepointIds.listItemId, 0 when absent.
	ListItemID int64
}

// driveEntryJSON is the driveItem subset the lookups select.
type driveEntryJSON struct {
	Name          string    `json:"name"`
	ETag          string    `json:"eTag"`
	Folder        *struct{} `json:"folder"`
	Deleted       *struct{} `json:"deleted"`
	SharepointIDs *struct {
		ListItemID       string `json:"listItemId"`
		ListItemUniqueID string `json:"listItemUniqueId"`
	} `json:"sharepointIds"`
}

func (j driveEntryJSON) entry() (DriveEntry, error) {
	e := DriveEntry{Name: j.Name, Folder: j.Folder != nil}
	if j.SharepointIDs != nil {
		e.GUID = strings.ToLower(trimGUID(j.SharepointIDs.ListItemUniqueID))
		if n, err := strconv.ParseInt(j.SharepointIDs.ListItemID, 10, 64); err == nil {
			e.ListItemID = n
		}
	}
	if e.GUID == "" {
		g, err := FolderID(j.ETag)
		if err != nil {
			return DriveEntry{}, fmt.Errorf("drive item %q: no sharepointIds.listItemUniqueId and %w", j.Name, err)
		}
		e.GUID = strings.ToLower(g)
	}
	return e, nil
}

const entrySelect = "$select=name,eTag,sharepointIds,folder"

// pathURL is /drives/{id}/root:/{path} with every segment escaped, or the
// root itself for an empty path.
func (c *Client) pathURL(driveID, libraryPath string) string {
	u := c.root + "/drives/" + url.PathEscape(driveID) + "/root"
	p := strings.Trim(libraryPath, "/")
	if p == "" {
		return u
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return u + ":/" + strings.Join(segs, "/") + ":"
}

// ItemByPath looks up the item at a library-relative path (GET
// /drives/{id}/root:/{path}). A missing item is an error matching
// [ErrNotFound].
func (c *Client) ItemByPath(ctx context.Context, driveID, libraryPath string) (DriveEntry, error) {
	if err := checkID("driveID", driveID); err != nil {
		return DriveEntry{}, err
	}
	if strings.Trim(libraryPath, "/") == "" {
		return DriveEntry{}, errors.New("graph: look up drive item: path is empty: the root is resolved by Target")
	}
	var j driveEntryJSON
	if err := c.do(ctx, OpDriveItem, http.MethodGet, c.pathURL(driveID, libraryPath)+"?"+entrySelect, nil, &j); err != nil {
		return DriveEntry{}, err
	}
	return j.entry()
}

// Children lists the children of the folder at a library-relative path
// ("" is the root), following @odata.nextLink verbatim. top bounds a page
// (0 leaves it to the service).
func (c *Client) Children(ctx context.Context, driveID, libraryPath string, top int) ([]DriveEntry, error) {
	if err := checkID("driveID", driveID); err != nil {
		return nil, err
	}
	link := c.pathURL(driveID, libraryPath) + "/children?" + entrySelect
	if top > 0 {
		link += "&$top=" + strconv.Itoa(top)
	}
	var out []DriveEntry
	for link != "" {
		var page struct {
			Value    []driveEntryJSON `json:"value"`
			NextLink string           `json:"@odata.nextLink"`
		}
		if err := c.do(ctx, OpChildren, http.MethodGet, link, nil, &page); err != nil {
			return nil, err
		}
		for _, j := range page.Value {
			e, err := j.entry()
			if err != nil {
				return nil, fmt.Errorf("graph: %s: %w", OpChildren, err)
			}
			out = append(out, e)
		}
		next := ""
		if page.NextLink != "" {
			var err error
			if next, err = c.nextLink(OpChildren, link, page.NextLink); err != nil {
				return nil, err
			}
		}
		link = next
	}
	return out, nil
}

// MaxListItemID reads the drive's changes (GET /drives/{id}/root/delta,
// every page, links followed verbatim) since deltaLink ("" reads every
// item) and returns the highest sharepointIds.listItemId among them and
// the new delta link to start from next time. A delta link the service no
// longer honours (410) is answered by reading everything again.
func (c *Client) MaxListItemID(ctx context.Context, driveID, deltaLink string) (maxID int64, nextDelta string, err error) {
	if err := checkID("driveID", driveID); err != nil {
		return 0, "", err
	}
	start := c.root + "/drives/" + url.PathEscape(driveID) + "/root/delta?$select=id,sharepointIds,deleted"
	link := start
	if deltaLink != "" {
		if link, err = c.nextLink(OpDelta, start, deltaLink); err != nil {
			link = start // stored under another Graph root: read everything
		}
	}
	for {
		var page struct {
			Value     []driveEntryJSON `json:"value"`
			NextLink  string           `json:"@odata.nextLink"`
			DeltaLink string           `json:"@odata.deltaLink"`
		}
		err := c.do(ctx, OpDelta, http.MethodGet, link, nil, &page)
		var ge *Error
		if errors.As(err, &ge) && ge.StatusCode == http.StatusGone && link != start {
			link, maxID = start, 0
			continue
		}
		if err != nil {
			return 0, "", err
		}
		for _, j := range page.Value {
			if j.Deleted != nil || j.SharepointIDs == nil {
				continue
			}
			if n, err := strconv.ParseInt(j.SharepointIDs.ListItemID, 10, 64); err == nil && n > maxID {
				maxID = n
			}
		}
		switch {
		case page.NextLink != "":
			if link, err = c.nextLink(OpDelta, link, page.NextLink); err != nil {
				return 0, "", err
			}
		case page.DeltaLink != "":
			return maxID, page.DeltaLink, nil
		default:
			return 0, "", fmt.Errorf("graph: %s: a page has neither @odata.nextLink nor @odata.deltaLink", OpDelta)
		}
	}
}
