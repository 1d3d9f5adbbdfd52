package source

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Guards that keep a source where its request put it. The entry points
// check hosts and folders against the deployment's policy (shared/request);
// these hold at the moment bytes are fetched, where a redirect or a symbolic
// link could otherwise lead the handler somewhere the check never saw.

// RedirectError is returned when a blob endpoint answers with a redirect to
// another scheme, host or port: following it would let a source URL reach
// services the policy refused (a request forgery through our handler).
type RedirectError struct {
	From, To string // scheme://host[:port], never a path or query
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("source: %s answered with a redirect to %s; redirects to another host are not followed", e.From, e.To)
}

// NonRetriable tells azcore's retry policy not to try again: the endpoint
// will redirect the same way.
func (e *RedirectError) NonRetriable() {}

// guardClientOptions returns a copy of o whose HTTP transport does not
// follow redirects off the original endpoint, plus a policy that refuses a
// response from another endpoint in case a custom transport followed one.
func guardClientOptions(o *container.ClientOptions) *container.ClientOptions {
	var c container.ClientOptions
	if o != nil {
		c = *o
	}
	c.Transport = sameEndpointTransport(c.Transport)
	c.PerCallPolicies = append(slices.Clip(c.PerCallPolicies), sameEndpointPolicy{})
	return &c
}

func sameEndpointTransport(t policy.Transporter) policy.Transporter {
	switch tt := t.(type) {
	case nil:
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		return &http.Client{Transport: tr, CheckRedirect: checkRedirect}
	case *http.Client:
		c := *tt
		c.CheckRedirect = checkRedirect
		return &c
	}
	// Another transporter decides redirects itself; sameEndpointPolicy
	// still refuses what it brings back from elsewhere.
	return t
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	from := via[0].URL
	if !sameEndpoint(from.Scheme, from.Host, req.URL.Scheme, req.URL.Host) {
		return &RedirectError{From: from.Scheme + "://" + from.Host, To: req.URL.Scheme + "://" + req.URL.Host}
	}
	if len(via) >= 5 {
		return &RedirectError{From: from.Scheme + "://" + from.Host, To: "the same host more than 5 times"}
	}
	return nil
}

type sameEndpointPolicy struct{}

func (sameEndpointPolicy) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err != nil || resp == nil || resp.Request == nil || resp.Request.URL == nil {
		return resp, err
	}
	from, to := req.Raw().URL, resp.Request.URL
	if !sameEndpoint(from.Scheme, from.Host, to.Scheme, to.Host) {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil, &RedirectError{From: from.Scheme + "://" + from.Host, To: to.Scheme + "://" + to.Host}
	}
	return resp, nil
}

func sameEndpoint(s1, h1, s2, h2 string) bool {
	return strings.EqualFold(s1, s2) && strings.EqualFold(h1, h2)
}

// ErrOutsideRoot is returned by Local.Open for an entry whose path, once
// symbolic links are followed, leaves the source folder.
var ErrOutsideRoot = errors.New("symbolic link leads outside the source folder; refused")

// outsideRoot reports whether the symbolic link at full (inside root) leads
// out of root. A dangling link is not "outside": it is skipped like any
// unreadable entry.
func outsideRoot(root, full string) (outside bool, ok bool) {
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return false, false
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || !filepath.IsLocal(rel) {
		return true, true
	}
	return false, true
}

// resolvedInside returns where the link at full leads, relative to root,
// or ErrOutsideRoot.
func resolvedInside(root, full string) (string, error) {
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || !filepath.IsLocal(rel) {
		return "", ErrOutsideRoot
	}
	return rel, nil
}

// openInRoot opens rel (slash-separated) under root through os.Root, which
// refuses any path that leaves root, symbolic links included, at the moment
// of opening; the file must be a regular file.
func openInRoot(root, rel string) (*os.File, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(filepath.FromSlash(rel))
	if err != nil && isEscape(err) {
		// os.Root takes no absolute link even when it stays inside; open
		// where it leads, as a path under root, still through the Root.
		inside, ierr := resolvedInside(root, filepath.Join(root, filepath.FromSlash(rel)))
		if ierr != nil {
			return nil, ierr
		}
		f, err = r.Open(inside)
	}
	if err != nil {
		if isEscape(err) {
			return nil, ErrOutsideRoot
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	return f, nil
}

// readDirInRoot lists the folder rel under root, confined like openInRoot.
func readDirInRoot(root, rel string) ([]fs.DirEntry, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	name := filepath.FromSlash(rel)
	if name == "" {
		name = "."
	}
	f, err := r.Open(name)
	if err != nil {
		if isEscape(err) {
			return nil, ErrOutsideRoot
		}
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// isEscape recognises os.Root's refusal of a path that leaves the root. The
// standard library has no exported sentinel for it.
func isEscape(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes")
}
