package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const (
	testContainerID = "b!ISJs1WRro0y0EWgkUYcktDa0mE8zSlFEqFzqRn70Zwp1CEtDEBZgQICPkRbil_5Z"
	testSig         = "sEcReTsIgNaTuRe%2Bvalue%3D"
	sasURL          = "https://acct.blob.core.windows.net/source?sv=2024-08-04&sp=rl&se=2030-01-01T00%3A00%3A00Z&sig=" + testSig
)

func minimal() map[string]any {
	return map[string]any{
		"v": 1,
		"source": map[string]any{
			"kind":         "azureBlob",
			"containerUrl": sasURL,
		},
		"target": map[string]any{"containerId": testContainerID},
	}
}

// with returns minimal() with the value at a dotted path set (or deleted when
// val is deleteKey).
func with(path string, val any) []byte {
	m := minimal()
	setPath(m, path, val)
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

type deleteMarker struct{}

var deleteKey = deleteMarker{}

func setPath(m map[string]any, path string, val any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	last := parts[len(parts)-1]
	if _, del := val.(deleteMarker); del {
		delete(m, last)
		return
	}
	m[last] = val
}

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name  string
		body  []byte
		check func(t *testing.T, r Request)
	}{
		{"minimal SAS request gets every default", with("v", 1), func(t *testing.T, r Request) {
			if r.Source.Credential != CredentialSAS {
				t.Errorf("credential = %q, want sas (the URL carries sig)", r.Source.Credential)
			}
			o := r.Options
			if o.Naming.InvalidChars != InvalidCharsReplace || o.Naming.Replacement != "_" || o.Naming.Collisions != CollisionsRename {
				t.Errorf("naming defaults = %+v", o.Naming)
			}
			if o.Batch.MaxItems != 250 || o.Batch.MaxBytes != 250<<20 {
				t.Errorf("batch defaults = %+v", o.Batch)
			}
			if o.Conflict != ConflictReplace || !o.PreserveTimestamps() || !o.PreserveAuthors() || o.Versions {
				t.Errorf("option defaults = %+v", o)
			}
			if !o.IsIncremental() || o.Incremental == nil || !*o.Incremental {
				t.Errorf("incremental default = %v, want true (set explicitly)", o.Incremental)
			}
		}},
		{"managed identity when the URL has no query", with("source.containerUrl", "https://acct.blob.core.windows.net/source"), func(t *testing.T, r Request) {
			if r.Source.Credential != CredentialManagedIdentity {
				t.Errorf("credential = %q", r.Source.Credential)
			}
		}},
		{"azurite path-style URL with a connection setting", func() []byte {
			m := minimal()
			m["source"] = map[string]any{"kind": "azureBlob", "containerUrl": "http://127.0.0.1:10000/devstoreaccount1/source",
				"connectionSetting": "SPEMIGRATE_SOURCE_STORAGE", "prefix": "projects/2026/"}
			b, _ := json.Marshal(m)
			return b
		}(), func(t *testing.T, r Request) {
			if r.Source.Credential != CredentialConnectionString || r.Source.Prefix != "projects/2026/" {
				t.Errorf("source = %+v", r.Source)
			}
		}},
		{"local folder, full options", []byte(`{"v":1,"id":"nightly-2026.11.26",
			"source":{"kind":"localFolder","path":"/data/export","prefix":"a/"},
			"target":{"containerId":"` + testContainerID + `","folder":"/Imports/2026/"},
			"options":{"naming":{"invalidChars":"skip","collisions":"skip"},"batch":{"maxItems":10,"maxBytes":1048576},
			"conflict":"skip","preserve":{"timestamps":false,"authors":true},
			"userMap":{"CONTOSO\\alice":"alice@contoso.com"},"versions":true,"incremental":false}}`), func(t *testing.T, r Request) {
			if r.Options.IsIncremental() {
				t.Error("incremental: false was not kept")
			}
			if r.Target.Folder != "Imports/2026" {
				t.Errorf("folder = %q, want slashes trimmed", r.Target.Folder)
			}
			if r.Options.PreserveTimestamps() || !r.Options.PreserveAuthors() {
				t.Errorf("preserve = timestamps %v authors %v", r.Options.PreserveTimestamps(), r.Options.PreserveAuthors())
			}
			if r.Options.Naming.Replacement != "" || r.Options.Batch.MaxItems != 10 || !r.Options.Versions {
				t.Errorf("options = %+v", r.Options)
			}
			if r.Options.UserMap[`CONTOSO\alice`] != "alice@contoso.com" {
				t.Errorf("userMap = %v", r.Options.UserMap)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Decode(bytes.NewReader(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			tt.check(t, r)
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := []struct {
		name      string
		body      []byte
		field     string // JSON path the error must name ("" = the body)
		wantInMsg string // what the message must say
	}{
		{"empty body", []byte(""), "", "empty body"},
		{"bad JSON", []byte(`{"v":1,"source":`), "", "invalid JSON"},
		{"syntax error with position", []byte("{\"v\":1,\n\"source\": {kind}}"), "", "line 2"},
		{"not an object", []byte(`[1,2]`), "", "expected a JSON object, got an array"},
		{"trailing data", append(with("v", 1), []byte(`{"v":1}`)...), "", "exactly one JSON object"},
		{"missing version", with("v", deleteKey), "v", "required"},
		{"future version", with("v", 2), "v", "unsupported version 2"},
		{"version as string", with("v", "1"), "v", "expected an integer"},
		{"missing source kind", with("source.kind", deleteKey), "source.kind", `"azureBlob" or "localFolder"`},
		{"unknown source kind", with("source.kind", "s3"), "source.kind", "unknown kind"},
		{"source not an object", with("source", "https://acct.blob.core.windows.net/c"), "source", "expected an object, got a string"},
		{"missing container URL", with("source.containerUrl", deleteKey), "source.containerUrl", "required"},
		{"relative URL", with("source.containerUrl", "acct/container"), "source.containerUrl", "absolute URL"},
		{"plain http to a real account", with("source.containerUrl", "http://acct.blob.core.windows.net/c1?sig=x"), "source.containerUrl", "https"},
		{"ftp URL", with("source.containerUrl", "ftp://acct.blob.core.windows.net/c1"), "source.containerUrl", "https"},
		{"URL without container", with("source.containerUrl", "https://acct.blob.core.windows.net/"), "source.containerUrl", "names no container"},
		{"URL with a folder", with("source.containerUrl", "https://acct.blob.core.windows.net/c1/folder/x"), "source.containerUrl", "source.prefix"},
		{"invalid container name", with("source.containerUrl", "https://acct.blob.core.windows.net/My_Container?sig=x"), "source.containerUrl", "container name"},
		{"SAS credential without a token", func() []byte {
			m := minimal()
			m["source"] = map[string]any{"kind": "azureBlob", "containerUrl": "https://acct.blob.core.windows.net/source", "credential": "sas"}
			b, _ := json.Marshal(m)
			return b
		}(), "source.containerUrl", "needs a SAS token"},
		{"unknown credential", with("source.credential", "password"), "source.credential", "unknown credential"},
		{"managed identity with a query", with("source.credential", "managedIdentity"), "source.containerUrl", "remove the query"},
		{"bad client id", func() []byte {
			m := minimal()
			m["source"] = map[string]any{"kind": "azureBlob", "containerUrl": "https://acct.blob.core.windows.net/source", "clientId": "my-identity"}
			b, _ := json.Marshal(m)
			return b
		}(), "source.clientId", "GUID"},
		{"connection string credential without one", func() []byte {
			m := minimal()
			m["source"] = map[string]any{"kind": "azureBlob", "containerUrl": "https://acct.blob.core.windows.net/source", "credential": "connectionString"}
			b, _ := json.Marshal(m)
			return b
		}(), "source.connectionSetting", "required"},
		{"local folder relative path", []byte(`{"v":1,"source":{"kind":"localFolder","path":"data"},"target":{"containerId":"` + testContainerID + `"}}`), "source.path", "absolute"},
		{"local folder with a URL", []byte(`{"v":1,"source":{"kind":"localFolder","path":"/data","containerUrl":"https://a.blob.core.windows.net/c"},"target":{"containerId":"` + testContainerID + `"}}`), "source.containerUrl", "only for kind"},
		{"prefix escaping the container", with("source.prefix", "a/../../b"), "source.prefix", "'..'"},
		{"absolute prefix", with("source.prefix", "/a"), "source.prefix", "leading '/'"},
		{"missing target", with("target", deleteKey), "target.containerId", "required"},
		{"unknown container id format", with("target.containerId", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"), "target.containerId", "'b!'"},
		{"container id wrong type", with("target.containerId", 42), "target.containerId", "expected a string, got a JSON number"},
		{"target folder with invalid characters", with("target.folder", "Imports/Q1:Q2"), "target.folder", "does not allow"},
		{"target folder with a doubled slash", with("target.folder", "a//b"), "target.folder", "empty"},
		{"negative maxItems", with("options.batch.maxItems", -5), "options.batch.maxItems", "between 1 and 250"},
		{"maxItems over the API limit", with("options.batch.maxItems", 251), "options.batch.maxItems", "between 1 and 250"},
		{"negative maxBytes", with("options.batch.maxBytes", -1), "options.batch.maxBytes", "between 1 and"},
		{"fractional maxItems", with("options.batch.maxItems", 2.5), "options.batch.maxItems", "expected an integer"},
		{"unknown option", with("options.deleteSource", true), "options.deleteSource", "unknown field"},
		{"unknown top-level field", with("priority", "high"), "priority", "expected one of id, options, source, target, v"},
		{"wrong case field name", with("source.ContainerURL", "x"), "source.ContainerURL", `did you mean "containerUrl"`},
		{"unknown naming policy", with("options.naming.invalidChars", "drop"), "options.naming.invalidChars", `"replace" or "skip"`},
		{"replacement that is itself invalid", with("options.naming.replacement", "?"), "options.naming.replacement", "allowed in SharePoint names"},
		{"replacement of two characters", with("options.naming.replacement", "--"), "options.naming.replacement", "exactly one character"},
		{"unknown collision policy", with("options.naming.collisions", "overwrite"), "options.naming.collisions", `"rename" or "skip"`},
		{"unknown conflict behaviour", with("options.conflict", "merge"), "options.conflict", `"replace" or "skip"`},
		{"preserve as a string", with("options.preserve.timestamps", "yes"), "options.preserve.timestamps", "boolean"},
		{"user map value not a UPN", with("options.userMap", map[string]any{"bob": "Bob Smith"}), `options.userMap["bob"]`, "user principal name"},
		{"user map value not a string", with("options.userMap", map[string]any{"bob": 7}), `options.userMap["bob"]`, "expected a string"},
		{"versions as a number", with("options.versions", 1), "options.versions", "boolean"},
		{"incremental as a string", with("options.incremental", "yes"), "options.incremental", "boolean"},
		{"bad idempotency id", with("id", "my id/with slash"), "id", "1-64 characters"},
		{"user map too large to store", func() []byte {
			um := map[string]any{}
			for i := range 600 {
				um[fmt.Sprintf("CONTOSO\\user%04d", i)] = fmt.Sprintf("user%04d@contoso.com", i)
			}
			return with("options.userMap", um)
		}(), "", "shorten options.userMap"},
		{"oversized body", append(append([]byte(`{"v":1,"id":"`), bytes.Repeat([]byte("a"), MaxBodyBytes)...), `"}`...), "", "larger than"},
	}
	if len(tests) < 20 {
		t.Fatalf("only %d malformed cases; the issue asks for at least twenty", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(tt.body))
			if err == nil {
				t.Fatal("Decode accepted a malformed request")
			}
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("error %v is %T, want *request.Error", err, err)
			}
			if !IsInvalid(err) {
				t.Error("IsInvalid = false")
			}
			found := false
			for _, f := range re.Fields {
				if f.Field == tt.field && strings.Contains(f.Message, tt.wantInMsg) {
					found = true
				}
			}
			if !found {
				t.Errorf("error %q does not name field %q with %q", err, tt.field, tt.wantInMsg)
			}
			if strings.Contains(err.Error(), testSig) || strings.Contains(err.Error(), "sEcReT") {
				t.Errorf("error echoes the SAS signature: %q", err)
			}
			if (tt.name == "oversized body" || strings.Contains(tt.name, "too large")) && !re.TooLarge {
				t.Error("TooLarge not set for an oversized body")
			}
		})
	}
}

func TestDecodeReportsEveryProblem(t *testing.T) {
	body := []byte(`{"v":1,"source":{"kind":"azureBlob"},"target":{},"options":{"batch":{"maxItems":-1}}}`)
	_, err := Decode(bytes.NewReader(body))
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("err = %v", err)
	}
	want := map[string]bool{"source.containerUrl": false, "target.containerId": false, "options.batch.maxItems": false}
	for _, f := range re.Fields {
		if _, ok := want[f.Field]; ok {
			want[f.Field] = true
		}
	}
	for f, seen := range want {
		if !seen {
			t.Errorf("error %q does not mention %s", err, f)
		}
	}
}

func TestSecretsNeverShown(t *testing.T) {
	r, err := DecodeBytes(with("v", 1))
	if err != nil {
		t.Fatal(err)
	}
	red := r.Redacted()
	if strings.Contains(red.Source.ContainerURL, testSig) || !strings.Contains(red.Source.ContainerURL, "sig=REDACTED") {
		t.Errorf("redacted URL = %q", red.Source.ContainerURL)
	}
	if !strings.Contains(red.Source.ContainerURL, "sp=rl") {
		t.Errorf("redacted URL lost the non-secret SAS fields: %q", red.Source.ContainerURL)
	}
	if r.Source.ContainerURL != sasURL {
		t.Error("Redacted modified the original request")
	}
	out, _ := json.Marshal(red)
	if bytes.Contains(out, []byte(testSig)) {
		t.Errorf("redacted JSON holds the signature: %s", out)
	}

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("submitted", "request", r)
	if strings.Contains(logs.String(), testSig) || !strings.Contains(logs.String(), "REDACTED") {
		t.Errorf("log line = %s", logs.String())
	}

	inline := minimal()
	inline["source"] = map[string]any{"kind": "azureBlob", "containerUrl": "https://acct.blob.core.windows.net/source",
		"connectionString": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=S3cr3tKey=="}
	b, _ := json.Marshal(inline)
	r2, err := DecodeBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := r2.Redacted().Source.ConnectionString; strings.Contains(got, "S3cr3tKey") {
		t.Errorf("redacted connection string = %q", got)
	}

	// A malformed connection string must not be quoted back either.
	inline["source"].(map[string]any)["connectionString"] = "S3cr3tKey=="
	b, _ = json.Marshal(inline)
	if _, err := DecodeBytes(b); err == nil || strings.Contains(err.Error(), "S3cr3tKey") {
		t.Errorf("err = %v", err)
	}
}

func TestDigest(t *testing.T) {
	a, err := DecodeBytes(with("v", 1))
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := DecodeBytes(with("source.containerUrl", strings.Replace(sasURL, testSig, "another", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest() != rotated.Digest() {
		t.Error("a rotated SAS token changed the digest")
	}
	other, err := DecodeBytes(with("source.prefix", "other/"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest() == other.Digest() {
		t.Error("different requests share a digest")
	}
	// Defaults given explicitly are the same request.
	explicit, err := DecodeBytes(with("options.batch.maxItems", 250))
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest() != explicit.Digest() {
		t.Error("an explicit default changed the digest")
	}
}

// A decoded request re-encodes to a body that decodes to the same request:
// the redacted form is what the API returns, the full form what travels on
// the provision queue.
func TestRoundTrip(t *testing.T) {
	r, err := DecodeBytes(with("options.versions", true))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := DecodeBytes(b)
	if err != nil {
		t.Fatalf("re-decoding %s: %v", b, err)
	}
	if r.Digest() != r2.Digest() || r2.Source.ContainerURL != sasURL {
		t.Errorf("round trip changed the request: %+v", r2)
	}
}
