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
