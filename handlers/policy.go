package handlers

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/spemigrate/spemigrate/shared/request"
)

// loadPolicy reads what requests may name (see request.Policy) from app
// settings. Each setting is optional; unset is the strict choice except for
// the container allow-list, where unset allows any container.
func loadPolicy(getenv func(string) string) (request.Policy, []error) {
	var p request.Policy
	var errs []error
	for _, root := range filepath.SplitList(getenv(request.SettingLocalRoots)) {
		root = strings.TrimSpace(root)
		switch {
		case root == "":
		case !filepath.IsAbs(root):
			errs = append(errs, fmt.Errorf("%s: %q is not an absolute folder path", request.SettingLocalRoots, root))
		case filepath.Clean(root) == filepath.VolumeName(root)+string(filepath.Separator):
			errs = append(errs, fmt.Errorf("%s: %q is the file system root; name the folders that hold content to migrate", request.SettingLocalRoots, root))
		default:
			p.LocalRoots = append(p.LocalRoots, filepath.Clean(root))
		}
	}
	for _, s := range list(getenv(request.SettingBlobSuffixes)) {
		s = strings.Trim(strings.ToLower(s), ".")
		if !strings.Contains(s, ".") || strings.ContainsAny(s, ":/*@") {
			errs = append(errs, fmt.Errorf("%s: %q is not a DNS suffix such as blob.core.usgovcloudapi.net", request.SettingBlobSuffixes, s))
			continue
		}
		p.BlobSuffixes = append(p.BlobSuffixes, s)
	}
	for _, h := range list(getenv(request.SettingBlobHosts)) {
		host := h
		if hh, port, err := net.SplitHostPort(h); err == nil {
			if port == "" {
				errs = append(errs, fmt.Errorf("%s: %q has an empty port", request.SettingBlobHosts, h))
				continue
			}
			host = hh
		}
		if host == "" || strings.ContainsAny(host, "/@?#*") {
			errs = append(errs, fmt.Errorf("%s: %q is not a host or host:port such as 127.0.0.1:10000", request.SettingBlobHosts, h))
			continue
		}
		p.BlobHosts = append(p.BlobHosts, strings.ToLower(h))
	}
	for _, c := range list(getenv(request.SettingContainers)) {
		if !strings.HasPrefix(c, "b!") {
			errs = append(errs, fmt.Errorf("%s: %q is not a SharePoint Embedded container id (b!…)", request.SettingContainers, c))
			continue
		}
		p.Containers = append(p.Containers, c)
	}
	for _, c := range list(getenv(request.SettingConnectionSettings)) {
		p.ConnectionSettings = append(p.ConnectionSettings, c)
	}
	p.OwnAccounts = ownAccounts(getenv)
	return p, errs
}

// ownAccounts are the storage accounts the app's own settings name (its
// host storage and its state): never a migration source.
func ownAccounts(getenv func(string) string) []string {
	var out []string
	for _, base := range []string{"AzureWebJobsStorage", "SPEMIGRATE_STORAGE"} {
		if a := getenv(base + "__accountName"); a != "" {
			out = append(out, a)
		}
		for _, kv := range strings.Split(getenv(base), ";") {
			if k, v, ok := strings.Cut(kv, "="); ok && strings.EqualFold(strings.TrimSpace(k), "AccountName") && v != "" {
				out = append(out, strings.TrimSpace(v))
			}
		}
	}
	return out
}

// list splits a comma-separated setting, dropping blanks.
func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
