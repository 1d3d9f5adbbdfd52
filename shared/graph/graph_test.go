package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

const (
	testContainer = "b!ISJs1WRro0y0EWgkUYcktDa0mE8zSlFEqFzqRn70Zwp1CEtDEBZgQICPkRbil_5Z"
	testJob       = "31090ce2-3b99-fa40-7ec5-46ebeeb5900b"
	testSig       = "c2VjcmV0LXNpZ25hdHVyZQ"
)

func testInfo(expiry time.Time) ContainerInfo {
	se := expiry.UTC().Format(time.RFC3339)
	return ContainerInfo{
		DataContainerURI:     "https://acct.blob.core.windows.net/data?sv=2023-11-03&sr=c&sp=rw&se=" + se + "&spr=https&sig=" + testSig,
		MetadataContainerURI: "https://acct.blob.core.windows.net/meta?sv=2023-11-03&sr=c&sp=rw&se=" + se + "&spr=https&sig=" + testSig,
		EncryptionKey:        "q3Jm7m1m0yX1oQy9oE6l6o5bV4l0vJmZ8rL2cQe9b2Y=",
	}
}

// recorder is an httptest TLS server whose handler the test scripts and
// whose requests it records.
type recorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	req []recorded
}

type recorded struct {
	Method, Path, RawQuery, UA, Auth string
	Body                             []byte
	At                               time.Time
}

func newRecorder(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.req = append(rec.req, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.UserAgent(), r.Header.Get("Authorization"), body, time.Now()})
		n := len(rec.req)
		rec.mu.Unlock()
		h(w, r, n)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (r *recorder) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.req...)
}

func (r *recorder) client(t *testing.T, mod func(*Options)) *Client {
	t.Helper()
	opts := Options{
		BaseURL:    r.srv.URL,
		Transport:  r.srv.Client(),
		UserAgent:  UserAgent("spemigrate", "spemigrate", "1.2.3"),
		RetryDelay: time.Millisecond,
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(StaticToken("test-token"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func graphError(w http.ResponseWriter, status int, code, inner, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": code, "message": message,
		"innerError": map[string]any{"code": inner, "request-id": "req-1", "client-request-id": "creq-1"},
	}})
}

func TestProvisionSendsDecoratedUserAgentAndToken(t *testing.T) {
	info := testInfo(time.Now().Add(48 * time.Hour))
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusOK, map[string]any{
			"@odata.type":          "#microsoft.graph.sharePointMigrationContainerInfo",
			"dataContainerUri":     info.DataContainerURI,
			"metadataContainerUri": info.MetadataContainerURI,
			"encryptionKey":        info.EncryptionKey,
		})
	})
	got, err := rec.client(t, nil).ProvisionContainers(context.Background(), testContainer)
	if err != nil {
		t.Fatal(err)
	}
	if got != info {
		t.Errorf("container info = %+v, want %+v", got, info)
	}
	reqs := rec.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/v1.0/storage/fileStorage/containers/"+testContainer+"/provisionMigrationContainers" {
		t.Errorf("request = %s %s", r.Method, r.Path)
	}
	if want := "NONISV|spemigrate|spemigrate/1.2.3"; r.UA != want {
		t.Errorf("User-Agent = %q, want %q", r.UA, want)
	}
	if r.Auth != "Bearer test-token" {
		t.Errorf("Authorization = %q", r.Auth)
	}
}

func TestAPIVersionBeta(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusNoContent) })
	c := rec.client(t, func(o *Options) { o.APIVersion = "beta" })
	if err := c.DeleteJob(context.Background(), testContainer, testJob); err != nil {
		t.Fatal(err)
	}
	if p := rec.requests()[0].Path; p != "/beta/storage/fileStorage/containers/"+testContainer+"/migrationJobs/"+testJob {
		t.Errorf("path = %s", p)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{
		{BaseURL: "http://127.0.0.1:1234"}, // tokens never go over plain HTTP
		{BaseURL: "not a url"},
		{APIVersion: "v2"},
		{UserAgent: "a\r\nX-Evil: 1"},
	} {
		if _, err := New(StaticToken("t"), o); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
}

func TestCreateJobBody(t *testing.T) {
	info := testInfo(time.Now().Add(48 * time.Hour))
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusCreated, map[string]any{"id": testJob})
	})
	id, err := rec.client(t, nil).CreateJob(context.Background(), testContainer, info)
	if err != nil {
		t.Fatal(err)
	}
	if id != testJob {
		t.Errorf("job id = %q", id)
	}
	var body struct {
		ContainerInfo ContainerInfo `json:"containerInfo"`
	}
	if err := json.Unmarshal(rec.requests()[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.ContainerInfo != info {
		t.Errorf("request containerInfo = %+v", body.ContainerInfo)
	}
}

func TestErrorsAreTypedAndCarryNoBodyOrSAS(t *testing.T) {
	sas := "https://acct.blob.core.windows.net/data?sp=rw&sig=" + testSig
	cases := []struct {
		name                  string
		status                int
		code, inner           string
		want                  error
		notWant               []error
		call                  func(*Client) error
		header                map[string]string
		wantRetryAfterAtLeast time.Duration
		wantText              string
	}{
		{name: "invalidAzureResource", status: 400, code: "migrationBadRequest", inner: "invalidAzureResource", want: ErrReprovisionNeeded, notWant: []error{ErrThrottled, ErrJobNotFound}},
		{name: "invalidAzureResource top level", status: 400, code: "invalidAzureResource", want: ErrReprovisionNeeded},
		{name: "other bad request", status: 400, code: "migrationBadRequest", inner: "somethingElse", notWant: []error{ErrReprovisionNeeded}},
		{name: "job not found", status: 404, code: "migrationNotFound", inner: "jobNotFound", want: ErrJobNotFound, notWant: []error{ErrNotFound, ErrProgressExpired}},
		{name: "progress expired", status: 404, code: "migrationNotFound", inner: "jobProgressExpired", want: ErrProgressExpired, notWant: []error{ErrNotFound, ErrStaleCursor}},
		{name: "job gone, only migrationNotFound", status: 404, code: "migrationNotFound", want: ErrJobNotFound, notWant: []error{ErrNotFound, ErrProgressExpired}},
		{name: "job gone, no code", status: 404, want: ErrJobNotFound, notWant: []error{ErrNotFound, ErrProgressExpired}},
		{name: "job gone, container unknown", status: 404, code: "itemNotFound", want: ErrJobNotFound, notWant: []error{ErrNotFound}},
		{name: "stale cursor", status: 400, code: "invalidRequest", want: ErrStaleCursor, notWant: []error{ErrReprovisionNeeded, ErrJobNotFound}},
		{name: "forbidden", status: 403, code: "accessDenied", want: ErrAccessDenied, wantText: "FileStorageContainer.Selected"},
		{name: "unauthorized", status: 401, code: "InvalidAuthenticationToken", want: ErrAccessDenied, wantText: "container-type registration"},
		{name: "long throttle", status: 429, code: "activityLimitReached", inner: "RetryAfterDelay", want: ErrThrottled,
			header: map[string]string{"Retry-After": "120"}, wantRetryAfterAtLeast: 120 * time.Second},
		{name: "long 503", status: 503, code: "serviceNotAvailable", want: ErrThrottled,
			header: map[string]string{"Retry-After": "3600"}, wantRetryAfterAtLeast: time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				// The service message quotes a SAS URL: it must not leak.
				graphError(w, tc.status, tc.code, tc.inner, "The Azure resource "+sas+" is invalid. secret-body-marker")
			})
			c := rec.client(t, nil)
			_, err := c.Events(context.Background(), testContainer, testJob, "")
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v is not %v", err, tc.want)
			}
			for _, nw := range tc.notWant {
				if errors.Is(err, nw) {
					t.Errorf("error %v unexpectedly is %v", err, nw)
				}
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantText) {
				t.Errorf("error %q does not say %q", msg, tc.wantText)
			}
			if strings.Contains(msg, testSig) || strings.Contains(msg, "blob.core.windows.net") || strings.Contains(msg, `"error"`) {
				t.Errorf("error text leaks the body or a SAS: %s", msg)
			}
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("error %T is not *Error", err)
			}
			if ge.StatusCode != tc.status || ge.RequestID != "req-1" {
				t.Errorf("status %d request-id %q", ge.StatusCode, ge.RequestID)
			}
			if tc.wantRetryAfterAtLeast > 0 {
				d, ok := RetryAfter(err)
				if !ok || d < tc.wantRetryAfterAtLeast {
					t.Errorf("RetryAfter = %v, %v; want >= %v", d, ok, tc.wantRetryAfterAtLeast)
				}
				// A wait longer than MaxRetryDelay is not slept through.
				if n := len(rec.requests()); n != 1 {
					t.Errorf("%d requests: a long Retry-After was retried in-process", n)
				}
			} else if _, ok := RetryAfter(err); ok {
				t.Errorf("RetryAfter reports ok for a non-throttle error")
			}
		})
	}
}

// TestNotFoundOutsideJobs: a 404 on a call that does not address a job
// is ErrNotFound, never a lost job, and a 400 elsewhere is no stale cursor.
func TestNotFoundOutsideJobs(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == http.MethodPost {
			graphError(w, 400, "invalidRequest", "", "bad")
			return
		}
		graphError(w, 404, "itemNotFound", "", "no such drive")
	})
	c := rec.client(t, nil)
	_, err := c.Target(context.Background(), testContainer)
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrJobNotFound) {
		t.Errorf("Target 404: %v", err)
	}
	_, err = c.ProvisionContainers(context.Background(), testContainer)
	if err == nil || errors.Is(err, ErrStaleCursor) {
		t.Errorf("provision 400: %v", err)
	}
}

func TestShortRetryAfterIsHonouredInProcess(t *testing.T) {
	const wait = 30 * time.Millisecond
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			w.Header().Set("retry-after-ms", fmt.Sprint(wait.Milliseconds()))
			graphError(w, 429, "activityLimitReached", "", "slow down")
		case 2:
			w.Header().Set("retry-after-ms", fmt.Sprint(wait.Milliseconds()))
			graphError(w, 503, "serviceNotAvailable", "", "busy")
		default:
			writeJSON(w, 200, map[string]any{"value": []any{}})
		}
	})
	if _, err := rec.client(t, nil).Events(context.Background(), testContainer, testJob, ""); err != nil {
		t.Fatalf("throttling surfaced as an error: %v", err)
	}
	reqs := rec.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i := 1; i < 3; i++ {
		if gap := reqs[i].At.Sub(reqs[i-1].At); gap < wait {
			t.Errorf("retry %d came after %v, before the %v Retry-After", i, gap, wait)
		}
	}
}

func TestCreateJobIsNotRetriedOnAmbiguousFailure(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		graphError(w, 500, "generalException", "", "boom")
	})
	_, err := rec.client(t, nil).CreateJob(context.Background(), testContainer, testInfo(time.Now().Add(48*time.Hour)))
	var ge *Error
	if !errors.As(err, &ge) || ge.StatusCode != 500 {
		t.Fatalf("err = %v, want HTTP 500", err)
	}
	if n := len(rec.requests()); n != 1 {
		t.Errorf("create was sent %d times after a 500; a retry could create a second job", n)
	}
}

func TestCreateJobRetriesRefusals(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("retry-after-ms", "5")
			graphError(w, 429, "activityLimitReached", "", "slow down")
			return
		}
		writeJSON(w, 201, map[string]any{"id": testJob})
	})
	id, err := rec.client(t, nil).CreateJob(context.Background(), testContainer, testInfo(time.Now().Add(48*time.Hour)))
	if err != nil || id != testJob {
		t.Fatalf("CreateJob = %q, %v", id, err)
	}
}

func TestContainerInfoNeverPrintsSecrets(t *testing.T) {
	info := testInfo(time.Date(2026, 3, 12, 10, 15, 0, 0, time.UTC))
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("provisioned", "info", info)
	for _, s := range []string{fmt.Sprint(info), fmt.Sprintf("%v %+v %#v %s", info, info, info, info), logged.String()} {
		if strings.Contains(s, testSig) || strings.Contains(s, info.EncryptionKey) {
			t.Errorf("secret printed: %s", s)
		}
	}
	exp, err := info.Expiry()
	if err != nil || !exp.Equal(time.Date(2026, 3, 12, 10, 15, 0, 0, time.UTC)) {
		t.Errorf("Expiry = %v, %v", exp, err)
	}
	bad := info
	bad.MetadataContainerURI = "https://acct.blob.core.windows.net/meta?sp=rw&sig=x"
	if _, err := bad.Expiry(); err == nil || strings.Contains(err.Error(), "sig=") {
		t.Errorf("Expiry of a SAS without se = %v", err)
	}
}

func TestTarget(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path != "/v1.0/drives/"+testContainer+"/root" || r.URL.Query().Get("$select") != "sharepointIds,webUrl" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{
  "webUrl": "https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04/Document%20Library",
  "sharepointIds": {
    "listId": "5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10",
    "listItemUniqueId": "{0e9d8c7b-6a5f-4e3d-2c1b-a09f8e7d6c5b}",
    "siteId": "2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04",
    "siteUrl": "https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04",
    "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "webId": "b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d",
    "someFutureField": 1
  }}`)
	})
	got, err := rec.client(t, nil).Target(context.Background(), testContainer)
	if err != nil {
		t.Fatal(err)
	}
	want := Target{
		ContainerID:          testContainer,
		WebID:                "b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d",
		ListID:               "5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10",
		RootFolderID:         "0e9d8c7b-6a5f-4e3d-2c1b-a09f8e7d6c5b",
		SiteID:               "2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04",
		TenantID:             "72f988bf-86f1-41af-91ab-2d7cd011db47",
		SiteURL:              "https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04",
		WebURL:               "https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04/Document%20Library",
		ServerRelativeWebURL: "/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04",
		LibraryFolder:        "Document Library",
	}
	if got != want {
		t.Errorf("Target =\n%+v\nwant\n%+v", got, want)
	}
}

func TestTargetWithoutSharepointIDs(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, map[string]any{"webUrl": "https://onedrive.example/x"})
	})
	_, err := rec.client(t, nil).Target(context.Background(), "some-drive")
	if err == nil || !strings.Contains(err.Error(), "sharepointIds") {
		t.Errorf("err = %v, want a message about sharepointIds", err)
	}
}

func TestFolderID(t *testing.T) {
	got, err := FolderID(`"{86EC9BA4-D929-441A-87CA-F4B2164D6439},3"`)
	if err != nil || got != "86EC9BA4-D929-441A-87CA-F4B2164D6439" {
		t.Errorf("FolderID = %q, %v", got, err)
	}
	if _, err := FolderID(`"abc,1"`); err == nil {
		t.Error("FolderID accepted an eTag without a GUID")
	}
}

func TestNewCredentialNamesMissingFields(t *testing.T) {
	_, err := NewCredential(CredentialConfig{Kind: CredentialClientSecret, TenantID: "t"})
	if err == nil || !strings.Contains(err.Error(), "ClientID") || !strings.Contains(err.Error(), "ClientSecret") {
		t.Errorf("err = %v", err)
	}
	if _, err := NewCredential(CredentialConfig{Kind: "password"}); err == nil || !strings.Contains(err.Error(), "managedIdentity") {
		t.Errorf("unknown kind err = %v", err)
	}
	if c, err := NewCredential(CredentialConfig{Kind: CredentialClientSecret, TenantID: "00000000-0000-0000-0000-000000000001", ClientID: "c", ClientSecret: "s"}); err != nil || c == nil {
		t.Errorf("client secret credential: %v", err)
	}
}

func TestRetriesRunOutIntoThrottledError(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		graphError(w, 429, "activityLimitReached", "", "slow down") // no Retry-After
	})
	_, err := rec.client(t, func(o *Options) { o.MaxRetries = 2 }).ProvisionContainers(context.Background(), testContainer)
	if d, ok := RetryAfter(err); !errors.Is(err, ErrThrottled) || !ok || d != 0 {
		t.Fatalf("err = %v (retry after %v, %v)", err, d, ok)
	}
	if n := len(rec.requests()); n != 3 {
		t.Errorf("%d requests, want 1 + 2 retries", n)
	}
}

type scopeRecorder struct {
	mu     sync.Mutex
	scopes []string
}

func (s *scopeRecorder) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	s.mu.Lock()
	s.scopes = append(s.scopes, o.Scopes...)
	s.mu.Unlock()
	return azcore.AccessToken{Token: "t", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// TestUserAgentAndScopeSettings: the User-Agent's company and version and
// the token scope are settings, not constants; the scope follows BaseURL so
// a national cloud's Graph gets a token for itself.
func TestUserAgentAndScopeSettings(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusNoContent) })
	for _, tc := range []struct {
		opts      Options
		wantUA    string
		wantScope string
	}{
		{Options{}, DefaultUserAgent, DefaultScopeFor(rec.srv.URL)},
		{Options{Company: "Contoso", Version: "2.1.0"}, "NONISV|Contoso|spemigrate/2.1.0", DefaultScopeFor(rec.srv.URL)},
		{Options{UserAgent: "NONISV|X|y/1", Scopes: []string{"https://graph.microsoft.us/.default"}}, "NONISV|X|y/1", "https://graph.microsoft.us/.default"},
	} {
		cred := &scopeRecorder{}
		o := tc.opts
		o.BaseURL, o.Transport = rec.srv.URL, rec.srv.Client()
		c, err := New(cred, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteJob(context.Background(), testContainer, testJob); err != nil {
			t.Fatal(err)
		}
		reqs := rec.requests()
		if ua := reqs[len(reqs)-1].UA; ua != tc.wantUA {
			t.Errorf("%+v: User-Agent %q, want %q", tc.opts, ua, tc.wantUA)
		}
		if len(cred.scopes) != 1 || cred.scopes[0] != tc.wantScope {
			t.Errorf("%+v: scopes %v, want [%s]", tc.opts, cred.scopes, tc.wantScope)
		}
	}
	if DefaultScopeFor(DefaultBaseURL) != DefaultScope {
		t.Errorf("default scope %q", DefaultScopeFor(DefaultBaseURL))
	}
	if _, err := New(StaticToken("t"), Options{Company: "a|b"}); err == nil {
		t.Error("a company with the field separator was accepted")
	}
}

func TestCredentialCloud(t *testing.T) {
	base := CredentialConfig{Kind: CredentialClientSecret, TenantID: "00000000-0000-0000-0000-000000000001", ClientID: "c", ClientSecret: "s"}
	for _, tc := range []struct {
		cloud, authority string
		ok               bool
	}{
		{"", "", true}, {CloudUSGovernment, "", true}, {CloudChina, "", true},
		{"", "https://login.microsoftonline.us/", true},
		{"mars", "", false}, {"", "http://login.example/", false},
	} {
		cfg := base
		cfg.Cloud, cfg.AuthorityHost = tc.cloud, tc.authority
		_, err := NewCredential(cfg)
		if (err == nil) != tc.ok {
			t.Errorf("Cloud %q AuthorityHost %q: err %v, want ok=%v", tc.cloud, tc.authority, err, tc.ok)
		}
	}
	for _, c := range []string{"", CloudUSGovernment, CloudChina} {
		if u, err := CloudGraphURL(c); err != nil || !strings.HasPrefix(u, "https://") {
			t.Errorf("CloudGraphURL(%q) = %q, %v", c, u, err)
		}
	}
}
