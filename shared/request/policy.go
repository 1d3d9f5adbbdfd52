package request

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Settings that make up a Policy; they are named in error messages so the
// caller (or the operator reading the reason) knows what to change.
const (
	SettingLocalRoots   = "SPEMIGRATE_LOCAL_SOURCE_ROOTS"
	SettingBlobSuffixes = "SPEMIGRATE_BLOB_ENDPOINT_SUFFIXES"
	SettingBlobHosts    = "SPEMIGRATE_ALLOWED_BLOB_HOSTS"
	SettingContainers   = "SPEMIGRATE_ALLOWED_CONTAINERS"
	// SettingConnectionSettings lists the app settings requests may name
	// in source.connectionSetting.
	SettingConnectionSettings = "SPEMIGRATE_ALLOWED_CONNECTION_SETTINGS"
)

// PublicBlobSuffix is the DNS suffix of Azure Blob endpoints in the public
// cloud; it is always allowed.
const PublicBlobSuffix = "blob.core.windows.net"

// Policy is what the operator of a deployment lets a request name. A request
// that is well-formed (Validate) can still point at places the app must not
// read from on a caller's behalf: the host's own file system, a loopback
// service, another tenant's container. Every entry point checks the policy
// before anything is stored or sent, and the source is checked again when it
// is opened.
//
// The zero Policy is the strict one: no local folders, Azure Blob only on
// https://<account>.blob.core.windows.net, any target container.
type Policy struct {
	// LocalRoots are the folders under which a localFolder source may lie
	// (after symbolic links are resolved). Empty refuses localFolder.
	LocalRoots []string
	// BlobSuffixes are DNS suffixes allowed besides PublicBlobSuffix, for
	// sovereign clouds (e.g. blob.core.usgovcloudapi.net). They are served
	// over https on the default port only.
	BlobSuffixes []string
	// BlobHosts are exact host or host:port endpoints allowed in addition,
	// over http or https: a storage emulator or a private endpoint.
	BlobHosts []string
	// Containers are the target container ids requests may name. Empty
	// allows any.
	Containers []string
	// ConnectionSettings are the app settings a request may name in
	// source.connectionSetting. Empty allows none. The app's own settings
	// (its storage, Service Bus, keys) are refused even when listed: a
	// request naming them would migrate the app's own storage account,
	// function keys included.
	ConnectionSettings []string
	// OwnAccounts are the storage account names the app itself uses
	// (AzureWebJobsStorage, its state): a source on one of them is refused
	// whatever its credential.
	OwnAccounts []string
}

// appSettingPrefixes are the app's own settings, never a migration source.
var appSettingPrefixes = []string{"azurewebjobs", "servicebusconnection", "spemigrate_", "website_", "functions_", "applicationinsights", "appsetting_"}

// connectionSetting checks a source.connectionSetting name.
func (p Policy) connectionSetting(name string) string {
	lower := strings.ToLower(name)
	for _, pre := range appSettingPrefixes {
		if strings.HasPrefix(lower, pre) {
			return fmt.Sprintf("%q is one of the app's own settings; name a setting that holds only the source's connection string", name)
		}
	}
	for _, ok := range p.ConnectionSettings {
		if strings.EqualFold(ok, name) {
			return ""
		}
	}
	return fmt.Sprintf("%q is not a setting this deployment lets requests name; list it in %s", name, SettingConnectionSettings)
}

// ownAccount refuses a source URL on the app's own storage account.
func (p Policy) ownAccount(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	host := strings.ToLower(u.Hostname())
	for _, a := range p.OwnAccounts {
		if a != "" && strings.HasPrefix(host, strings.ToLower(a)+".") {
			return fmt.Sprintf("storage account %q is the app's own; migrate from another account", a)
		}
	}
	return ""
}

// storageAccount is the Azure storage account name rule: the one DNS label
// in front of the endpoint suffix.
var storageAccount = regexp.MustCompile(`^[a-z0-9]{3,24}$`)

// Check returns an *Error naming every field the policy refuses, or nil. When
// the only problem is a target container outside the allow-list the error is
// Forbidden (HTTP 403); other problems make it a plain 400.
func (p Policy) Check(r Request) error {
	v := &validator{}
	switch r.Source.Kind {
	case KindLocalFolder:
		if _, err := p.LocalRoot(r.Source); err != nil {
			v.add(localField(err), "%s", err.Error())
		}
	case KindAzureBlob:
		if msg := p.blobURL(r.Source.ContainerURL); msg != "" {
			v.add("source.containerUrl", "%s", msg)
		} else if msg := p.ownAccount(r.Source.ContainerURL); msg != "" {
			v.add("source.containerUrl", "%s", msg)
		}
		if r.Source.ConnectionSetting != "" {
			if msg := p.connectionSetting(r.Source.ConnectionSetting); msg != "" {
				v.add("source.connectionSetting", "%s", msg)
			}
		}
		if r.Source.ConnectionString != "" {
			if msg := p.connectionString(r.Source.ConnectionString); msg != "" {
				v.add("source.connectionString", "%s", msg)
			}
		}
	}
	sourceProblems := len(v.errs)
	if msg := p.container(r.Target.ContainerID); msg != "" {
		v.add("target.containerId", "%s", msg)
	}
	if len(v.errs) == 0 {
		return nil
	}
	return &Error{Fields: v.errs, Forbidden: sourceProblems == 0}
}

// LocalRoot returns the real folder a localFolder source reads (path plus
// prefix, every symbolic link resolved) when it lies under one of
// LocalRoots, or an error saying why not. The source opens exactly the
// returned folder, so a link swapped in after the check still cannot lead
// it elsewhere (shared/source confines the walk to it).
func (p Policy) LocalRoot(s Source) (string, error) {
	if len(p.LocalRoots) == 0 {
		return "", &localError{"source.kind", fmt.Sprintf("%q sources are not enabled on this deployment; use %q, or ask the operator to set %s to the folders that may be migrated", KindLocalFolder, KindAzureBlob, SettingLocalRoots)}
	}
	if !filepath.IsAbs(s.Path) {
		return "", &localError{"source.path", "must be an absolute directory path"}
	}
	if hasDotDot(filepath.ToSlash(s.Path)) {
		return "", &localError{"source.path", "must not contain '..' segments"}
	}
	want := s.Path
	if s.Prefix != "" {
		want = filepath.Join(want, filepath.FromSlash(s.Prefix))
	}
	real, err := filepath.EvalSymlinks(want)
	if err != nil {
		field := "source.path"
		if s.Prefix != "" {
			field = "source.prefix"
		}
		if errors.Is(err, os.ErrNotExist) {
			return "", &localError{field, "folder does not exist on the handler's machine"}
		}
		return "", &localError{field, "folder cannot be resolved on the handler's machine"}
	}
	for _, root := range p.LocalRoots {
		rr, err := filepath.EvalSymlinks(root)
		if err != nil {
			continue // an allowed root that is gone allows nothing
		}
		if within(rr, real) {
			fi, err := os.Stat(real)
			if err != nil || !fi.IsDir() {
				return "", &localError{"source.path", "is not a folder: give the folder to migrate"}
			}
			return real, nil
		}
	}
	return "", &localError{"source.path", fmt.Sprintf("resolves outside the folders this deployment may migrate from (%s); symbolic links count where they lead", SettingLocalRoots)}
}

// within reports whether path is root or lies under it; both are clean,
// absolute and resolved.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && (rel == "." || filepath.IsLocal(rel))
}

type localError struct{ field, msg string }

func (e *localError) Error() string { return e.msg }

func localField(err error) string {
	var le *localError
	if errors.As(err, &le) {
		return le.field
	}
	return "source.path"
}

// blobURL returns why a container URL's endpoint is refused, or "". It
// quotes the host (never the query, which may hold a SAS).
func (p Policy) blobURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "is not an absolute URL" // Validate says more
	}
	if u.User != nil {
		return "must not contain user information"
	}
	return p.endpoint(u.Scheme, u.Host)
}

// endpoint checks a scheme and host[:port] against the allow-lists.
func (p Policy) endpoint(scheme, hostport string) string {
	hostport = strings.ToLower(hostport)
	if p.allowedHost(scheme, hostport) {
		if scheme != "http" && scheme != "https" {
			return fmt.Sprintf("scheme %q is not allowed; use https", scheme)
		}
		return ""
	}
	host, port := hostport, ""
	if h, pt, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, pt
	}
	for _, suffix := range p.suffixes() {
		account, ok := strings.CutSuffix(host, "."+suffix)
		if !ok || !storageAccount.MatchString(account) {
			continue
		}
		switch {
		case scheme != "https":
			return fmt.Sprintf("must use https for %s; plain http only for a host listed in %s", host, SettingBlobHosts)
		case port != "" && port != "443":
			return fmt.Sprintf("port %s is not allowed for %s; Azure Blob endpoints use the default https port", port, host)
		}
		return ""
	}
	return fmt.Sprintf("host %q is not an Azure Blob endpoint; allowed: %s; set %s for local endpoints", hostport, p.allowedList(), SettingBlobHosts)
}

func (p Policy) suffixes() []string {
	out := []string{PublicBlobSuffix}
	for _, s := range p.BlobSuffixes {
		s = strings.Trim(strings.ToLower(s), ".")
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (p Policy) allowedList() string {
	var parts []string
	for _, s := range p.suffixes() {
		parts = append(parts, "*."+s)
	}
	parts = append(parts, p.BlobHosts...)
	return strings.Join(parts, ", ")
}

// allowedHost reports whether hostport is one of BlobHosts; an entry
// without a port matches the scheme's default port.
func (p Policy) allowedHost(scheme, hostport string) bool {
	host, port := hostport, ""
	if h, pt, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, pt
	}
	for _, a := range p.BlobHosts {
		a = strings.ToLower(a)
		if a == hostport {
			return true
		}
		if _, _, err := net.SplitHostPort(a); err == nil {
			continue
		}
		if a == host && (port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80")) {
			return true
		}
	}
	return false
}

// connectionString checks the blob endpoint an inline connection string
// names: the client connects there, not to the container URL's host.
func (p Policy) connectionString(cs string) string {
	kv := map[string]string{}
	for _, part := range strings.Split(cs, ";") {
		k, v, ok := strings.Cut(part, "=")
		if ok {
			kv[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	if strings.EqualFold(kv["usedevelopmentstorage"], "true") {
		return p.endpoint("http", "127.0.0.1:10000")
	}
	if ep := kv["blobendpoint"]; ep != "" {
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" {
			return "BlobEndpoint is not an absolute URL"
		}
		if u.User != nil {
			return "BlobEndpoint must not contain user information"
		}
		return p.endpoint(u.Scheme, u.Host)
	}
	scheme := strings.ToLower(kv["defaultendpointsprotocol"])
	if scheme == "" {
		scheme = "https"
	}
	suffix := kv["endpointsuffix"]
	if suffix == "" {
		suffix = "core.windows.net"
	}
	return p.endpoint(scheme, kv["accountname"]+".blob."+suffix)
}

func (p Policy) container(id string) string {
	if len(p.Containers) == 0 || slices.Contains(p.Containers, id) {
		return ""
	}
	return fmt.Sprintf("this deployment does not migrate into this container; the operator lists the allowed ones in %s", SettingContainers)
}
