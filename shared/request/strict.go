package request

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// checkRaw refuses what encoding/json would quietly accept: invalid UTF-8
// (decoded as U+FFFD, so the stored request would differ from the one sent)
// and a key given twice in one object (the last one wins, so a reviewer of
// the body and the service could read two different requests).
func checkRaw(body []byte) *Error {
	if !utf8.Valid(body) {
		off := 0
		for off < len(body) {
			r, n := utf8.DecodeRune(body[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		line, col := position(body, int64(off))
		return invalid("", "body is not valid UTF-8 (first bad byte at line %d, column %d); send the request as UTF-8 JSON", line, col)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if field, dup := duplicateKey(dec, ""); dup {
		return invalid(field, "given more than once; each field may appear once in an object")
	}
	return nil
}

// duplicateKey walks one JSON value and reports the path of the first key
// repeated within an object. Syntax errors end the walk quietly: the strict
// decode that follows reports them with their position.
func duplicateKey(dec *json.Decoder, path string) (string, bool) {
	tok, err := dec.Token()
	if err != nil {
		return "", false
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return "", false
			}
			k, _ := kt.(string)
			p := join(path, k)
			if seen[k] {
				return p, true
			}
			seen[k] = true
			if f, dup := duplicateKey(dec, p); dup {
				return f, true
			}
		}
		_, _ = dec.Token()
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if f, dup := duplicateKey(dec, fmt.Sprintf("%s[%d]", path, i)); dup {
				return f, true
			}
		}
		_, _ = dec.Token()
	}
	return "", false
}

// isBidiControl reports the invisible characters that reorder text when it
// is displayed (the "Trojan Source" set): a folder or path holding them
// reads differently in a report or a log than it is.
func isBidiControl(r rune) bool {
	switch {
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}
