package staging

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// MinSASValidity is how long a provisioned SAS must still be valid when a
// batch is staged or submitted: the job reads the package for up to 12 h
// (spec §4).
const MinSASValidity = 12 * time.Hour

// ErrSASExpiring means a container SAS expires too soon (or its expiry cannot
// be read): re-provision the containers and stage again.
var ErrSASExpiring = errors.New("container SAS expires too soon: re-provision the migration containers")

// ErrSASRejected means the storage service refused the SAS (HTTP 403):
// expired early, revoked, or the wrong URL. Re-provision.
var ErrSASRejected = errors.New("container SAS was rejected by the storage service: re-provision the migration containers")

// SASExpiry reads the expiry (se=) of a SAS URL.
func SASExpiry(sasURL string) (time.Time, error) {
	u, err := url.Parse(sasURL)
	if err != nil {
		return time.Time{}, errors.New("SAS URL does not parse")
	}
	se := u.Query().Get("se")
	if se == "" {
		return time.Time{}, errors.New("SAS URL has no expiry (se)")
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04Z", "2006-01-02"} {
		if t, err := time.Parse(layout, se); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("SAS expiry %q is not an ISO 8601 time", se)
}

// CheckSAS returns an error wrapping [ErrSASExpiring] unless sasURL stays
// valid for at least min after now. The error names the container (no query).
func CheckSAS(sasURL string, now time.Time, min time.Duration) error {
	exp, err := SASExpiry(sasURL)
	if err != nil {
		return fmt.Errorf("%s: %v: %w", StripQuery(sasURL), err, ErrSASExpiring)
	}
	if left := exp.Sub(now); left < min {
		return fmt.Errorf("%s: SAS expires at %s, %s from now, want at least %s: %w",
			StripQuery(sasURL), exp.Format(time.RFC3339), left.Round(time.Minute), min, ErrSASExpiring)
	}
	return nil
}

// StripQuery returns rawURL without its query string and fragment, which is
// where a SAS keeps its signature.
func StripQuery(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparsable URL>"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

var urlQuery = regexp.MustCompile(`(?i)(https?://[^\s?"'<>]*)\?[^\s"'<>]*`)

// redactText removes the query string of every URL in s.
func redactText(s string) string { return urlQuery.ReplaceAllString(s, "$1") }

// BlobError is a storage call that failed. It carries no URL query and no
// response body, so it is safe to log and to store.
type BlobError struct {
	Op         string // "put block", "commit block list", ...
	Blob       string // blob name inside its container
	StatusCode int    // 0 when no response arrived
	Code       string // the storage error code, e.g. AuthenticationFailed
	msg        string // a redacted description when there was no response
	err        error  // the cause, kept only when it carries no URL (context errors)
}

func (e *BlobError) Error() string {
	if e.StatusCode != 0 {
		s := fmt.Sprintf("%s %s: HTTP %d", e.Op, e.Blob, e.StatusCode)
		if e.Code != "" {
			s += " " + e.Code
		}
		return s
	}
	return fmt.Sprintf("%s %s: %s", e.Op, e.Blob, e.msg)
}

// Unwrap exposes context cancellation and deadline errors only.
func (e *BlobError) Unwrap() error { return e.err }

// Is reports a 403 as [ErrSASRejected].
func (e *BlobError) Is(target error) bool {
	return target == ErrSASRejected && e.StatusCode == 403
}

func blobErr(op, blob string, err error) error {
	if err == nil {
		return nil
	}
	be := &BlobError{Op: op, Blob: blob}
	var re *azcore.ResponseError
	switch {
	case errors.As(err, &re):
		be.StatusCode, be.Code = re.StatusCode, re.ErrorCode
	case errors.Is(err, context.Canceled):
		be.msg, be.err = "canceled", context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		be.msg, be.err = "deadline exceeded", context.DeadlineExceeded
	default:
		be.msg = redactText(err.Error())
	}
	return be
}
