// Package graph is a thin client for the Microsoft Graph SharePoint Embedded
// migration API: provisioning the temporary blob containers, creating and
// deleting migration jobs, draining their progress events, and resolving the
// SharePoint ids of a container's document library (spec §2).
//
// It is built on azcore's pipeline rather than a generated SDK so that the few
// calls we need carry exactly the behaviour the migration service asks for:
// bearer tokens from an azidentity credential, a decorated User-Agent,
// Retry-After honoured on 429/503, and errors that never echo a response body
// or a SAS URL.
//
// Long throttles are not slept through: when the service asks for a wait
// longer than [Options.MaxRetryDelay], the call returns an error matching
// [ErrThrottled] whose [Error.RetryAfter] tells the caller when to try again
// (typically by scheduling a Service Bus message).
package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// Defaults for [Options].
const (
	DefaultBaseURL    = "https://graph.microsoft.com"
	DefaultAPIVersion = "v1.0"
	DefaultScope      = "https://graph.microsoft.com/.default"
	DefaultUserAgent  = "NONISV|spemigrate|spemigrate/dev"
	// DefaultCompany and DefaultVersion fill the decorated User-Agent when
	// Options.UserAgent is empty.
	DefaultCompany = "spemigrate"
	DefaultVersion = "dev"
)

// appName is the product token of the decorated User-Agent.
const appName = "spemigrate"

// Options configure a [Client]. The zero value talks to the public Graph
// endpoint, v1.0, with the default retry behaviour.
type Options struct {
	// BaseURL is the Graph root without the API version, e.g.
	// "https://graph.microsoft.com" or a local emulator's https URL.
	BaseURL string
	// APIVersion is "v1.0" (default) or "beta".
	APIVersion string
	// Scopes requested from the credential; default BaseURL + "/.default"
	// (so a national cloud's Graph gets a token for itself), which is
	// [DefaultScope] for the default BaseURL.
	Scopes []string
	// UserAgent is sent verbatim on every request. Empty builds the
	// decorated form the migration service expects with [UserAgent] from
	// Company and Version.
	UserAgent string
	// Company is the company field of the decorated User-Agent
	// ("NONISV|<Company>|spemigrate/<Version>"); default [DefaultCompany].
	Company string
	// Version is the app version in the decorated User-Agent; default
	// [DefaultVersion].
	Version string
	// Transport sends the HTTP requests; nil uses azcore's default client.
	// Tests pass an *http.Client whose TLS config trusts a local CA.
	Transport policy.Transporter
	// MaxRetries caps retries of one call (default 5). Negative disables
	// retries.
	MaxRetries int32
	// MaxRetryDelay is the longest Retry-After (or back-off) the client
	// waits in-process (default 60s). A longer Retry-After is returned as an
	// [ErrThrottled] error instead.
	MaxRetryDelay time.Duration
	// RetryDelay is the base of the exponential back-off used when the
	// service sends no Retry-After (default 800ms).
	RetryDelay time.Duration
	// PageLimit bounds how many progress-event pages one [Client.Events]
	// call reads (default 20), so one poll does bounded work.
	PageLimit int
}

// DefaultScopeFor is the app-only scope for a Graph root such as
// "https://graph.microsoft.us": the resource's "/.default".
func DefaultScopeFor(baseURL string) string {
	return strings.TrimRight(baseURL, "/") + "/.default"
}

// UserAgent returns the traffic decoration of spec §8 for an enterprise
// (non-ISV) app: "NONISV|company|app/version".
func UserAgent(company, app, version string) string {
	return fmt.Sprintf("NONISV|%s|%s/%s", company, app, version)
}

// Client calls the Graph SPE migration API. It is safe for concurrent use.
type Client struct {
	pl          runtime.Pipeline
	root        string // BaseURL + "/" + APIVersion, no trailing slash
	pageLimit   int
	createRetry policy.RetryOptions
}

// New returns a client authenticating with cred. cred may be nil only when
// the target needs no token (never in production); see [NewCredential].
func New(cred azcore.TokenCredential, opts Options) (*Client, error) {
	base := strings.TrimRight(opts.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("graph: BaseURL %q is not an absolute URL", opts.BaseURL)
	}
	if u.Scheme != "https" {
		// The bearer-token policy refuses to send tokens over plain HTTP and
		// we never switch that safety off.
		return nil, fmt.Errorf("graph: BaseURL %q must use https", opts.BaseURL)
	}
	ver := strings.Trim(opts.APIVersion, "/")
	if ver == "" {
		ver = DefaultAPIVersion
	}
	if ver != "v1.0" && ver != "beta" {
		return nil, fmt.Errorf("graph: APIVersion %q: use v1.0 or beta", opts.APIVersion)
	}
	ua := opts.UserAgent
	if ua == "" {
		company, version := opts.Company, opts.Version
		if company == "" {
			company = DefaultCompany
		}
		if version == "" {
			version = DefaultVersion
		}
		if strings.ContainsAny(company, "|") {
			return nil, fmt.Errorf("graph: Company %q must not contain '|', the User-Agent's field separator", company)
		}
		ua = UserAgent(company, appName, version)
	}
	if strings.ContainsAny(ua, "\r\n") {
		return nil, errors.New("graph: UserAgent must be a single line")
	}
	scopes := opts.Scopes
	if len(scopes) == 0 {
		scopes = []string{DefaultScopeFor(base)}
	}
	maxRetries := opts.MaxRetries
	if maxRetries == 0 {
		maxRetries = 5
	}
	co := policy.ClientOptions{
		Transport: opts.Transport,
		Retry: policy.RetryOptions{
			MaxRetries:    maxRetries,
			MaxRetryDelay: opts.MaxRetryDelay,
			RetryDelay:    opts.RetryDelay,
		},
		// azcore's telemetry policy would prepend its own product token and
		// truncates ApplicationID to 24 characters; ours sets the header.
		Telemetry: policy.TelemetryOptions{Disabled: true},
	}
	perRetry := []policy.Policy{}
	if cred != nil {
		perRetry = append(perRetry, runtime.NewBearerTokenPolicy(cred, scopes, nil))
	}
	pl := runtime.NewPipeline("spemigrate/graph", "v1", runtime.PipelineOptions{
		PerCall:  []policy.Policy{userAgentPolicy(ua)},
		PerRetry: perRetry,
		// request-id headers are safe and useful in logs; nothing else is.
		AllowedHeaders: []string{"request-id", "client-request-id", "Retry-After"},
	}, &co)
	pageLimit := opts.PageLimit
	if pageLimit <= 0 {
		pageLimit = 20
	}
	createRetry := co.Retry
	createRetry.ShouldRetry = func(resp *http.Response, err error) bool {
		return err == nil && resp != nil &&
			(resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable)
	}
	return &Client{pl: pl, root: base + "/" + ver, pageLimit: pageLimit, createRetry: createRetry}, nil
}

type userAgentPolicy string

func (p userAgentPolicy) Do(req *policy.Request) (*http.Response, error) {
	req.Raw().Header.Set("User-Agent", string(p))
	return req.Next()
}

// containerPath returns the escaped path of a container resource.
func (c *Client) containerPath(containerID string, rest ...string) string {
	segs := []string{c.root, "storage/fileStorage/containers", url.PathEscape(containerID)}
	for _, r := range rest {
		segs = append(segs, r)
	}
	return strings.Join(segs, "/")
}

// do sends one request and decodes a 2xx JSON body into out (unless out is
// nil). Non-2xx responses become *Error. op names the operation in errors.
func (c *Client) do(ctx context.Context, op, method, rawURL string, body any, out any) error {
	req, err := runtime.NewRequest(ctx, method, rawURL)
	if err != nil {
		return fmt.Errorf("graph: %s: %w", op, err)
	}
	req.Raw().Header.Set("Accept", "application/json")
	if body != nil {
		if err := runtime.MarshalAsJSON(req, body); err != nil {
			return fmt.Errorf("graph: %s: encode request: %w", op, err)
		}
	}
	resp, err := c.pl.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("graph: %s: %w", op, ctxErr)
		}
		return fmt.Errorf("graph: %s: %w", op, scrubError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newError(op, resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	data, err := runtime.Payload(resp)
	if err != nil {
		return fmt.Errorf("graph: %s: read response: %w", op, err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("graph: %s: decode response (HTTP %d): %w", op, resp.StatusCode, scrubError(err))
	}
	return nil
}
