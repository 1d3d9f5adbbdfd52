package request

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

var (
	containerIDPattern = regexp.MustCompile(`^b![A-Za-z0-9_-]{8,200}$`)
	blobContainerName  = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$`)
	guidPattern        = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	settingName        = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$`)
)

// sharePointInvalid are the characters SharePoint does not allow in file and
// folder names.
const sharePointInvalid = `"*:<>?/\|`

// Validate checks a request whose defaults are applied and returns an *Error
// listing every problem, or nil.
func (r Request) Validate() error {
	v := &validator{}
	switch {
	case r.V == 0:
		v.add("v", "required: the request format version, %d", Version)
	case r.V != Version:
		v.add("v", "unsupported version %d; this service reads version %d", r.V, Version)
	}
	if r.ID != "" && !ValidID(r.ID) {
		v.add("id", "must be 1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	v.source(r.Source)
	v.target(r.Target)
	v.options(r.Options)
	if len(v.errs) == 0 {
		return nil
	}
	return &Error{Fields: v.errs}
}

type validator struct{ errs []FieldError }

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) source(s Source) {
	switch s.Kind {
	case "":
		v.add("source.kind", "required: %q or %q", KindAzureBlob, KindLocalFolder)
		return
	case KindAzureBlob:
		v.azureBlob(s)
	case KindLocalFolder:
		v.localFolder(s)
	default:
		v.add("source.kind", "unknown kind; expected %q or %q", KindAzureBlob, KindLocalFolder)
		return
	}
	if s.Prefix != "" {
		switch {
		case strings.HasPrefix(s.Prefix, "/"):
			v.add("source.prefix", "must be relative to the container or folder: remove the leading '/'")
		case hasDotDot(s.Prefix):
			v.add("source.prefix", "must not contain '..' segments")
		case len(s.Prefix) > 1024:
			v.add("source.prefix", "must be at most 1024 characters")
		case !utf8.ValidString(s.Prefix) || hasControl(s.Prefix):
			v.add("source.prefix", "must be valid UTF-8 without control or bidirectional-control characters")
		}
	}
}

func (v *validator) azureBlob(s Source) {
	if s.Path != "" {
		v.add("source.path", "only for kind %q; an Azure Blob source is named by containerUrl", KindLocalFolder)
	}
	switch s.Credential {
	case CredentialSAS, CredentialManagedIdentity, CredentialConnectionString:
	default:
		v.add("source.credential", "unknown credential; expected %q, %q or %q",
			CredentialSAS, CredentialManagedIdentity, CredentialConnectionString)
	}
	if s.ClientID != "" {
		if s.Credential != CredentialManagedIdentity {
			v.add("source.clientId", "only for credential %q", CredentialManagedIdentity)
		} else if !guidPattern.MatchString(s.ClientID) {
			v.add("source.clientId", "must be the client id (a GUID) of a user-assigned managed identity")
		}
	}
	if s.Credential == CredentialConnectionString {
		switch {
		case s.ConnectionSetting == "" && s.ConnectionString == "":
			v.add("source.connectionSetting", "required with credential %q: the name of an app setting holding the storage connection string (or give connectionString inline)", CredentialConnectionString)
		case s.ConnectionSetting != "" && s.ConnectionString != "":
			v.add("source.connectionString", "give either connectionSetting or connectionString, not both")
		case s.ConnectionSetting != "" && !settingName.MatchString(s.ConnectionSetting):
			v.add("source.connectionSetting", "must be an app setting name (letters, digits, '_', '.', ':', '-')")
		case s.ConnectionString != "" && !strings.Contains(strings.ToLower(s.ConnectionString), "accountname=") &&
			!strings.Contains(strings.ToLower(s.ConnectionString), "usedevelopmentstorage=true"):
			// Never quote the value: it holds an account key.
			v.add("source.connectionString", "is not a storage connection string (expected AccountName=...;AccountKey=...)")
		}
	} else {
		if s.ConnectionSetting != "" {
			v.add("source.connectionSetting", "only for credential %q", CredentialConnectionString)
		}
		if s.ConnectionString != "" {
			v.add("source.connectionString", "only for credential %q", CredentialConnectionString)
		}
	}
	v.containerURL(s)
}

// containerURL checks the container URL without ever quoting it: it may carry
// a SAS token.
func (v *validator) containerURL(s Source) {
	const field = "source.containerUrl"
	const example = "https://<account>.blob.core.windows.net/<container>"
	if s.ContainerURL == "" {
		v.add(field, "required for kind %q: the container's URL, e.g. %s", KindAzureBlob, example)
		return
	}
	u, err := url.Parse(s.ContainerURL)
	if err != nil || u.Host == "" || u.Opaque != "" {
		v.add(field, "is not an absolute URL; expected %s", example)
		return
	}
	host := u.Hostname()
	loopback := isLoopback(host)
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback:
		// Local storage emulators serve plain HTTP on loopback only.
	default:
		v.add(field, "must use https (plain http only for a loopback storage emulator listed in SPEMIGRATE_ALLOWED_BLOB_HOSTS)")
		return
	}
	if u.User != nil {
		v.add(field, "must not contain user information")
	}
	if u.Fragment != "" {
		v.add(field, "must not contain a fragment ('#...')")
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(segs) == 1 && segs[0] == "" {
		segs = nil
	}
	// Path-style URLs (emulators, IP endpoints) put the account first.
	pathStyle := loopback || net.ParseIP(host) != nil
	want := 1
	if pathStyle {
		want = 2
	}
	switch {
	case len(segs) < want:
		v.add(field, "names no container; expected %s", example)
		return
	case len(segs) > want:
		v.add(field, "must name the container only; put the folder inside it in source.prefix")
		return
	}
	name := segs[want-1]
	if !blobContainerName.MatchString(name) {
		v.add(field, "container name must be 3-63 characters of lowercase letters, digits and single hyphens, starting and ending with a letter or digit")
	}
	hasQuery := u.RawQuery != ""
	switch s.Credential {
	case CredentialSAS:
		if !urlHasSignature(s.ContainerURL) {
			v.add(field, "credential %q needs a SAS token in the URL query (…?sv=…&sp=rl&sig=…); none found", CredentialSAS)
		}
	case CredentialManagedIdentity, CredentialConnectionString:
		if hasQuery {
			v.add(field, "has a query string but credential is %q; remove the query, or set credential to %q", s.Credential, CredentialSAS)
		}
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) localFolder(s Source) {
	if s.ContainerURL != "" {
		v.add("source.containerUrl", "only for kind %q", KindAzureBlob)
	}
	if s.Credential != "" {
		v.add("source.credential", "only for kind %q", KindAzureBlob)
	}
	if s.ClientID != "" {
		v.add("source.clientId", "only for kind %q", KindAzureBlob)
	}
	if s.ConnectionSetting != "" {
		v.add("source.connectionSetting", "only for kind %q", KindAzureBlob)
	}
	if s.ConnectionString != "" {
		v.add("source.connectionString", "only for kind %q", KindAzureBlob)
	}
	switch {
	case s.Path == "":
		v.add("source.path", "required for kind %q: an absolute directory path", KindLocalFolder)
	case !filepath.IsAbs(s.Path):
		v.add("source.path", "must be an absolute directory path")
	case hasControl(s.Path):
		v.add("source.path", "must not contain control or bidirectional-control characters")
	}
}

func (v *validator) target(t Target) {
	switch {
	case t.ContainerID == "":
		v.add("target.containerId", "required: the SharePoint Embedded container id, e.g. b!ISJs1WRro0y0…")
	case !containerIDPattern.MatchString(t.ContainerID):
		v.add("target.containerId", "is not a SharePoint Embedded container id: expected 'b!' followed by base64url characters")
	}
	if t.Folder == "" {
		return
	}
	if len(t.Folder) > 400 {
		v.add("target.folder", "must be at most 400 characters")
		return
	}
	for _, seg := range strings.Split(t.Folder, "/") {
		if msg := checkName(seg); msg != "" {
			v.add("target.folder", "folder name %q %s", seg, msg)
			return
		}
	}
}

// checkName returns why a SharePoint file or folder name is not acceptable,
// or "".
func checkName(seg string) string {
	switch {
	case seg == "":
		return "is empty (doubled '/')"
	case seg == "." || seg == "..":
		return "is not allowed"
	case strings.ContainsAny(seg, sharePointInvalid):
		return fmt.Sprintf("contains a character SharePoint does not allow (%s)", sharePointInvalid)
	case hasControl(seg) || !utf8.ValidString(seg):
		return "contains control or bidirectional-control characters, or invalid UTF-8"
	case strings.TrimSpace(seg) != seg:
		return "starts or ends with a space"
	case strings.HasSuffix(seg, "."):
		return "ends with '.'"
	}
	return ""
}

func (v *validator) options(o Options) {
	switch o.Naming.InvalidChars {
	case InvalidCharsReplace:
		r := o.Naming.Replacement
		switch {
		case utf8.RuneCountInString(r) != 1:
			v.add("options.naming.replacement", "must be exactly one character, e.g. %q", DefaultReplacement)
		case strings.ContainsAny(r, sharePointInvalid) || hasControl(r) || r == " " || r == ".":
			v.add("options.naming.replacement", "must itself be allowed in SharePoint names (not %s, a space, '.' or a control character)", sharePointInvalid)
		}
	case InvalidCharsSkip:
		if o.Naming.Replacement != "" {
			v.add("options.naming.replacement", "only used when invalidChars is %q", InvalidCharsReplace)
		}
	default:
		v.add("options.naming.invalidChars", "unknown policy; expected %q or %q", InvalidCharsReplace, InvalidCharsSkip)
	}
	switch o.Naming.Collisions {
	case CollisionsRename, CollisionsSkip:
	default:
		v.add("options.naming.collisions", "unknown policy; expected %q or %q", CollisionsRename, CollisionsSkip)
	}
	if o.Batch.MaxItems < 1 || o.Batch.MaxItems > MaxBatchItems {
		v.add("options.batch.maxItems", "must be between 1 and %d (the migration API's package item limit)", MaxBatchItems)
	}
	if o.Batch.MaxBytes < 1 || o.Batch.MaxBytes > MaxBatchBytes {
		v.add("options.batch.maxBytes", "must be between 1 and %d bytes (250 MB, the migration API's package size limit)", MaxBatchBytes)
	}
	switch o.Conflict {
	case ConflictReplace, ConflictSkip:
	default:
		v.add("options.conflict", "unknown behaviour; expected %q or %q", ConflictReplace, ConflictSkip)
	}
	keys := make([]string, 0, len(o.UserMap))
	for k := range o.UserMap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field := fmt.Sprintf("options.userMap[%q]", k)
		if strings.TrimSpace(k) == "" {
			v.add(field, "source identity must not be empty")
			continue
		}
		if !looksLikeUPN(o.UserMap[k]) {
			v.add(field, "must be a user principal name or email address, e.g. alice@contoso.com")
		}
	}
}

func looksLikeUPN(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return false
	}
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsSpace) && len(s) <= 256
}

// hasControl also counts the bidirectional controls, which are invisible
// like control characters and as misleading in a name.
func hasControl(s string) bool {
	// U+FFFD is what a broken escape (a lone surrogate) decodes to.
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || isBidiControl(r) || r == utf8.RuneError })
}

func hasDotDot(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return true
		}
	}
	return false
}
