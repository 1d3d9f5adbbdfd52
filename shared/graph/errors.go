package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors; test with errors.Is. Every non-2xx response is an *Error,
// which matches at most one of these, except that a lost job's 404 matches
// both [ErrJobNotFound] and, when its code says so, [ErrProgressExpired].
var (
	// ErrReprovisionNeeded: the service rejected the containerInfo
	// (invalidAzureResource, typically an expired or invalid SAS). Provision
	// new containers, restage the package and create a new job.
	ErrReprovisionNeeded = errors.New("graph: migration containers invalid or expired; re-provision")
	// ErrJobNotFound: the job is gone. Any 404 on a job or its progress
	// events matches, whatever its code (jobNotFound, jobProgressExpired,
	// only migrationNotFound, or none): the codes are paired loosely in the
	// docs and a job that cannot be read cannot be polled back to life.
	ErrJobNotFound = errors.New("graph: migration job not found")
	// ErrProgressExpired: the job's progress events are past their
	// retention window (four days). Such an error also matches
	// [ErrJobNotFound].
	ErrProgressExpired = errors.New("graph: migration job progress expired")
	// ErrStaleCursor: the service refused the progress-events cursor (a 400
	// for an invalid or stale skip token). Restart paging from "" and
	// de-duplicate the events by id.
	ErrStaleCursor = errors.New("graph: progress events cursor is invalid or stale; restart paging")
	// ErrThrottled: the service is throttling (429/503) and asked for a wait
	// longer than the client waits in-process, or retries ran out. See
	// [Error.RetryAfter].
	ErrThrottled = errors.New("graph: throttled")
	// ErrNotFound: a 404 for anything else (unknown container or item).
	ErrNotFound = errors.New("graph: not found")
	// ErrAccessDenied: 401 or 403 (token, permission or container grant).
	ErrAccessDenied = errors.New("graph: access denied")
)

// ErrorCode is a Graph error code (error.code or error.innerError.code).
// Codes are compared case-insensitively.
type ErrorCode string

// The codes the migration API documents (spec §2.7) and the generic Graph
// codes it is expected to answer with.
const (
	CodeRetryAfterDelay            ErrorCode = "RetryAfterDelay"
	CodeActivityLimitReached       ErrorCode = "activityLimitReached"
	CodeMigrationBadRequest        ErrorCode = "migrationBadRequest"
	CodeInvalidAzureResource       ErrorCode = "invalidAzureResource"
	CodeMigrationNotFound          ErrorCode = "migrationNotFound"
	CodeJobProgressExpired         ErrorCode = "jobProgressExpired"
	CodeJobNotFound                ErrorCode = "jobNotFound"
	CodeInvalidAuthenticationToken ErrorCode = "InvalidAuthenticationToken"
	CodeAccessDenied               ErrorCode = "accessDenied"
	CodeItemNotFound               ErrorCode = "itemNotFound"
	CodeInvalidRequest             ErrorCode = "invalidRequest"
	CodeServiceNotAvailable        ErrorCode = "serviceNotAvailable"
	CodeGeneralException           ErrorCode = "generalException"
)

// Op names a client operation in errors; the sentinels that depend on what
// was asked (a job's 404, a refused cursor) key on it.
type Op = string

// The client's operations, as they appear in [Error.Op].
const (
	OpProvision  Op = "provision migration containers"
	OpCreateJob  Op = "create migration job"
	OpDeleteJob  Op = "delete migration job"
	OpListEvents Op = "list progress events"
	OpTarget     Op = "resolve container library"
	OpDriveItem  Op = "look up drive item"
	OpChildren   Op = "list folder children"
	OpDelta      Op = "read drive delta"
)

// Error is a Graph error response, reduced to what is safe to log and show:
// it never carries the response body, and its message has URLs removed.
type Error struct {
	Op              string        // operation, e.g. [OpCreateJob]
	StatusCode      int           // HTTP status
	Code            ErrorCode     // error.code
	InnerCode       ErrorCode     // error.innerError.code (may be empty)
	Message         string        // error.message with URLs redacted
	RequestID       string        // for support (spec §2.7)
	ClientRequestID string        // for support
	RetryAfter      time.Duration // from Retry-After on 429/503; 0 if absent
}

// accessHint is added to 401/403 messages: the service's own message rarely
// says which of the two grants is missing.
const accessHint = "the app needs the FileStorageContainer.Selected permission (admin-consented) and a container-type registration in the consuming tenant that grants it access to this container"

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph: %s: HTTP %d", e.Op, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + string(e.Code))
	}
	if e.InnerCode != "" && !strings.EqualFold(string(e.InnerCode), string(e.Code)) {
		b.WriteString("/" + string(e.InnerCode))
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden {
		b.WriteString(" (" + accessHint + ")")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.RequestID != "" {
		b.WriteString(" [request-id " + e.RequestID + "]")
	}
	return b.String()
}

// HasCode reports whether code is the error's code or inner code.
func (e *Error) HasCode(code ErrorCode) bool {
	return strings.EqualFold(string(e.Code), string(code)) || strings.EqualFold(string(e.InnerCode), string(code))
}

// jobOp says whether the operation addresses one job, so that a 404 can
// only mean the job (or its container) is gone.
func (e *Error) jobOp() bool { return e.Op == OpDeleteJob || e.Op == OpListEvents }

// Is maps the response to the package's sentinel errors. Status decides
// throttling (the 429 code strings are ambiguous, spec §2.7); the
// operation and the codes decide the rest.
func (e *Error) Is(target error) bool {
	notFound := e.StatusCode == http.StatusNotFound
	switch target {
	case ErrThrottled:
		return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable
	case ErrReprovisionNeeded:
		return e.StatusCode == http.StatusBadRequest && e.HasCode(CodeInvalidAzureResource)
	case ErrStaleCursor:
		// The cursor is the only input of a progress-events read.
		return e.StatusCode == http.StatusBadRequest && e.Op == OpListEvents
	case ErrProgressExpired:
		return notFound && e.HasCode(CodeJobProgressExpired)
	case ErrJobNotFound:
		return notFound && (e.jobOp() || e.HasCode(CodeJobNotFound) || e.HasCode(CodeJobProgressExpired))
	case ErrNotFound:
		return notFound && !e.jobOp() && !e.HasCode(CodeJobNotFound) && !e.HasCode(CodeJobProgressExpired)
	case ErrAccessDenied:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	}
	return false
}

// RetryAfter reports how long to wait before retrying err, when err is a
// throttling error. ok is false for other errors. A throttled response
// without Retry-After yields (0, true): the caller picks its own back-off.
func RetryAfter(err error) (d time.Duration, ok bool) {
	var ge *Error
	if errors.As(err, &ge) && errors.Is(ge, ErrThrottled) {
		return ge.RetryAfter, true
	}
	return 0, false
}

// maxErrorBody bounds how much of an error body we read to find the code.
const maxErrorBody = 64 << 10

func newError(op string, resp *http.Response) *Error {
	e := &Error{
		Op:              op,
		StatusCode:      resp.StatusCode,
		RequestID:       resp.Header.Get("request-id"),
		ClientRequestID: resp.Header.Get("client-request-id"),
		RetryAfter:      retryAfter(resp.Header, time.Now()),
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var env struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				Code            string `json:"code"`
				RequestID       string `json:"request-id"`
				ClientRequestID string `json:"client-request-id"`
			} `json:"innerError"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &env) == nil {
		e.Code = ErrorCode(env.Error.Code)
		e.InnerCode = ErrorCode(env.Error.InnerError.Code)
		e.Message = redact(env.Error.Message)
		if e.RequestID == "" {
			e.RequestID = env.Error.InnerError.RequestID
		}
		if e.ClientRequestID == "" {
			e.ClientRequestID = env.Error.InnerError.ClientRequestID
		}
	}
	if e.Code == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// retryAfter reads the same headers azcore's retry policy honours, in its
// order of preference.
func retryAfter(h http.Header, now time.Time) time.Duration {
	for _, k := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if v := h.Get(k); v != "" {
			if ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && ms > 0 {
				return time.Duration(ms) * time.Millisecond
			}
		}
	}
	return parseRetryAfter(h.Get("Retry-After"), now)
}

// parseRetryAfter accepts delta-seconds (what Graph sends) and HTTP-dates.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

var urlPattern = regexp.MustCompile(`(?i)\b(?:https?|wss?)://[^\s"'<>]+`)
var sigPattern = regexp.MustCompile(`(?i)\bsig=[^&\s"'<>]+`)

// redact removes URLs (which may carry SAS tokens) and stray signatures from
// service-provided text before it reaches an error message or a log.
func redact(s string) string {
	s = urlPattern.ReplaceAllString(s, "<url>")
	s = sigPattern.ReplaceAllString(s, "sig=<redacted>")
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	return s
}

// scrubError rewrites an error's text through [redact] while keeping it
// unwrappable, for transport errors that embed request URLs.
func scrubError(err error) error {
	msg := err.Error()
	if r := redact(msg); r != msg {
		return &scrubbed{msg: r, err: err}
	}
	return err
}

type scrubbed struct {
	msg string
	err error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.err }
