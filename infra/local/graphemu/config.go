// Package graphemu is a local stand-in for the Microsoft Graph SharePoint
// Embedded migration API (provisionMigrationContainers, migrationJobs,
// progressEvents) and for the few drive calls a migration client and a
// verifier need. It validates and imports packages the way the spec in
// spe-migration-api.md §9 proposes: containers are provisioned in Azurite,
// every blob is decrypted with its IV metadata, the manifests are checked
// against the constrained schemas, and imported content lands on disk so
// tests can read it back through Graph-shaped drive endpoints.
//
// The server is started in-process (see [New] and [Server.Start]); it serves
// HTTPS with a certificate generated at start, because azcore's bearer-token
// policy refuses plain HTTP.
package graphemu

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Container describes one SharePoint Embedded container (and its drive).
type Container struct {
	// ID is the fileStorageContainer id, which is also the drive id.
	ID string
	// WebID, ListID and RootFolderID are the GUIDs a package must reference.
	WebID        string
	ListID       string
	RootFolderID string
	// SiteURL is absolute, e.g. https://contoso.sharepoint.com/contentstorage/CSP_<guid>.
	SiteURL string
	// LibraryFolder is the document library's folder name ("Document Library").
	LibraryFolder string
	// TenantID and SiteID appear in sharepointIds; empty values are derived.
	TenantID string
	SiteID   string
	// Existing seeds this container, after Knobs.Existing, with more
	// library-relative paths (same form and ids), for a test that needs a
	// container already in use in its own way.
	Existing []string
}

// Storage says how the emulator reaches Azurite.
type Storage struct {
	// BlobEndpoint is the service URL including the account, e.g.
	// http://127.0.0.1:10000/devstoreaccount1.
	BlobEndpoint string
	Account      string
	Key          string
}

// Knobs hold the behaviours the spec marks [UNCERTAIN] or leaves to the
// emulator. Zero values select the documented defaults (see
// docs/graph-emulator.md).
type Knobs struct {
	// SASProtocol is the spr= value of issued SAS URLs. Default "https,http",
	// because Azurite serves plain HTTP; SharePoint issues "https".
	SASProtocol string
	// SASLifetime is how long issued SAS URLs stay valid. Default 72h.
	SASLifetime time.Duration
	// MinSASRemaining rejects job creation when less than this remains on a
	// SAS. Default 0: only an expired SAS is rejected.
	MinSASRemaining time.Duration
	// OneJobPerContainerPair rejects a second job on the same provisioned
	// containers. Default false.
	OneJobPerContainerPair bool
	// WrongKey is "sync" (default: 400 invalidAzureResource at creation) or
	// "async" (the job starts and fails with a fatal decryption error).
	WrongKey string
	// RequireSnapshots makes a content blob without a snapshot an object
	// error. Default false: a warning.
	RequireSnapshots bool
	// MissingRootObjectMap is "warning" (default) or "fatal".
	MissingRootObjectMap string
	// MissingSourceType is "fatal" (default, the rule since 2023) or "warning".
	MissingSourceType string
	// DeleteProcessing is what DELETE does to a job that is processing:
	// "cancel" (default: 204, then Cancelled, fatal Error, final Progress) or
	// "notFound" (404 jobNotFound).
	DeleteProcessing string
	// EnumCase is "camel" (default, the schema) or "pascal" (the documented
	// example) for errorLevel and objectType values.
	EnumCase string
	// PageSize is the progressEvents page size. Default 50.
	PageSize int
	// OmitNextLinkWhenExhausted drops @odata.nextLink when no further events
	// exist. Default false: the link is always present, as in the docs.
	OmitNextLinkWhenExhausted bool
	// IntIDCollision is what happens when a list item int id is taken by a
	// different item: "error" (default) or "overwrite".
	IntIDCollision string
	// ProgressEvery emits a progress event every N objects. Default 100.
	ProgressEvery int
	// ProgressInterval also emits one when this much time passed. Default 5s.
	ProgressInterval time.Duration
	// ArchiveChecksum says what ArchivedFile@Checksum hashes: "plaintext"
	// (default) or "ciphertext" (the encrypted archive as stored).
	ArchiveChecksum string
	// ContentRedirect answers /content with 302 to a pre-authenticated
	// download URL (no bearer token needed there), as Graph does. Default
	// false: the content is served directly with 200.
	ContentRedirect bool
	// StrictItemIDs makes /drives/{id}/items/{itemId} accept only the opaque
	// driveItem id, as Graph does. Default false: the item's GUID is also
	// accepted, a shortcut some verifiers use.
	StrictItemIDs bool
	// Directory lists the logins that resolve; nil means every
	// claims-encoded UPN login ("i:0#.f|membership|user@domain") resolves.
	Directory []string
	// UnresolvedLogins are logins that do not resolve even when Directory
	// would let them: an exact login, or "@domain" for a whole domain
	// (former employees, guests). The import then applies System Account
	// (or a deleted placeholder when the user has a SystemId) and warns,
	// naming the item. Default none.
	UnresolvedLogins []string

	// Paging is the progressEvents next-link style: "skiptoken" (default,
	// as documented: ?$skiptoken=<opaque>) or "skip" (?$skip=<n>), which a
	// client that rebuilds tokens from links cannot follow.
	Paging string
	// EmptyPages serves an empty page, with a next link onwards, before
	// every page that has events, as a service that pages over a filtered
	// store can. Default false.
	EmptyPages bool
	// NotFoundCodes is what a 404 for an unknown or finished job carries:
	// "paired" (default: migrationNotFound with innerError jobNotFound) or
	// "topOnly" (only migrationNotFound, no inner code).
	NotFoundCodes string
	// RequirePermission answers 403 unless the bearer token is a JWT whose
	// roles (app) or scp (delegated) claim holds
	// FileStorageContainer.Selected. Default false: any token is accepted.
	// See [Token].
	RequirePermission bool
	// RegisteredApps, when non-nil, are the app ids (the token's appid or
	// azp claim) that the container type is registered for in this
	// tenant; any other app gets 403 on the migration and drive calls.
	RegisteredApps []string
	// PhantomErrors is added to the final progress event's totalErrors
	// without a matching error event, as the service's counters sometimes
	// do (spec §3.4: the counters are not bounded by the events). Default 0.
	PhantomErrors int64
	// UnsentErrorEvents is how many object-level errors of a job are
	// counted in totalErrors and written to the import log but never sent
	// as error events, as a service whose event stream drops entries can
	// do. Default 0.
	UnsentErrorEvents int
	// LogDelay writes a job's import logs (Import-{jobId}-{n}.log, .wrn,
	// .err) this long after its final progress event instead of before it:
	// the logs are copied when the job leaves the queue. Default 0.
	LogDelay time.Duration
	// VersionMetadata says where a file version's Modified and Modified By
	// come from: "file" (default: each <File> under <Versions>) or
	// "listItem" (the list item's <Versions>; a version without a list-item
	// version gets the current list item's values, so history collapses).
	VersionMetadata string
	// DrivePageSize is the page size of children listings and root/delta
	// (a smaller $top is honoured). Default 200, Graph's children default.
	DrivePageSize int
	// Existing seeds every container with these library-relative paths
	// (a trailing "/" makes a folder), created by System Account with list
	// item ids from 1001 upwards, as a container already in use has.
	// Default none.
	Existing []string
}

// Strict returns the knobs that make the emulator as strict as the spec
// allows about what SharePoint may do (docs/graph-emulator.md lists them).
// A client that passes against it copes with a container in use, a
// directory with leavers, every paging style, loosely paired error codes
// and the SPO rules the docs leave open.
func Strict() Knobs {
	return Knobs{
		SASProtocol:            "https,http", // Azurite serves plain HTTP
		MinSASRemaining:        12 * time.Hour,
		OneJobPerContainerPair: true,
		WrongKey:               "async",
		RequireSnapshots:       true,
		MissingRootObjectMap:   "fatal",
		MissingSourceType:      "fatal",
		DeleteProcessing:       "notFound",
		EnumCase:               "pascal",
		PageSize:               7,
		IntIDCollision:         "error",
		ContentRedirect:        true,
		StrictItemIDs:          true,
		UnresolvedLogins:       []string{"@former.contoso.com"},
		Paging:                 "skip",
		EmptyPages:             true,
		NotFoundCodes:          "topOnly",
		RequirePermission:      true,
		PhantomErrors:          1,
		UnsentErrorEvents:      1,
		LogDelay:               2 * time.Second,
		VersionMetadata:        "listItem",
		DrivePageSize:          3,
		Existing:               []string{"Shared/", "Shared/welcome.txt", "Archive/"},
	}
}

// JobFaults are faults applied to jobs when they run.
type JobFaults struct {
	// QueueDelay holds a job in the queue this long before it starts (a
	// slow queue). Also the time during which DELETE sees it as queued.
	QueueDelay time.Duration `json:"queueDelay,omitempty"`
	// Postpone emits this many Postponed events before the job starts, each
	// followed by a wait of PostponeDelay.
	Postpone      int           `json:"postpone,omitempty"`
	PostponeDelay time.Duration `json:"postponeDelay,omitempty"`
	// Restart makes the job restart once after it started: a second Start
	// with isRestarted true and totalRetryCount 1.
	Restart bool `json:"restart,omitempty"`
	// Fatal ends the job with a job-level fatal error carrying this message,
	// before any object is imported.
	Fatal string `json:"fatal,omitempty"`
	// ProcessingDelay holds the job in the processing state this long
	// before it imports anything (lets tests delete a processing job).
	ProcessingDelay time.Duration `json:"processingDelay,omitempty"`
	// FailFiles are file names (case-insensitive) whose import ends with an
	// object-level error, as a file SharePoint refuses does.
	FailFiles []string `json:"failFiles,omitempty"`
}

// Config configures a [Server].
type Config struct {
	// Containers are the SPE containers the emulator knows. At least one.
	Containers []Container
	Storage    Storage
	// DataDir holds imported content. Required.
	DataDir string
	// EventRetention is how long progress events stay readable after a job
	// ends. Default 4 days.
	EventRetention time.Duration
	// Workers is the number of importer goroutines. Default 2.
	Workers int
	// Faults are HTTP faults active from the start.
	Faults []FaultRule
	// JobFaults apply to every job; one-shot job faults can be added on the
	// admin endpoint.
	JobFaults JobFaults
	// FaultsFile is a JSON file {"rules": [FaultRule…], "jobFaults": JobFaults}
	// read at New; its rules are added to Faults and its jobFaults, when
	// given, replace JobFaults.
	FaultsFile string
	Knobs      Knobs
	// Now returns the current time; nil means time.Now. Tests use it to
	// move past SAS expiry and event retention.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	k := &c.Knobs
	if k.SASProtocol == "" {
		k.SASProtocol = "https,http"
	}
	if k.SASLifetime == 0 {
		k.SASLifetime = 72 * time.Hour
	}
	if k.WrongKey == "" {
		k.WrongKey = "sync"
	}
	if k.MissingRootObjectMap == "" {
		k.MissingRootObjectMap = "warning"
	}
	if k.MissingSourceType == "" {
		k.MissingSourceType = "fatal"
	}
	if k.DeleteProcessing == "" {
		k.DeleteProcessing = "cancel"
	}
	if k.EnumCase == "" {
		k.EnumCase = "camel"
	}
	if k.PageSize <= 0 {
		k.PageSize = 50
	}
	if k.IntIDCollision == "" {
		k.IntIDCollision = "error"
	}
	if k.Paging == "" {
		k.Paging = "skiptoken"
	}
	if k.NotFoundCodes == "" {
		k.NotFoundCodes = "paired"
	}
	if k.VersionMetadata == "" {
		k.VersionMetadata = "file"
	}
	if k.ArchiveChecksum == "" {
		k.ArchiveChecksum = "plaintext"
	}
	if k.DrivePageSize <= 0 {
		k.DrivePageSize = 200
	}
	if k.ProgressEvery <= 0 {
		k.ProgressEvery = 100
	}
	if k.ProgressInterval <= 0 {
		k.ProgressInterval = 5 * time.Second
	}
	if c.EventRetention == 0 {
		c.EventRetention = 4 * 24 * time.Hour
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	for i := range c.Containers {
		ct := &c.Containers[i]
		if ct.LibraryFolder == "" {
			ct.LibraryFolder = "Document Library"
		}
		if ct.TenantID == "" {
			ct.TenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		}
		if ct.SiteID == "" {
			ct.SiteID = siteIDFromURL(ct.SiteURL)
		}
	}
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Containers) == 0 {
		errs = append(errs, errors.New("Containers: configure at least one SPE container"))
	}
	for i, ct := range c.Containers {
		for _, f := range []struct{ name, v string }{
			{"ID", ct.ID}, {"WebID", ct.WebID}, {"ListID", ct.ListID},
			{"RootFolderID", ct.RootFolderID}, {"SiteURL", ct.SiteURL},
		} {
			if f.v == "" {
				errs = append(errs, fmt.Errorf("Containers[%d].%s is empty: set it", i, f.name))
			}
		}
		if ct.SiteURL != "" && !strings.HasPrefix(ct.SiteURL, "https://") {
			errs = append(errs, fmt.Errorf("Containers[%d].SiteURL %q: use an absolute https URL", i, ct.SiteURL))
		}
	}
	if c.Storage.BlobEndpoint == "" || c.Storage.Account == "" || c.Storage.Key == "" {
		errs = append(errs, errors.New("Storage: BlobEndpoint, Account and Key are required (the emulator provisions containers in Azurite)"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("DataDir is empty: imported content is stored on disk there"))
	}
	k := c.Knobs
	oneOf := func(name, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		errs = append(errs, fmt.Errorf("Knobs.%s %q: use one of %s", name, v, strings.Join(allowed, ", ")))
	}
	oneOf("WrongKey", k.WrongKey, "sync", "async")
	oneOf("MissingRootObjectMap", k.MissingRootObjectMap, "warning", "fatal")
	oneOf("MissingSourceType", k.MissingSourceType, "warning", "fatal")
	oneOf("DeleteProcessing", k.DeleteProcessing, "cancel", "notFound")
	oneOf("EnumCase", k.EnumCase, "camel", "pascal")
	oneOf("IntIDCollision", k.IntIDCollision, "error", "overwrite")
	oneOf("ArchiveChecksum", k.ArchiveChecksum, "plaintext", "ciphertext")
	oneOf("Paging", k.Paging, "skiptoken", "skip")
	oneOf("NotFoundCodes", k.NotFoundCodes, "paired", "topOnly")
	oneOf("VersionMetadata", k.VersionMetadata, "file", "listItem")
	var existing []string
	existing = append(existing, k.Existing...)
	for _, ct := range c.Containers {
		existing = append(existing, ct.Existing...)
	}
	for _, p := range existing {
		if strings.Trim(p, "/") == "" || strings.Contains(p, "//") || strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("Knobs.Existing %q: use a library-relative path such as \"Shared/\" or \"Shared/a.txt\"", p))
		}
	}
	return errors.Join(errs...)
}

// siteIDFromURL takes the GUID of a CSP_<guid> site URL, if there is one.
func siteIDFromURL(u string) string {
	if i := strings.LastIndex(u, "CSP_"); i >= 0 {
		return strings.Trim(u[i+4:], "/")
	}
	return "00000000-0000-0000-0000-000000000000"
}

// DefaultContainer is the SPE container of the spec's worked example (§6.11);
// the stack launcher configures it.
func DefaultContainer() Container {
	return Container{
		ID:            "b!ISJs1WRro0y0EWgkUYcktDa0mE8zSlFEqFzqRn70Zwp1CEtDEBZgQICPkRbil_5Z",
		WebID:         "b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d",
		ListID:        "5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10",
		RootFolderID:  "0e9d8c7b-6a5f-4e3d-2c1b-a09f8e7d6c5b",
		SiteURL:       "https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04",
		LibraryFolder: "Document Library",
	}
}
