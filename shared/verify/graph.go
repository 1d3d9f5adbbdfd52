package verify

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Graph reads a drive through Microsoft Graph's drive endpoints (the SPE
// container's drive): plain HTTPS GETs with a bearer token, as any Graph
// client makes them. It never writes.
type Graph struct {
	// BaseURL is the Graph root without the version, e.g.
	// https://graph.microsoft.com or the emulator's https://127.0.0.1:N.
	BaseURL string
	// Token is a fixed bearer token (a local emulator's); Credential, when
	// set, is asked for one per call instead.
	Token      string
	Credential azcore.TokenCredential
	Client     *http.Client
}

// GraphScope is the scope a Credential is asked for.
const GraphScope = "https://graph.microsoft.com/.default"

// NewGraph returns a Graph reader with a fixed token that also trusts the
// PEM certificates in caFile (empty: the system roots only).
func NewGraph(baseURL, caFile, token string) (*Graph, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("verify: Graph CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("verify: %s holds no PEM certificate", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &Graph{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, Client: &http.Client{Transport: tr, Timeout: 10 * time.Minute}}, nil
}

// DriveItem is the part of a Graph driveItem a verification reads.
type DriveItem struct {
	ID                   string      `json:"id"`
	Name                 string      `json:"name"`
	Size                 int64       `json:"size"`
	CreatedDateTime      time.Time   `json:"createdDateTime"`
	LastModifiedDateTime time.Time   `json:"lastModifiedDateTime"`
	CreatedBy            IdentitySet `json:"createdBy"`
	LastModifiedBy       IdentitySet `json:"lastModifiedBy"`
	File                 *struct {
		Hashes struct {
			QuickXorHash string `json:"quickXorHash"`
		} `json:"hashes"`
	} `json:"file"`
	Folder *struct {
		ChildCount int `json:"childCount"`
	} `json:"folder"`
	// SharepointIDs is returned only when asked for with $select.
	SharepointIDs *struct {
		ListItemID       string `json:"listItemId"`
		ListItemUniqueID string `json:"listItemUniqueId"`
	} `json:"sharepointIds"`
	FileSystemInfo *struct {
		CreatedDateTime      time.Time `json:"createdDateTime"`
		LastModifiedDateTime time.Time `json:"lastModifiedDateTime"`
	} `json:"fileSystemInfo"`
}

// IdentitySet is Graph's createdBy/lastModifiedBy.
type IdentitySet struct {
	User *struct {
		DisplayName string `json:"displayName"`
		Email       string `json:"email"`
		ID          string `json:"id"`
	} `json:"user"`
}

// Who returns the identity's email, or its display name.
func (s IdentitySet) Who() string {
	if s.User == nil {
		return ""
	}
	if s.User.Email != "" {
		return s.User.Email
	}
	return s.User.DisplayName
}

// ErrNotFound is returned for a path or item the drive does not have.
var ErrNotFound = fmt.Errorf("verify: not found")

func (g *Graph) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.BaseURL+"/v1.0"+path, nil)
	if err != nil {
		return nil, err
	}
	tok := g.Token
	if g.Credential != nil {
		at, err := g.Credential.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{GraphScope}})
		if err != nil {
			return nil, fmt.Errorf("GET %s: token: %w", path, err)
		}
		tok = at.Token
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := g.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %w", path, ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

func (g *Graph) getJSON(ctx context.Context, path string, out any) error {
	resp, err := g.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", path, err)
	}
	return nil
}

// EscapePath escapes each segment of a slash-separated drive path.
func EscapePath(p string) string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// itemSelect names every DriveItem property: Graph returns sharepointIds
// only when $select names it, and then only what $select names.
const itemSelect = "id,name,size,createdDateTime,lastModifiedDateTime,createdBy,lastModifiedBy,file,folder,fileSystemInfo,sharepointIds"

// ItemByPath returns the item at path (relative to the drive root).
func (g *Graph) ItemByPath(ctx context.Context, driveID, path string) (DriveItem, error) {
	var it DriveItem
	err := g.getJSON(ctx, "/drives/"+url.PathEscape(driveID)+"/root:/"+EscapePath(path)+":?$select="+itemSelect, &it)
	return it, err
}

// Children lists a folder's children; itemID "" is the root.
func (g *Graph) Children(ctx context.Context, driveID, itemID string) ([]DriveItem, error) {
	p := "/drives/" + url.PathEscape(driveID) + "/root/children"
	if itemID != "" {
		p = "/drives/" + url.PathEscape(driveID) + "/items/" + url.PathEscape(itemID) + "/children"
	}
	var out []DriveItem
	for p != "" {
		var page struct {
			Value    []DriveItem `json:"value"`
			NextLink string      `json:"@odata.nextLink"`
		}
		if err := g.getJSON(ctx, p, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Value...)
		p = ""
		if page.NextLink != "" {
			u, err := url.Parse(page.NextLink)
			if err != nil {
				return nil, fmt.Errorf("children next link: %w", err)
			}
			p = strings.TrimPrefix(u.RequestURI(), "/v1.0")
		}
	}
	return out, nil
}

// Content streams an item's current content; the caller closes it.
func (g *Graph) Content(ctx context.Context, driveID, itemID string) (io.ReadCloser, error) {
	resp, err := g.get(ctx, "/drives/"+url.PathEscape(driveID)+"/items/"+url.PathEscape(itemID)+"/content")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ContentSHA256 streams an item's content and returns its SHA-256 and length.
func (g *Graph) ContentSHA256(ctx context.Context, driveID, itemID string) ([32]byte, int64, error) {
	var sum [32]byte
	resp, err := g.get(ctx, "/drives/"+url.PathEscape(driveID)+"/items/"+url.PathEscape(itemID)+"/content")
	if err != nil {
		return sum, 0, err
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return sum, n, fmt.Errorf("read content of %s: %w", itemID, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, n, nil
}

// Walk lists every file under the folder at path ("" for the root), with its
// path relative to the drive root.
func (g *Graph) Walk(ctx context.Context, driveID, path string) (map[string]DriveItem, error) {
	files := map[string]DriveItem{}
	rootID := ""
	if path = strings.Trim(path, "/"); path != "" {
		it, err := g.ItemByPath(ctx, driveID, path)
		if err != nil {
			return nil, err
		}
		rootID = it.ID
	}
	var walk func(id, prefix string) error
	walk = func(id, prefix string) error {
		kids, err := g.Children(ctx, driveID, id)
		if err != nil {
			return err
		}
		for _, k := range kids {
			p := k.Name
			if prefix != "" {
				p = prefix + "/" + k.Name
			}
			if k.Folder != nil {
				if err := walk(k.ID, p); err != nil {
					return err
				}
				continue
			}
			files[p] = k
		}
		return nil
	}
	return files, walk(rootID, path)
}

// JobEvents returns every progress event of a migration job so far (the
// SPE migration API's progressEvents, paged by @odata.nextLink until an
// empty page links to itself: an empty page that links onwards is not the
// end, a service paging over a filtered store serves those).
func (g *Graph) JobEvents(ctx context.Context, containerID, jobID string) ([]map[string]any, error) {
	p := "/storage/fileStorage/containers/" + url.PathEscape(containerID) + "/migrationJobs/" + url.PathEscape(jobID) + "/progressEvents"
	var out []map[string]any
	for {
		var page struct {
			Value    []map[string]any `json:"value"`
			NextLink string           `json:"@odata.nextLink"`
		}
		if err := g.getJSON(ctx, p, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Value...)
		if page.NextLink == "" {
			return out, nil
		}
		u, err := url.Parse(page.NextLink)
		if err != nil {
			return nil, fmt.Errorf("progress events next link: %w", err)
		}
		next := strings.TrimPrefix(u.RequestURI(), "/v1.0")
		if len(page.Value) == 0 && next == p {
			return out, nil
		}
		p = next
	}
}
