package staging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/spepackage"
)

func TestCheckSAS(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	base := "https://acct.blob.core.windows.net/data?sv=2023-11-03&sp=rw&sig=SECRETSIG&se="
	cases := []struct {
		se string
		ok bool
	}{
		{"2026-11-27T00:00:01Z", true},
		{"2026-11-27T00:00:00Z", true}, // exactly 12 h
		{"2026-11-26T23:59:59Z", false},
		{"2026-11-26T11:00:00Z", false}, // already expired
		{"2026-11-29", true},
		{"2026-11-27T06:30Z", true},
		{"", false},
		{"tomorrow", false},
	}
	for _, c := range cases {
		err := CheckSAS(base+url.QueryEscape(c.se), now, MinSASValidity)
		if (err == nil) != c.ok {
			t.Errorf("se=%q: err = %v, want ok=%v", c.se, err, c.ok)
		}
		if err != nil {
			if !errors.Is(err, ErrSASExpiring) {
				t.Errorf("se=%q: %v does not match ErrSASExpiring", c.se, err)
			}
			if strings.Contains(err.Error(), "SECRETSIG") || strings.Contains(err.Error(), "?") {
				t.Errorf("se=%q: error leaks the query: %v", c.se, err)
			}
		}
	}
}

func TestRedaction(t *testing.T) {
	msg := `Put "https://a.blob.core.windows.net/c/b?se=x&sig=SECRET%2B": dial tcp: refused; also http://127.0.0.1:1/x?sig=S2 end`
	got := redactText(msg)
	if strings.Contains(got, "SECRET") || strings.Contains(got, "S2") || !strings.Contains(got, "https://a.blob.core.windows.net/c/b") {
		t.Errorf("redactText = %q", got)
	}
	err := blobErr("put block", "x/1.bin", fmt.Errorf("wrapped: %w", errors.New(msg)))
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("blobErr leaks: %v", err)
	}
	if err := blobErr("put block", "x", context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("cancellation lost: %v", err)
	}
	if StripQuery("https://u:p@h/c?sig=s#f") != "https://h/c" {
		t.Errorf("StripQuery = %q", StripQuery("https://u:p@h/c?sig=s#f"))
	}
	if s := fmt.Sprint(Containers{DataURL: "https://h/c?sig=S", Key: []byte("k")}); strings.Contains(s, "sig") {
		t.Errorf("Containers prints its secrets: %s", s)
	}
}

func TestMetadataIdentities(t *testing.T) {
	f := MetadataIdentities(map[string]string{"CONTOSO\\alice": "alice@contoso.com"})
	cases := []struct {
		meta         map[string]string
		author, edit string
	}{
		{map[string]string{"author": "contoso\\ALICE"}, "alice@contoso.com", "alice@contoso.com"},
		{map[string]string{"createdby": "bob@contoso.com", "lastmodifiedby": "carol@contoso.com"}, "bob@contoso.com", "carol@contoso.com"},
		{nil, "", ""},
	}
	for _, c := range cases {
		a, m := f(source.Entry{Metadata: c.meta})
		if a.Login != c.author || m.Login != c.edit {
			t.Errorf("%v: got %q/%q, want %q/%q", c.meta, a.Login, m.Login, c.author, c.edit)
		}
	}
	// An identity that is not UPN-like cannot be mapped: the package leaves
	// the author to SharePoint.
	a, _ := MetadataIdentities(nil)(source.Entry{Metadata: map[string]string{"author": "CONTOSO\\dave"}})
	rep, err := spepackage.Build(context.Background(), spepackage.Package{
		Target: testTarget, Namespace: testTarget.WebID, SourceType: spepackage.SourceAzureStorage,
		IDs: spepackage.NewMemoryIntIDs(1), Items: []spepackage.Item{{Path: "f", Author: a, Versions: []spepackage.Version{{BlobName: "b"}}}},
	}, func(string) (io.WriteCloser, error) { return discard{}, nil })
	if err != nil || rep.Items[0].Author != spepackage.AuthorDefault {
		t.Errorf("non-UPN author: %v %+v", err, rep.Items)
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) Close() error                { return nil }
