package handlers

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spemigrate/spemigrate/shared/request"
)

// Queue names: one per pipeline step, fixed (function.json names them too).
const (
	QueueProvision  = "provision"
	QueueStageBatch = "stage-batch"
	QueueSubmit     = "submit"
	QueuePoll       = "poll"
)

// ServiceBusConnectionName is the connection name every Service Bus binding
// uses. As the host does (spec §4.6), the handler reads either a connection
// string from this setting or an identity-based connection from settings
// with this prefix.
const ServiceBusConnectionName = "ServiceBusConnection"

// Config is everything the handler reads from app settings (environment
// variables in Azure, local.settings.json Values locally). Secrets in it are
// never logged; see LogValue.
type Config struct {
	Storage    Connection // Table Storage for state (and schedules)
	ServiceBus Connection
	Graph      GraphConfig
	// StateKey is base64 of the 32-byte key that seals SAS URLs and keys at
	// rest (SPEMIGRATE_STATE_KEY).
	StateKey string
	// TablePrefix is prepended to every table name (SPEMIGRATE_TABLE_PREFIX),
	// so deployments or tests can share a storage account.
	TablePrefix string
	// PollInterval is the wait between polls of a running Graph job
	// (SPEMIGRATE_POLL_INTERVAL, a Go duration such as 30s; zero: the
	// engine's default of 60 s). Local runs shorten it.
	PollInterval time.Duration
	// PageSize is how many source entries one plan message handles
	// (SPEMIGRATE_PAGE_SIZE); MaxAttempts bounds a batch's
	// provision→poll rounds (SPEMIGRATE_MAX_ATTEMPTS). Zero: engine defaults.
	PageSize    int
	MaxAttempts int
	// Policy is what requests may name: local source roots, blob endpoints,
	// target containers (SPEMIGRATE_LOCAL_SOURCE_ROOTS,
	// SPEMIGRATE_BLOB_ENDPOINT_SUFFIXES, SPEMIGRATE_ALLOWED_BLOB_HOSTS,
	// SPEMIGRATE_ALLOWED_CONTAINERS; see docs/security.md).
	Policy request.Policy
	// MaxJobsPerContainer caps the migration jobs in flight per target
	// container (SPEMIGRATE_MAX_JOBS_PER_CONTAINER; zero: the engine's
	// default of 20).
	MaxJobsPerContainer int
	// MaxVersions caps the versions imported per file
	// (SPEMIGRATE_MAX_VERSIONS; zero: spepackage's default of 500, the
	// newest kept and the rest reported; -1: no cap).
	MaxVersions int
	// IntIDBase is how list-item int ids are based (SPEMIGRATE_INT_ID_BASE):
	// "library" (default: above the highest id the container's library
	// holds, read through the drive's delta) or "fixed" (from FirstIntID).
	IntIDBase string
	// FirstIntID is the lowest list-item int id handed out
	// (SPEMIGRATE_FIRST_INT_ID, default 1000).
	FirstIntID int64
	// StepDeadline bounds one queue invocation (SPEMIGRATE_STEP_DEADLINE,
	// default 9m): below host.json's functionTimeout (10 min), so a step
	// that hangs ends and its message is redelivered, instead of the host
	// killing the worker mid-write.
	StepDeadline time.Duration
	// ImportLogs says when SharePoint's import logs are read
	// (SPEMIGRATE_IMPORT_LOGS: auto, always or off; default auto: when a
	// job's events do not account for its totalErrors), and ImportLogWait
	// how long after a job's end they may take to appear
	// (SPEMIGRATE_IMPORT_LOG_WAIT; zero: the engine's default of 10m).
	ImportLogs    string
	ImportLogWait time.Duration
	// InvalidPackageErrors replaces the texts of job-level fatal errors
	// that fail a batch at once instead of restaging it
	// (SPEMIGRATE_INVALID_PACKAGE_ERRORS: ";"-separated, case-insensitive
	// substrings; "none" retries every fatal error; unset: the engine's
	// defaults, pipeline.DefaultInvalidPackageErrors).
	InvalidPackageErrors []string
	// SubmitLease is how long a submit intent blocks another submit of the
	// same batch attempt, and so how long a batch waits after a crash in
	// the middle of its submit (SPEMIGRATE_SUBMIT_LEASE, at least 10s;
	// zero: the engine's default of 5 min). It must outlast one job
	// creation call with its throttling retries; the chaos suite shortens
	// it.
	SubmitLease time.Duration
	// StuckAfter and PollGrace are the drain's thresholds: how long a
	// batch may sit in planned, staged or submitting (or a running
	// migration go untouched) before the drain re-drives it
	// (SPEMIGRATE_STUCK_AFTER, at least 30s; zero: 15 min), and how late a
	// poll may be (SPEMIGRATE_POLL_GRACE, at least 10s; zero: 2 min). They
	// bound how long a lost step message stalls a batch.
	StuckAfter time.Duration
	PollGrace  time.Duration
}

// DefaultStepDeadline is StepDeadline's default.
const DefaultStepDeadline = 9 * time.Minute

// Connection is either a connection string or an identity-based endpoint.
type Connection struct {
	// ConnectionString is set for key/SAS-based connections (secret).
	ConnectionString string
	// Endpoint is the service URL (Table service URI) or, for Service Bus,
	// the fully qualified namespace, for identity-based connections.
	Endpoint string
	// ClientID selects a user-assigned managed identity; empty uses the
	// system-assigned one (or the developer's identity locally).
	ClientID string
	// Setting names where the values came from, for error messages.
	Setting string
}

// GraphConfig says how to reach Microsoft Graph.
type GraphConfig struct {
	BaseURL    string // SPEMIGRATE_GRAPH_URL, default https://graph.microsoft.com
	APIVersion string // SPEMIGRATE_GRAPH_API_VERSION, default v1.0
	// Credential kind and fields, as graph.CredentialConfig takes them
	// (SPEMIGRATE_GRAPH_CREDENTIAL, _TENANT_ID, _CLIENT_ID, _CLIENT_SECRET,
	// _CERTIFICATE_PATH, _CERTIFICATE_PASSWORD, _TOKEN).
	Credential          string
	TenantID            string
	ClientID            string
	ClientSecret        string
	CertificatePath     string
	CertificatePassword string
	StaticToken         string
	// CAFile is a PEM file of extra roots to trust (SPEMIGRATE_GRAPH_CA_FILE),
	// for a Graph endpoint with a private certificate such as a local
	// emulator. Production leaves it empty.
	CAFile string
	// Cloud picks the Entra authority (SPEMIGRATE_GRAPH_CLOUD: public,
	// usGovernment or china; default public); pair it with the cloud's
	// Graph root in SPEMIGRATE_GRAPH_URL.
	Cloud string
	// Company is the User-Agent's company part (SPEMIGRATE_USER_AGENT_COMPANY,
	// default spemigrate): NONISV|<company>|spemigrate/<version>.
	Company string
	// PermissionCheck says what a Graph token without the
	// FileStorageContainer.Selected role does at start-up
	// (SPEMIGRATE_GRAPH_PERMISSION_CHECK): PermissionCheckWarn (default)
	// logs it, PermissionCheckRequire stops the handler, PermissionCheckOff
	// skips the check.
	PermissionCheck string
}

// Values of SPEMIGRATE_GRAPH_PERMISSION_CHECK.
const (
	PermissionCheckWarn    = "warn"
	PermissionCheckRequire = "require"
	PermissionCheckOff     = "off"
)

// LoadConfig reads the configuration through getenv (os.Getenv in the
// handler, a map in tests). Errors name the setting and say what it needs.
func LoadConfig(getenv func(string) string) (Config, error) {
	var errs []error
	c := Config{
		StateKey:    getenv("SPEMIGRATE_STATE_KEY"),
		TablePrefix: getenv("SPEMIGRATE_TABLE_PREFIX"),
	}

	var err error
	c.Storage, err = storageConnection(getenv)
	errs = append(errs, err)
	c.ServiceBus, err = serviceBusConnection(getenv)
	errs = append(errs, err)

	var gerrs, terrs []error
	c.Graph, gerrs = loadGraph(getenv)
	terrs = c.loadTuning(getenv)
	errs = append(append(errs, gerrs...), terrs...)

	policy, perrs := loadPolicy(getenv)
	c.Policy = policy
	errs = append(errs, perrs...)

	switch key, err := base64.StdEncoding.DecodeString(c.StateKey); {
	case c.StateKey == "":
		errs = append(errs, errors.New("SPEMIGRATE_STATE_KEY: required: base64 of a random 32-byte key (e.g. openssl rand -base64 32); it seals SAS URLs and keys at rest"))
	case err != nil || len(key) != 32:
		errs = append(errs, errors.New("SPEMIGRATE_STATE_KEY: must be base64 of exactly 32 bytes"))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// loadGraph reads how to reach Microsoft Graph.
func loadGraph(getenv func(string) string) (GraphConfig, []error) {
	var errs []error
	g := GraphConfig{
		BaseURL:             getenv("SPEMIGRATE_GRAPH_URL"),
		APIVersion:          getenv("SPEMIGRATE_GRAPH_API_VERSION"),
		Credential:          getenv("SPEMIGRATE_GRAPH_CREDENTIAL"),
		TenantID:            getenv("SPEMIGRATE_GRAPH_TENANT_ID"),
		ClientID:            getenv("SPEMIGRATE_GRAPH_CLIENT_ID"),
		ClientSecret:        getenv("SPEMIGRATE_GRAPH_CLIENT_SECRET"),
		CertificatePath:     getenv("SPEMIGRATE_GRAPH_CERTIFICATE_PATH"),
		CertificatePassword: getenv("SPEMIGRATE_GRAPH_CERTIFICATE_PASSWORD"),
		StaticToken:         getenv("SPEMIGRATE_GRAPH_TOKEN"),
		CAFile:              getenv("SPEMIGRATE_GRAPH_CA_FILE"),
		Cloud:               getenv("SPEMIGRATE_GRAPH_CLOUD"),
		Company:             getenv("SPEMIGRATE_USER_AGENT_COMPANY"),
		PermissionCheck:     getenv("SPEMIGRATE_GRAPH_PERMISSION_CHECK"),
	}
	switch g.Cloud {
	case "", "public", "usGovernment", "china":
	default:
		errs = append(errs, fmt.Errorf("SPEMIGRATE_GRAPH_CLOUD: %q is not a cloud; use public, usGovernment or china", g.Cloud))
	}
	switch g.PermissionCheck {
	case "":
		g.PermissionCheck = PermissionCheckWarn
	case PermissionCheckWarn, PermissionCheckRequire, PermissionCheckOff:
	default:
		errs = append(errs, errors.New("SPEMIGRATE_GRAPH_PERMISSION_CHECK: must be warn (log a missing Graph permission), require (refuse to start) or off"))
	}
	if g.BaseURL == "" {
		g.BaseURL = "https://graph.microsoft.com"
	}
	if u, err := url.Parse(g.BaseURL); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, errors.New("SPEMIGRATE_GRAPH_URL: must be an https URL such as https://graph.microsoft.com"))
	}
	if g.APIVersion == "" {
		g.APIVersion = "v1.0"
	}
	if g.StaticToken != "" && g.Credential == "" {
		g.Credential = "static"
	}
	return g, errs
}

// loadTuning reads the engine's and the invocations' tuning.
func (c *Config) loadTuning(getenv func(string) string) []error {
	var errs []error
	if v := getenv("SPEMIGRATE_POLL_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			errs = append(errs, errors.New("SPEMIGRATE_POLL_INTERVAL: must be a duration of at least 1s, such as 30s or 2m"))
		}
		c.PollInterval = d
	}
	c.StepDeadline = DefaultStepDeadline
	if v := getenv("SPEMIGRATE_STEP_DEADLINE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			errs = append(errs, errors.New("SPEMIGRATE_STEP_DEADLINE: must be a duration of at least 10s and below host.json's functionTimeout, such as 9m"))
		}
		c.StepDeadline = d
	}
	for _, d := range []struct {
		name, hint string
		dst        *time.Duration
		min        time.Duration
	}{
		{"SPEMIGRATE_SUBMIT_LEASE", "at least 10s (longer than one job creation call with its retries), such as 5m", &c.SubmitLease, 10 * time.Second},
		{"SPEMIGRATE_STUCK_AFTER", "at least 30s (longer than a step normally takes), such as 15m", &c.StuckAfter, 30 * time.Second},
		{"SPEMIGRATE_POLL_GRACE", "at least 10s, such as 2m", &c.PollGrace, 10 * time.Second},
	} {
		if v := getenv(d.name); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x < d.min {
				errs = append(errs, fmt.Errorf("%s: must be a duration of %s", d.name, d.hint))
			}
			*d.dst = x
		}
	}

	for _, n := range []struct {
		name string
		dst  *int
		max  int
	}{{"SPEMIGRATE_PAGE_SIZE", &c.PageSize, 5000}, {"SPEMIGRATE_MAX_ATTEMPTS", &c.MaxAttempts, 20}, {"SPEMIGRATE_MAX_JOBS_PER_CONTAINER", &c.MaxJobsPerContainer, 1000}} {
		if v := getenv(n.name); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil || i < 1 || i > n.max {
				errs = append(errs, fmt.Errorf("%s: must be a number from 1 to %d", n.name, n.max))
			}
			*n.dst = i
		}
	}
	if v := getenv("SPEMIGRATE_MAX_VERSIONS"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < -1 || i == 0 || i > 50000 {
			errs = append(errs, errors.New("SPEMIGRATE_MAX_VERSIONS: must be a number from 1 to 50000, or -1 for no cap"))
		}
		c.MaxVersions = i
	}
	return append(errs, c.loadOutcomes(getenv)...)
}

// loadOutcomes reads how job outcomes are decided (import logs, fatal
// errors that reject the package) and where list-item ids start.
func (c *Config) loadOutcomes(getenv func(string) string) []error {
	var errs []error
	switch c.ImportLogs = getenv("SPEMIGRATE_IMPORT_LOGS"); c.ImportLogs {
	case "", "auto", "always", "off":
	default:
		errs = append(errs, errors.New("SPEMIGRATE_IMPORT_LOGS: must be auto (read a job's import log when its events do not account for its errors), always or off"))
	}
	if v := getenv("SPEMIGRATE_IMPORT_LOG_WAIT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 24*time.Hour {
			errs = append(errs, errors.New("SPEMIGRATE_IMPORT_LOG_WAIT: must be a duration from 0s to 24h, such as 10m"))
		}
		c.ImportLogWait = d
	}
	switch v := getenv("SPEMIGRATE_INVALID_PACKAGE_ERRORS"); v {
	case "":
	case "none":
		c.InvalidPackageErrors = []string{}
	default:
		for _, p := range strings.Split(v, ";") {
			if p = strings.TrimSpace(p); p != "" {
				c.InvalidPackageErrors = append(c.InvalidPackageErrors, p)
			}
		}
		if len(c.InvalidPackageErrors) == 0 {
			errs = append(errs, errors.New(`SPEMIGRATE_INVALID_PACKAGE_ERRORS: give ";"-separated error texts, or "none" to retry every fatal error`))
		}
	}
	switch v := getenv("SPEMIGRATE_INT_ID_BASE"); v {
	case "", "library", "fixed":
		c.IntIDBase = v
	default:
		errs = append(errs, fmt.Errorf("SPEMIGRATE_INT_ID_BASE %q: use library (above the library's highest list item id) or fixed (from SPEMIGRATE_FIRST_INT_ID)", v))
	}
	if v := getenv("SPEMIGRATE_FIRST_INT_ID"); v != "" {
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil || i < 1 || i > 1<<30 {
			errs = append(errs, errors.New("SPEMIGRATE_FIRST_INT_ID: must be a number from 1 to 1073741824"))
		}
		c.FirstIntID = i
	}
	return errs
}

// storageConnection follows the host's own rules for AzureWebJobsStorage
// (a connection string, or identity settings with that prefix), and lets
// SPEMIGRATE_STORAGE name a different account for state.
func storageConnection(getenv func(string) string) (Connection, error) {
	for _, name := range []string{"SPEMIGRATE_STORAGE", "AzureWebJobsStorage"} {
		if cs := getenv(name); cs != "" {
			return Connection{ConnectionString: cs, Setting: name}, nil
		}
		c := Connection{Setting: name, ClientID: getenv(name + "__clientId")}
		if u := getenv(name + "__tableServiceUri"); u != "" {
			c.Endpoint = strings.TrimRight(u, "/")
			return c, nil
		}
		if acct := getenv(name + "__accountName"); acct != "" {
			c.Endpoint = "https://" + acct + ".table.core.windows.net"
			return c, nil
		}
	}
	return Connection{}, errors.New("AzureWebJobsStorage: required: a storage connection string, or identity-based AzureWebJobsStorage__accountName (or __tableServiceUri); SPEMIGRATE_STORAGE overrides it for state")
}

func serviceBusConnection(getenv func(string) string) (Connection, error) {
	name := ServiceBusConnectionName
	if cs := getenv(name); cs != "" {
		return Connection{ConnectionString: cs, Setting: name}, nil
	}
	if ns := getenv(name + "__fullyQualifiedNamespace"); ns != "" {
		return Connection{Endpoint: ns, ClientID: getenv(name + "__clientId"), Setting: name + "__fullyQualifiedNamespace"}, nil
	}
	return Connection{}, fmt.Errorf("%s: required: a Service Bus connection string, or %s__fullyQualifiedNamespace (e.g. mybus.servicebus.windows.net) for a managed identity", name, name)
}
