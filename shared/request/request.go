// Package request defines the migration request: the one versioned JSON shape
// accepted by every entry point (a message on the provision queue, POST
// /api/migrations, and the template of a schedule).
//
// Decode is strict: unknown fields, wrong types, trailing data and oversized
// bodies are errors, and every validation error names the JSON path of the
// field and says what is expected. Secrets a request may carry (a SAS token in
// the container URL, an inline connection string) never appear in an error
// message, in Redacted, or in a log line (Request implements slog.LogValuer).
package request

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
)

// Version is the request format version this package reads and writes.
const Version = 1

// Limits and defaults of the request format.
const (
	// MaxBodyBytes bounds a request body as read.
	MaxBodyBytes = 64 << 10
	// MaxEncodedBytes bounds the request once decoded and re-encoded with
	// its defaults: it is stored sealed in one Table Storage property
	// (at most 32 KiB after sealing and base64). A user map of a few
	// hundred entries fits.
	MaxEncodedBytes = 24000

	// MaxBatchItems and MaxBatchBytes are the SPE migration API's recommended
	// package limits (≤ 250 items or ≤ 250 MB, each version counting); they are
	// also the defaults.
	MaxBatchItems = 250
	MaxBatchBytes = 250 << 20

	// DefaultReplacement replaces characters SharePoint does not allow in names.
	DefaultReplacement = "_"
)

// Source kinds.
const (
	KindAzureBlob   = "azureBlob"
	KindLocalFolder = "localFolder"
)

// Credential modes for an Azure Blob source.
const (
	// CredentialSAS: the container URL carries a SAS token (list + read).
	CredentialSAS = "sas"
	// CredentialManagedIdentity: the Function App's identity (system-assigned,
	// or the user-assigned one named by clientId) reads the container.
	CredentialManagedIdentity = "managedIdentity"
	// CredentialConnectionString: a storage connection string, given inline
	// (connectionString) or, better, by the name of an app setting that holds
	// it (connectionSetting).
	CredentialConnectionString = "connectionString"
)

// Naming policy choices.
const (
	InvalidCharsReplace = "replace"
	InvalidCharsSkip    = "skip"
	CollisionsRename    = "rename"
	CollisionsSkip      = "skip"
)

// Conflict behaviours for files that already exist in the target.
const (
	// ConflictReplace imports over the existing file (the migration API replaces
	// a file and all its versions when it is resubmitted).
	ConflictReplace = "replace"
	// ConflictSkip leaves an existing target file alone and reports it skipped.
	ConflictSkip = "skip"
)

// Request is one migration request.
type Request struct {
	// V is the format version; it must be 1.
	V int `json:"v"`
	// ID is an optional client-chosen id that makes submission idempotent: a
	// second request with the same id starts nothing new.
	ID      string  `json:"id,omitempty"`
	Source  Source  `json:"source"`
	Target  Target  `json:"target"`
	Options Options `json:"options"`
}

// Source says where the content comes from.
type Source struct {
	Kind string `json:"kind"`

	// ContainerURL names an Azure Blob container, e.g.
	// https://account.blob.core.windows.net/container (plus a SAS query when
	// Credential is sas). For kind azureBlob only.
	ContainerURL string `json:"containerUrl,omitempty"`
	// Credential is one of the Credential* modes; when omitted it is sas if the
	// URL carries a signature, connectionString if a connection string is
	// given, managedIdentity otherwise.
	Credential string `json:"credential,omitempty"`
	// ClientID picks a user-assigned managed identity.
	ClientID string `json:"clientId,omitempty"`
	// ConnectionSetting is the name of an app setting holding a storage
	// connection string.
	ConnectionSetting string `json:"connectionSetting,omitempty"`
	// ConnectionString is an inline storage connection string (secret).
	ConnectionString string `json:"connectionString,omitempty"`

	// Path is an absolute directory on the handler's machine. For kind
	// localFolder only (small runs and tests).
	Path string `json:"path,omitempty"`

	// Prefix limits the migration to names under it, e.g. "projects/2026/".
	Prefix string `json:"prefix,omitempty"`
}

// Target says where the content goes.
type Target struct {
	// ContainerID is the SharePoint Embedded container id (also its drive id),
	// e.g. b!ISJs1WRro0y0EWgkUYcktDa0mE8zSlFEqFzqRn70Zwp1CEtDEBZgQICPkRbil_5Z.
	ContainerID string `json:"containerId"`
	// Folder is an optional destination folder inside the container,
	// slash-separated, e.g. "Imports/2026". Empty means the container's root.
	Folder string `json:"folder,omitempty"`
}

// Options tune a migration. Every field has a default.
type Options struct {
	Naming   Naming   `json:"naming"`
	Batch    Batch    `json:"batch"`
	Conflict string   `json:"conflict,omitempty"`
	Preserve Preserve `json:"preserve"`
	// UserMap maps a source identity (as found in blob metadata, e.g. an
	// author's login) to a UPN or email address in the target tenant.
	UserMap map[string]string `json:"userMap,omitempty"`
	// Versions migrates blob versions as file versions.
	Versions bool `json:"versions,omitempty"`
	// Incremental (default true) leaves out source files that are unchanged
	// since they were last imported into the same container and target
	// path (same ETag, or same size and last-modified time when the source
	// has no ETag); they are reported skipped. False imports everything.
	Incremental *bool `json:"incremental,omitempty"`
}

// IsIncremental reports whether unchanged files are left out (default true).
func (o Options) IsIncremental() bool {
	return o.Incremental == nil || *o.Incremental
}

// Naming is the policy for source names SharePoint cannot take as they are.
type Naming struct {
	// InvalidChars: replace (with Replacement) or skip the file.
	InvalidChars string `json:"invalidChars,omitempty"`
	Replacement  string `json:"replacement,omitempty"`
	// Collisions, for names that become equal in the target (SharePoint names
	// are case-insensitive, and replacement can merge names): rename with a
	// numeric suffix, or skip all but the first.
	Collisions string `json:"collisions,omitempty"`
	// WindowsSafe (default true) also renames names that start with a
	// Windows device name before an extension ("con.txt"), which Windows
	// sync clients cannot write.
	WindowsSafe *bool `json:"windowsSafe,omitempty"`
}

// IsWindowsSafe reports whether Windows device names are repaired (default true).
func (n Naming) IsWindowsSafe() bool { return n.WindowsSafe == nil || *n.WindowsSafe }

// Batch bounds one import package.
type Batch struct {
	MaxItems int   `json:"maxItems,omitempty"`
	MaxBytes int64 `json:"maxBytes,omitempty"`
}

// Preserve says which source properties are carried over. Both default to
// true; a pointer tells "false" from "not given".
type Preserve struct {
	Timestamps *bool `json:"timestamps,omitempty"`
	Authors    *bool `json:"authors,omitempty"`
}

// PreserveTimestamps reports whether source times are kept (default true).
func (o Options) PreserveTimestamps() bool {
	return o.Preserve.Timestamps == nil || *o.Preserve.Timestamps
}

// PreserveAuthors reports whether source authors are kept (default true).
func (o Options) PreserveAuthors() bool {
	return o.Preserve.Authors == nil || *o.Preserve.Authors
}

// ApplyDefaults fills every option the request left out. Decode calls it;
// callers that build a Request in code call it before Validate.
func (r *Request) ApplyDefaults() {
	s := &r.Source
	if s.Kind == KindAzureBlob && s.Credential == "" {
		switch {
		case urlHasSignature(s.ContainerURL):
			s.Credential = CredentialSAS
		case s.ConnectionSetting != "" || s.ConnectionString != "":
			s.Credential = CredentialConnectionString
		default:
			s.Credential = CredentialManagedIdentity
		}
	}
	r.Target.Folder = strings.Trim(r.Target.Folder, "/")

	o := &r.Options
	if o.Naming.InvalidChars == "" {
		o.Naming.InvalidChars = InvalidCharsReplace
	}
	if o.Naming.InvalidChars == InvalidCharsReplace && o.Naming.Replacement == "" {
		o.Naming.Replacement = DefaultReplacement
	}
	if o.Naming.Collisions == "" {
		o.Naming.Collisions = CollisionsRename
	}
	if o.Batch.MaxItems == 0 {
		o.Batch.MaxItems = MaxBatchItems
	}
	if o.Batch.MaxBytes == 0 {
		o.Batch.MaxBytes = MaxBatchBytes
	}
	if o.Conflict == "" {
		o.Conflict = ConflictReplace
	}
	t := true
	if o.Preserve.Timestamps == nil {
		o.Preserve.Timestamps = &t
	}
	if o.Preserve.Authors == nil {
		o.Preserve.Authors = &t
	}
	if o.Naming.WindowsSafe == nil {
		ws := true
		o.Naming.WindowsSafe = &ws
	}
	if o.Incremental == nil {
		i := true
		o.Incremental = &i
	}
}

// Redacted returns a copy safe to store in plain text, return from the API
// and log: the SAS signature and any inline connection string are replaced.
func (r Request) Redacted() Request {
	c := r
	c.Source.ContainerURL = redactURL(r.Source.ContainerURL)
	if c.Source.ConnectionString != "" {
		c.Source.ConnectionString = redactedMark
	}
	if r.Options.UserMap != nil {
		c.Options.UserMap = make(map[string]string, len(r.Options.UserMap))
		for k, v := range r.Options.UserMap {
			c.Options.UserMap[k] = v
		}
	}
	if r.Options.Preserve.Timestamps != nil {
		v := *r.Options.Preserve.Timestamps
		c.Options.Preserve.Timestamps = &v
	}
	if r.Options.Preserve.Authors != nil {
		v := *r.Options.Preserve.Authors
		c.Options.Preserve.Authors = &v
	}
	if r.Options.Incremental != nil {
		v := *r.Options.Incremental
		c.Options.Incremental = &v
	}
	return c
}

// Digest identifies the request's content, ignoring its secrets: a retry of a
// submission with a rotated SAS token has the same digest, so an idempotency
// check can tell "same request again" from "different request, same id".
func (r Request) Digest() string {
	red := r.Redacted()
	red.ApplyDefaults()
	b, _ := json.Marshal(red) // a Request always marshals
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// LogValue keeps secrets out of logs: only the redacted form is logged.
func (r Request) LogValue() slog.Value {
	red := r.Redacted()
	attrs := []slog.Attr{
		slog.String("id", red.ID),
		slog.String("source.kind", red.Source.Kind),
		slog.String("target.containerId", red.Target.ContainerID),
	}
	switch red.Source.Kind {
	case KindAzureBlob:
		attrs = append(attrs, slog.String("source.containerUrl", red.Source.ContainerURL),
			slog.String("source.credential", red.Source.Credential))
	case KindLocalFolder:
		attrs = append(attrs, slog.String("source.path", red.Source.Path))
	}
	if red.Source.Prefix != "" {
		attrs = append(attrs, slog.String("source.prefix", red.Source.Prefix))
	}
	return slog.GroupValue(attrs...)
}

const redactedMark = "REDACTED"

// redactURL replaces the SAS signature of a container URL. A URL that does
// not parse is replaced whole: it may still hold a secret.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return redactedMark
	}
	if u.User != nil {
		u.User = url.User(redactedMark)
	}
	if u.RawQuery == "" {
		return u.String()
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		u.RawQuery = "sig=" + redactedMark
		return u.String()
	}
	for k := range q {
		if strings.EqualFold(k, "sig") {
			q[k] = []string{redactedMark}
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func urlHasSignature(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return strings.Contains(strings.ToLower(u.RawQuery), "sig=")
	}
	for k := range q {
		if strings.EqualFold(k, "sig") {
			return true
		}
	}
	return false
}
