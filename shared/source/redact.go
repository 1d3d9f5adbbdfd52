package source

import (
	"regexp"
)

// urlQuery matches the query part of any http(s) URL inside a text.
var urlQuery = regexp.MustCompile(`(https?://[^\s?"'<>]*)\?[^\s"'<>]*`)

// sigParam catches a signature that appears outside a full URL.
var sigParam = regexp.MustCompile(`(?i)\bsig=[^&\s"'<>]*`)

// Redact removes query strings (where SAS tokens live) from every URL in s.
func Redact(s string) string {
	s = urlQuery.ReplaceAllString(s, "$1?REDACTED")
	return sigParam.ReplaceAllString(s, "sig=REDACTED")
}

// RedactError returns err with the same chain (errors.Is/As still see the SDK's
// error) but a message without SAS tokens.
func RedactError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if r := Redact(msg); r != msg {
		return &redactedError{msg: r, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
