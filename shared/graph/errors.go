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
// which matches at most one of these.
var (
	// ErrReprovisionNeeded: the service rejected the containerInfo
	// (invalidAzureResource, typically an expired or invalid SAS). Provision
	// new containers, restage the package and create a new job.
	ErrReprovisionNeeded = errors.New("graph: migration containers invalid or expired; re-provision")
	// ErrJobNotFound: the job id is unknown to the container (or no longer
	// deletable).
	ErrJobNotFound = errors.New("graph: migration job not found")
	// ErrProgressExpired: the job's progress events are past their
	// retention window (four days).
	ErrProgressExpired = errors.New("graph: migration job progress expired")
	// ErrThrottled: the service is throttling (429/503) and asked for a wait
	// longer than the client waits in-process, or retries ran out. See
	// [Error.RetryAfter].
	ErrThrottled = errors.New("graph: throttled")
	// ErrNotFound: a 404 for anything else (unknown container or item).
	ErrNotFound = errors.New("graph: not found")
	// ErrAccessDenied: 401 or 403 (token, permission or container grant).
	ErrAccessDenied = errors.New("graph: access denied")
)

// Error is a Graph error response, reduced to what is safe to log and show:
// it never carries the response body, and its message has URLs removed.
type Error struct {
	Op              string        // operation, e.g. "create migration job"
	StatusCode      int           // HTTP status
	Code            string        // error.code
	InnerCode       string        // error.innerError.code (may be empty)
	Message         string        // error.message with URLs redacted
	RequestID       string        // for support (spec §2.7)
	ClientRequestID string        // for support
	RetryAfter      time.Duration // from Retry-After on 429/503; 0 if absent
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph: %s: HTTP %d", e.Op, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.InnerCode != "" && !strings.EqualFold(e.InnerCode, e.Code) {
		b.WriteString("/" + e.InnerCode)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.RequestID != "" {
		b.WriteString(" [request-id " + e.RequestID + "]")
	}
	return b.String()
}

func (e *Error) hasCode(code string) bool {
	return strings.EqualFold(e.Code, code) || strings.EqualFold(e.InnerCode, code)
}

// Is maps the response to the package's sentinel errors. Status decides
// throttling (the 429 code strings are ambiguous, spec §2.7); codes decide
// the rest.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrThrottled:
		return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable
	case ErrReprovisionNeeded:
		return e.StatusCode == http.StatusBadRequest && e.hasCode("invalidAzureResource")
	case ErrProgressExpired:
		return e.StatusCode == http.StatusNotFound && e.hasCode("jobProgressExpired")
	case ErrJobNotFound:
		return e.StatusCode == http.StatusNotFound && e.hasCode("jobNotFound")
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound && !e.hasCode("jobNotFound") && !e.hasCode("jobProgressExpired")
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
		e.Code = env.Error.Code
		e.InnerCode = env.Error.InnerError.Code
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
