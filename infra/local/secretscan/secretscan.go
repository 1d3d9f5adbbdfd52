// Package secretscan searches text a run produced (logs, API responses,
// reports, stored table rows) for credentials that must never appear there:
// SAS signatures, account and Service Bus keys, bearer tokens and JWTs, and
// any secret a test knows by value (an import package's encryption key, the
// state key). Integration tests and the chaos suite share it so that every
// run is held to the same rules.
package secretscan

import (
	"fmt"
	"regexp"
	"strings"
)

// redactions are the placeholders the code writes where a SAS signature was
// (shared/request, shared/source, shared/graph); "sig=" followed by one of
// them is not a leak.
var redactions = []string{"REDACTED", "<redacted>", "%3Credacted%3E"}

var patterns = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"SAS signature", regexp.MustCompile(`(?i)\bsig=([^&\s"'<>\\]+|<redacted>)`)},
	{"bearer token", regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}`)},
	{"JWT", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.`)},
	{"account key", regexp.MustCompile(`(?i)\bAccountKey=[^;\s"']{8,}`)},
	{"shared access key", regexp.MustCompile(`(?i)\bSharedAccessKey=[^;\s"']{4,}`)},
}

// Finding is one leak: what kind, where (the source's name) and a short
// excerpt with the secret itself masked.
type Finding struct {
	Kind    string
	Source  string
	Excerpt string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s in %s: …%s…", f.Kind, f.Source, f.Excerpt)
}

// Scanner collects named texts and searches them.
type Scanner struct {
	// Secrets are values that must not appear anywhere (keys, tokens),
	// matched exactly; empty strings are ignored.
	Secrets  []string
	findings []Finding
	scanned  int64
}

// Scan searches one text; source names it in findings ("handler log",
// "table Batches", "GET /api/migrations/x").
func (s *Scanner) Scan(source, text string) {
	s.scanned += int64(len(text))
	for _, p := range patterns {
		for _, loc := range p.re.FindAllStringIndex(text, -1) {
			m := text[loc[0]:loc[1]]
			if p.kind == "SAS signature" && redacted(m) {
				continue
			}
			s.add(p.kind, source, text, loc[0], loc[1])
		}
	}
	for _, sec := range s.Secrets {
		if len(sec) < 4 {
			continue
		}
		if i := strings.Index(text, sec); i >= 0 {
			s.add(fmt.Sprintf("known secret (%d chars)", len(sec)), source, text, i, i+len(sec))
		}
	}
}

func redacted(m string) bool {
	_, v, _ := strings.Cut(m, "=")
	for _, r := range redactions {
		if strings.EqualFold(v, r) || strings.HasPrefix(v, r) {
			return true
		}
	}
	return false
}

func (s *Scanner) add(kind, source, text string, i, j int) {
	// Mask the match so a report of a leak does not repeat it.
	keep := min(j-i, 6)
	excerpt := text[max(0, i-60):i] + text[i:i+keep] + "***" + text[j:min(len(text), j+20)]
	s.findings = append(s.findings, Finding{Kind: kind, Source: source, Excerpt: excerpt})
}

// Findings returns every leak found so far.
func (s *Scanner) Findings() []Finding { return s.findings }

// Scanned is the number of bytes searched.
func (s *Scanner) Scanned() int64 { return s.scanned }
