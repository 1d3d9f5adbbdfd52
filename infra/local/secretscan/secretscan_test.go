package secretscan

import (
	"strings"
	"testing"
)

func TestScan(t *testing.T) {
	key := "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="
	cases := []struct {
		text string
		kind string // "" = clean
	}{
		{`url=https://a.blob.core.windows.net/c?sv=1&sp=rl&sig=abcDEF%2B123`, "SAS signature"},
		{`source=https://a/c?sv=1&sig=REDACTED`, ""},
		{`err="GET https://a/c?sig=<redacted>: 403"`, ""},
		{`Authorization: Bearer eyJ0eXAiOiJKV1Qi.abc`, "bearer token"},
		{`token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig`, "JWT"},
		{`DefaultEndpointsProtocol=http;AccountName=x;AccountKey=Eby8vdM02xNOcqFl==;`, "account key"},
		{`Endpoint=sb://h;SharedAccessKeyName=R;SharedAccessKey=SAS_KEY_VALUE`, "shared access key"},
		{`{"EncryptionKey":"` + key + `"}`, "known secret"},
		{`{"SealedKey":"gcm1:AAAA","status":"completed","signature":"none"}`, ""},
	}
	for _, c := range cases {
		s := &Scanner{Secrets: []string{key, ""}}
		s.Scan("case", c.text)
		f := s.Findings()
		switch {
		case c.kind == "" && len(f) != 0:
			t.Errorf("%q: findings %v, want none", c.text, f)
		case c.kind != "" && (len(f) != 1 || !strings.HasPrefix(f[0].Kind, c.kind)):
			t.Errorf("%q: findings %v, want one %s", c.text, f, c.kind)
		}
		for _, x := range f {
			if strings.Contains(x.Excerpt, key) || strings.Contains(x.Excerpt, "abcDEF%2B123") {
				t.Errorf("finding repeats the secret: %s", x)
			}
		}
	}
}
