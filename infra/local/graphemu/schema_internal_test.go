package graphemu

import (
	"strings"
	"testing"
	"time"
)

func TestReadDocAcceptsUTF8BOM(t *testing.T) {
	doc := "\ufeff<?xml version=\"1.0\" encoding=\"utf-8\"?><Requirements xmlns=\"urn:deployment-requirements-schema\" />"
	if _, err := readDoc(strings.NewReader(doc), requirementsSchema); err != nil {
		t.Fatal(err)
	}
}

func TestParseDateTime(t *testing.T) {
	good := map[string]time.Time{
		"2021-11-08T03:57:05":       time.Date(2021, 11, 8, 3, 57, 5, 0, time.UTC),
		"2021-11-08T03:57:05Z":      time.Date(2021, 11, 8, 3, 57, 5, 0, time.UTC),
		"2021-11-08T05:57:05+02:00": time.Date(2021, 11, 8, 3, 57, 5, 0, time.UTC),
		"2021-11-08T03:57:05.250":   time.Date(2021, 11, 8, 3, 57, 5, 250e6, time.UTC),
		"2021-11-08T03:57:05.250Z":  time.Date(2021, 11, 8, 3, 57, 5, 250e6, time.UTC),
		" 2021-11-08T03:57:05Z ":    time.Date(2021, 11, 8, 3, 57, 5, 0, time.UTC),
	}
	for in, want := range good {
		got, err := parseDateTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseDateTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"2021-11-08 03:57:05", "2021-13-08T00:00:00", "08/11/2021", "2021-11-08", "2021-11-08T25:00:00Z", ""} {
		if _, err := parseDateTime(in); err == nil {
			t.Errorf("parseDateTime(%q) accepted", in)
		}
	}
}

func TestURLCanonicalisation(t *testing.T) {
	im := &importer{d: &drive{c: Container{SiteURL: "https://contoso.sharepoint.com/contentstorage/CSP_abc"}}}
	want := "Document Library/A/100% done.txt"
	for _, raw := range []string{
		"Document Library/A/100% done.txt",
		"/contentstorage/CSP_abc/Document Library/A/100% done.txt",
		"https://contoso.sharepoint.com/contentstorage/CSP_abc/Document Library/A/100% done.txt",
		"https://contoso.sharepoint.com/contentstorage/CSP_abc/Document%20Library/A/100%25%20done.txt",
		"document library/a/100% DONE.txt/",
	} {
		if !im.urlMatches(raw, want) {
			t.Errorf("%q does not match %q", raw, want)
		}
	}
	for _, raw := range []string{"Shared Documents/A/100% done.txt", "/contentstorage/CSP_abcd/Document Library/A/100% done.txt"} {
		if im.urlMatches(raw, want) {
			t.Errorf("%q matches %q", raw, want)
		}
	}
	for raw, ok := range map[string]bool{
		"/contentstorage/CSP_abc": true, "/contentstorage/csp_abc/": true,
		"https://contoso.sharepoint.com/contentstorage/CSP_abc": true,
		"/": false, "https://contoso.sharepoint.com": false, "/sites/x": false,
	} {
		if im.isWebURL(raw) != ok {
			t.Errorf("isWebURL(%q) = %v", raw, !ok)
		}
	}
}
