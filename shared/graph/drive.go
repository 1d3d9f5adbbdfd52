package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Target is what a migration package needs to know about the container's
// document library (spec §2.6, §6.5), resolved from the drive root.
type Target struct {
	ContainerID string
	// WebID, ListID and RootFolderID are GUIDs without braces: the manifest's
	// ParentWebId, ListId and the library root folder's id.
	WebID        string
	ListID       string
	RootFolderID string
	SiteID       string
	TenantID     string
	// SiteURL is the absolute URL of the container "site",
	// e.g. https://contoso.sharepoint.com/contentstorage/CSP_{guid}.
	SiteURL string
	// WebURL is the absolute URL of the library root folder.
	WebURL string
	// ServerRelativeWebURL is SiteURL's path, e.g. "/contentstorage/CSP_{guid}"
	// (the manifest's ParentWebUrl).
	ServerRelativeWebURL string
	// LibraryFolder is the library's folder name, decoded, e.g.
	// "Document Library"; manifest paths start with it.
	LibraryFolder string
}

// Target resolves the SharePoint ids of a container's library with
// GET /drives/{containerId}/root?$select=sharepointIds,webUrl. The container
// id is its drive id (spec §2).
func (c *Client) Target(ctx context.Context, containerID string) (Target, error) {
	if err := checkID("containerID", containerID); err != nil {
		return Target{}, err
	}
	u := c.root + "/drives/" + url.PathEscape(containerID) + "/root?$select=sharepointIds,webUrl"
	var root struct {
		WebURL        string `json:"webUrl"`
		SharepointIDs *struct {
			ListID           string `json:"listId"`
			ListItemUniqueID string `json:"listItemUniqueId"`
			SiteID           string `json:"siteId"`
			SiteURL          string `json:"siteUrl"`
			TenantID         string `json:"tenantId"`
			WebID            string `json:"webId"`
		} `json:"sharepointIds"`
	}
	if err := c.do(ctx, OpTarget, http.MethodGet, u, nil, &root); err != nil {
		return Target{}, err
	}
	ids := root.SharepointIDs
	if ids == nil || ids.WebID == "" || ids.ListID == "" || ids.ListItemUniqueID == "" || ids.SiteURL == "" {
		return Target{}, fmt.Errorf("graph: resolve container library: drive %q has no sharepointIds; is it a SharePoint Embedded container id?", containerID)
	}
	t := Target{
		ContainerID:  containerID,
		WebID:        trimGUID(ids.WebID),
		ListID:       trimGUID(ids.ListID),
		RootFolderID: trimGUID(ids.ListItemUniqueID),
		SiteID:       trimGUID(ids.SiteID),
		TenantID:     ids.TenantID,
		SiteURL:      strings.TrimRight(ids.SiteURL, "/"),
		WebURL:       strings.TrimRight(root.WebURL, "/"),
	}
	site, err := url.Parse(t.SiteURL)
	if err != nil {
		return Target{}, errors.New("graph: resolve container library: siteUrl is not a URL")
	}
	t.ServerRelativeWebURL = site.EscapedPath()
	if p, err := url.PathUnescape(t.ServerRelativeWebURL); err == nil {
		t.ServerRelativeWebURL = p
	}
	if t.ServerRelativeWebURL == "" {
		t.ServerRelativeWebURL = "/"
	}
	lib, err := libraryFolder(t.SiteURL, t.WebURL)
	if err != nil {
		return Target{}, fmt.Errorf("graph: resolve container library: %w", err)
	}
	t.LibraryFolder = lib
	return t, nil
}

// libraryFolder derives the library folder name from the root's webUrl
// relative to the site URL (spec §2.6: never hard-code it).
func libraryFolder(siteURL, webURL string) (string, error) {
	s, err1 := url.Parse(siteURL)
	w, err2 := url.Parse(webURL)
	if err1 != nil || err2 != nil || webURL == "" {
		return "", errors.New("webUrl or siteUrl is not a URL")
	}
	sp := strings.TrimRight(s.Path, "/")
	wp := strings.TrimRight(w.Path, "/")
	if !strings.HasPrefix(strings.ToLower(wp), strings.ToLower(sp)+"/") {
		return "", errors.New("webUrl is not under siteUrl")
	}
	rel := wp[len(sp)+1:]
	if rel == "" {
		return "", errors.New("webUrl names no library folder")
	}
	return rel, nil
}

// FolderID parses a driveItem eTag such as "{86EC9BA4-…},3" into the folder
// GUID a manifest's ParentFolderId wants (spec §2.6).
func FolderID(eTag string) (string, error) {
	s := strings.Trim(eTag, `"`)
	if i := strings.IndexByte(s, ','); i >= 0 {
		s = s[:i]
	}
	s = trimGUID(s)
	if len(s) != 36 {
		return "", fmt.Errorf("graph: eTag %q does not carry a GUID", eTag)
	}
	return s, nil
}

func trimGUID(s string) string { return strings.Trim(strings.TrimSpace(s), "{}") }
