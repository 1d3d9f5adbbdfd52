package request

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The bad-input corpus: requests a hostile or careless caller sends. Each
// must be refused by decoding or by the deployment's policy with an error
// naming the field and the rule, never quoting a secret; the handful marked
// ok are the neighbours that must still pass, so the rules are not simply
// refusing everything.

// body builds a request around a raw JSON source object and raw extra
// members (each a `"key": value` fragment), so a case can hold bytes that
// encoding/json would never produce.
func body(src string, extra ...string) []byte {
	parts := append([]string{`"v":1`, `"source":` + src, `"target":{"containerId":"` + testContainerID + `"}`}, extra...)
	return []byte("{" + strings.Join(parts, ",") + "}")
}

func blobSrc(u string) string { return `{"kind":"azureBlob","containerUrl":"` + u + `"}` }

func localSrc(p string) string { return `{"kind":"localFolder","path":"` + p + `"}` }

type corpusCase struct {
	name  string
	body  []byte
	field string // "" with ok: accepted
	says  string // the message must contain this
	ok    bool
	// forbidden: the refusal is a 403 (target container outside the list)
	forbidden bool
}

func TestBadInputCorpus(t *testing.T) {
	base := t.TempDir()
	allowed := filepath.Join(base, "allowed")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(allowed, "data", "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, to := range map[string]string{
		filepath.Join(allowed, "etc-link"):        "/etc",
		filepath.Join(allowed, "data", "out"):     outside,
		filepath.Join(allowed, "data", "in-tree"): filepath.Join(allowed, "data", "sub"),
	} {
		if err := os.Symlink(to, link); err != nil {
			t.Fatal(err)
		}
	}
	pol := Policy{LocalRoots: []string{allowed}, BlobHosts: []string{"127.0.0.1:10000"}}
	const sas = "?sv=2024-08-04&sp=rl&sig=" + testSig
	otherContainer := "b!b3RoZXItY29udGFpbmVyLWlkLTAwMDAwMDAw"

	cases := []corpusCase{
		// Shape and encoding tricks.
		{name: "duplicate top-level key", body: []byte(`{"v":1,"v":1,"source":` + blobSrc("https://acct.blob.core.windows.net/src"+sas) + `,"target":{"containerId":"` + testContainerID + `"}}`), field: "v", says: "more than once"},
		{name: "duplicate source kind", body: body(`{"kind":"azureBlob","kind":"localFolder","path":"/etc","containerUrl":"https://acct.blob.core.windows.net/src` + sas + `"}`), field: "source.kind", says: "more than once"},
		{name: "duplicate container URL smuggling a second host", body: body(`{"kind":"azureBlob","containerUrl":"https://acct.blob.core.windows.net/src` + sas + `","containerUrl":"http://127.0.0.1:9000/a/src` + sas + `"}`), field: "source.containerUrl", says: "more than once"},
		{name: "duplicate target", body: body(blobSrc("https://acct.blob.core.windows.net/src"+sas), `"target":{"containerId":"`+otherContainer+`"}`), field: "target", says: "more than once"},
		{name: "duplicate user map entry", body: body(blobSrc("https://acct.blob.core.windows.net/src"+sas), `"options":{"userMap":{"alice":"a@contoso.com","alice":"evil@contoso.com"}}`), field: "options.userMap.alice", says: "more than once"},
		{name: "invalid UTF-8 byte in folder", body: []byte(strings.Replace(string(body(blobSrc("https://acct.blob.core.windows.net/src"+sas))), `"}}`, `","folder":"a`+"\xff"+`b"}}`, 1)), says: "not valid UTF-8"},
		{name: "overlong UTF-8 slash in prefix", body: body(`{"kind":"azureBlob","containerUrl":"https://acct.blob.core.windows.net/src` + sas + `","prefix":"a` + "\xc0\xaf" + `"}`), says: "not valid UTF-8"},
		{name: "byte order mark before the object", body: append([]byte("\xef\xbb\xbf"), body(blobSrc("https://acct.blob.core.windows.net/src"+sas))...), says: "invalid JSON"},
		{name: "NaN literal", body: []byte(`{"v":NaN}`), says: "invalid JSON"},
		{name: "comment", body: []byte("{\"v\":1 // one\n}"), says: "invalid JSON"},
		{name: "single quotes", body: []byte(`{'v':1}`), says: "invalid JSON"},
		{name: "trailing comma", body: []byte(`{"v":1,}`), says: "invalid JSON"},
		{name: "JSON null", body: []byte(`null`), says: "expected a JSON object"},
		{name: "JSON string", body: []byte(`"{\"v\":1}"`), says: "expected a JSON object"},
		{name: "empty object", body: []byte(`{}`), field: "v", says: "required"},
		{name: "deep nesting", body: []byte(`{"v":1,"colour":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`), says: ""},
		{name: "source as an array", body: []byte(`{"v":1,"source":[],"target":{"containerId":"` + testContainerID + `"}}`), field: "source", says: "expected an object"},
		{name: "target as a string", body: []byte(`{"v":1,"source":` + blobSrc("https://acct.blob.core.windows.net/src"+sas) + `,"target":"` + testContainerID + `"}`), field: "target", says: "expected an object"},
		// Numbers.
		{name: "version 1e400", body: []byte(`{"v":1e400}`), field: "v", says: "integer"},
		{name: "version 1.5", body: []byte(`{"v":1.5}`), field: "v", says: "integer"},
		{name: "version -1", body: []byte(strings.Replace(string(body(blobSrc("https://acct.blob.core.windows.net/src"+sas))), `"v":1`, `"v":-1`, 1)), field: "v", says: "unsupported version"},
		{name: "version true", body: []byte(`{"v":true}`), field: "v", says: "integer"},
		{name: "maxItems past int64", body: body(blobSrc("https://acct.blob.core.windows.net/src"+sas), `"options":{"batch":{"maxItems":9223372036854775808}}`), field: "options.batch.maxItems", says: "integer"},
		{name: "maxBytes 1e20", body: body(blobSrc("https://acct.blob.core.windows.net/src"+sas), `"options":{"batch":{"maxBytes":1e20}}`), field: "options.batch.maxBytes", says: "integer"},
		{name: "maxItems as a string", body: body(blobSrc("https://acct.blob.core.windows.net/src"+sas), `"options":{"batch":{"maxItems":"250"}}`), field: "options.batch.maxItems", says: "integer"},
		{name: "maxItems 2^31", body: body(blobSrc("https://acct.blob.core.windows.net/src"+sas), `"options":{"batch":{"maxItems":2147483648}}`), field: "options.batch.maxItems", says: "between 1 and 250"},
		// Control and bidirectional characters.
		{name: "NUL in id", body: body(blobSrc("https://acct.blob.core.windows.net/src"+sas), `"id":"a\u0000b"`), field: "id", says: "letters, digits"},
		{name: "RLO in id", body: body(blobSrc("https://acct.blob.core.windows.net/src"+sas), `"id":"run\u202e1"`), field: "id", says: "letters, digits"},
		{name: "newline in id (log injection)", body: body(blobSrc("https://acct.blob.core.windows.net/src"+sas), `"id":"a\nlevel=ERROR"`), field: "id", says: "letters, digits"},
		{name: "NUL in folder", body: []byte(`{"v":1,"source":` + blobSrc("https://acct.blob.core.windows.net/src"+sas) + `,"target":{"containerId":"` + testContainerID + `","folder":"a\u0000b"}}`), field: "target.folder", says: "control"},
		{name: "RLO in folder", body: []byte(`{"v":1,"source":` + blobSrc("https://acct.blob.core.windows.net/src"+sas) + `,"target":{"containerId":"` + testContainerID + `","folder":"invoice\u202efdp.exe"}}`), field: "target.folder", says: "bidirectional"},
		{name: "LRI in folder", body: []byte(`{"v":1,"source":` + blobSrc("https://acct.blob.core.windows.net/src"+sas) + `,"target":{"containerId":"` + testContainerID + `","folder":"a\u2066b"}}`), field: "target.folder", says: "bidirectional"},
		{name: "lone surrogate in folder", body: []byte(`{"v":1,"source":` + blobSrc("https://acct.blob.core.windows.net/src"+sas) + `,"target":{"containerId":"` + testContainerID + `","folder":"a\ud800b"}}`), field: "target.folder", says: "control"},
		{name: "newline in folder", body: []byte(`{"v":1,"source":` + blobSrc("https://acct.blob.core.windows.net/src"+sas) + `,"target":{"containerId":"` + testContainerID + `","folder":"a\nb"}}`), field: "target.folder", says: "control"},
		{name: "ESC in prefix", body: body(`{"kind":"azureBlob","containerUrl":"https://acct.blob.core.windows.net/src` + sas + `","prefix":"a\u001b[31m"}`), field: "source.prefix", says: "control"},
		{name: "RLE in prefix", body: body(`{"kind":"azureBlob","containerUrl":"https://acct.blob.core.windows.net/src` + sas + `","prefix":"a\u202bb/"}`), field: "source.prefix", says: "bidirectional"},
		{name: "RLO in local path", body: body(localSrc(allowed + `/\u202edata`)), field: "source.path", says: "bidirectional"},
		// Local folders.
		{name: "local folder /etc", body: body(localSrc("/etc")), field: "source.path", says: "outside the folders"},
		{name: "local folder / (the host's root)", body: body(localSrc("/")), field: "source.path", says: "outside the folders"},
		{name: "local folder escaping with ../", body: body(localSrc(allowed + "/../../../etc")), field: "source.path", says: "'..'"},
		{name: "local folder ../ inside the allowed root", body: body(localSrc(allowed + "/data/../data")), field: "source.path", says: "'..'"},
		{name: "local folder through a link to /etc", body: body(localSrc(allowed + "/etc-link")), field: "source.path", says: "symbolic links"},
		{name: "local prefix through a link out", body: body(`{"kind":"localFolder","path":"` + allowed + `/data","prefix":"out/"}`), field: "source.path", says: "outside the folders"},
		{name: "local prefix escaping with ..", body: body(`{"kind":"localFolder","path":"` + allowed + `/data","prefix":"../../outside"}`), field: "source.prefix", says: "'..'"},
		{name: "local folder that does not exist", body: body(localSrc(allowed + "/nope")), field: "source.path", says: "does not exist"},
		{name: "local folder is a file", body: body(localSrc("/etc/hostname")), field: "source.path", says: ""},
		{name: "local folder /proc/self/root", body: body(localSrc("/proc/self/root/etc")), field: "source.path", says: "outside the folders"},
		{name: "ok: local folder under the root", body: body(localSrc(allowed + "/data")), ok: true},
		{name: "ok: local link staying inside the root", body: body(localSrc(allowed + "/data/in-tree")), ok: true},
		// Blob endpoints.
		{name: "blob host evil:9000", body: body(blobSrc("https://evil:9000/src" + sas)), field: "source.containerUrl", says: `host "evil:9000" is not an Azure Blob endpoint`},
		{name: "blob on an unlisted loopback port", body: body(blobSrc("http://127.0.0.1:9000/devstoreaccount1/src" + sas)), field: "source.containerUrl", says: SettingBlobHosts},
		{name: "blob on localhost when only 127.0.0.1 is listed", body: body(blobSrc("http://localhost:10000/devstoreaccount1/src" + sas)), field: "source.containerUrl", says: "not an Azure Blob endpoint"},
		{name: "blob on IPv6 loopback", body: body(blobSrc("http://[::1]:10000/devstoreaccount1/src" + sas)), field: "source.containerUrl", says: "not an Azure Blob endpoint"},
		{name: "blob on the instance metadata address", body: body(blobSrc("https://169.254.169.254/acct/src" + sas)), field: "source.containerUrl", says: "not an Azure Blob endpoint"},
		{name: "blob on a hex loopback spelling", body: body(blobSrc("https://0x7f000001/src" + sas)), field: "source.containerUrl", says: "not an Azure Blob endpoint"},
		{name: "blob suffix as a subdomain of another host", body: body(blobSrc("https://acct.blob.core.windows.net.evil.example/src" + sas)), field: "source.containerUrl", says: "not an Azure Blob endpoint"},
		{name: "blob suffix without a dot", body: body(blobSrc("https://evilblob.core.windows.net/src" + sas)), field: "source.containerUrl", says: "not an Azure Blob endpoint"},
		{name: "blob with two labels before the suffix", body: body(blobSrc("https://a.b.blob.core.windows.net/src" + sas)), field: "source.containerUrl", says: "not an Azure Blob endpoint"},
		{name: "blob account in Cyrillic", body: body(blobSrc("https://аcct.blob.core.windows.net/src" + sas)), field: "source.containerUrl", says: ""},
		{name: "blob on a non-default port", body: body(blobSrc("https://acct.blob.core.windows.net:8443/src" + sas)), field: "source.containerUrl", says: "port 8443"},
		{name: "blob over plain http", body: body(blobSrc("http://acct.blob.core.windows.net/src" + sas)), field: "source.containerUrl", says: "https"},
		{name: "blob with user information", body: body(blobSrc("https://me:pw@acct.blob.core.windows.net/src" + sas)), field: "source.containerUrl", says: "user information"},
		{name: "blob on a sovereign cloud not configured", body: body(blobSrc("https://acct.blob.core.usgovcloudapi.net/src" + sas)), field: "source.containerUrl", says: "not an Azure Blob endpoint"},
		{name: "connection string pointing at a loopback service", body: body(`{"kind":"azureBlob","containerUrl":"https://acct.blob.core.windows.net/src","connectionString":"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9000/acct"}`), field: "source.connectionString", says: "not an Azure Blob endpoint"},
		{name: "connection string with a foreign endpoint suffix", body: body(`{"kind":"azureBlob","containerUrl":"https://acct.blob.core.windows.net/src","connectionString":"AccountName=acct;AccountKey=a2V5;EndpointSuffix=evil.example"}`), field: "source.connectionString", says: "not an Azure Blob endpoint"},
		{name: "ok: blob in the public cloud", body: body(blobSrc("https://acct.blob.core.windows.net/src" + sas)), ok: true},
		{name: "ok: blob host in upper case", body: body(blobSrc("https://ACCT.BLOB.CORE.WINDOWS.NET/src" + sas)), ok: true},
		{name: "ok: allow-listed emulator", body: body(blobSrc("http://127.0.0.1:10000/devstoreaccount1/src" + sas)), ok: true},
		{name: "ok: development storage connection string", body: body(`{"kind":"azureBlob","containerUrl":"http://127.0.0.1:10000/devstoreaccount1/src","connectionString":"UseDevelopmentStorage=true"}`), ok: true},
		// Size.
		{name: "body over 64 KiB", body: body(blobSrc("https://acct.blob.core.windows.net/src"+sas), `"colour":"`+strings.Repeat("x", MaxBodyBytes)+`"`), says: "larger than"},
	}
	n := 0
	for _, c := range cases {
		n++
		t.Run(c.name, func(t *testing.T) {
			req, err := DecodeBytes(c.body)
			if err == nil {
				err = pol.Check(req)
			}
			if c.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("got %v, want a request error", err)
			}
			if re.Forbidden != c.forbidden {
				t.Errorf("forbidden = %v", re.Forbidden)
			}
			text := re.Error()
			if c.field != "" && re.Fields[0].Field != c.field {
				t.Errorf("field %q, want %q: %s", re.Fields[0].Field, c.field, text)
			}
			if !strings.Contains(text, c.says) {
				t.Errorf("message does not say %q: %s", c.says, text)
			}
			if strings.Contains(text, testSig) || strings.Contains(text, "a2V5") {
				t.Errorf("message quotes a secret: %s", text)
			}
		})
	}
	if n < 60 {
		t.Errorf("corpus holds %d cases", n)
	}
}

func TestPolicyContainers(t *testing.T) {
	other := "b!b3RoZXItY29udGFpbmVyLWlkLTAwMDAwMDAw"
	pol := Policy{Containers: []string{other}}
	req, err := DecodeBytes(body(blobSrc("https://acct.blob.core.windows.net/src")))
	if err != nil {
		t.Fatal(err)
	}
	var re *Error
	if err := pol.Check(req); !errors.As(err, &re) || !re.Forbidden || re.Fields[0].Field != "target.containerId" || !strings.Contains(re.Error(), SettingContainers) {
		t.Fatalf("container outside the list: %v", err)
	}
	req.Source.ContainerURL = "https://evil:9000/a/src"
	if err := pol.Check(req); !errors.As(err, &re) || re.Forbidden || len(re.Fields) != 2 {
		t.Fatalf("bad source and container: %v, want a 400 naming both", err)
	}
	req.Source.ContainerURL = "https://acct.blob.core.windows.net/src"
	req.Target.ContainerID = other
	if err := pol.Check(req); err != nil {
		t.Fatalf("listed container refused: %v", err)
	}
	if err := (Policy{}).Check(req); err != nil {
		t.Fatalf("no list refused a container: %v", err)
	}
	req.Source = Source{Kind: KindLocalFolder, Path: "/tmp"}
	if err := (Policy{}).Check(req); !errors.As(err, &re) || re.Fields[0].Field != "source.kind" || !strings.Contains(re.Error(), SettingLocalRoots) {
		t.Fatalf("local folder with no roots: %v", err)
	}
	gov := Policy{BlobSuffixes: []string{"blob.core.usgovcloudapi.net"}}
	req.Source = Source{Kind: KindAzureBlob, ContainerURL: "https://acct.blob.core.usgovcloudapi.net/src", Credential: CredentialManagedIdentity}
	if err := gov.Check(req); err != nil {
		t.Fatalf("configured sovereign suffix refused: %v", err)
	}
}

// A request may name only the connection settings the deployment lists,
// never the app's own, and never source from the app's own account.
func TestPolicyConnectionSettingsAndOwnAccount(t *testing.T) {
	pol := Policy{ConnectionSettings: []string{"SOURCE_STORAGE", "AzureWebJobsStorage"}, OwnAccounts: []string{"appstate"}}
	req := func(setting, url string) Request {
		return Request{V: 1, Source: Source{Kind: KindAzureBlob, Credential: CredentialConnectionString, ConnectionSetting: setting, ContainerURL: url},
			Target: Target{ContainerID: "b!ISJs1WRro0y0EWgkUYcktDa0mE8z"}}
	}
	const src = "https://content.blob.core.windows.net/docs"
	if err := pol.Check(req("SOURCE_STORAGE", src)); err != nil {
		t.Errorf("listed setting refused: %v", err)
	}
	for _, tt := range []struct{ setting, url, field, want string }{
		{"AzureWebJobsStorage", src, "source.connectionSetting", "app's own settings"},
		{"SPEMIGRATE_STATE_KEY", src, "source.connectionSetting", "app's own settings"},
		{"OTHER", src, "source.connectionSetting", SettingConnectionSettings},
		{"SOURCE_STORAGE", "https://appstate.blob.core.windows.net/azure-webjobs-secrets", "source.containerUrl", "app's own"},
	} {
		err := pol.Check(req(tt.setting, tt.url))
		var re *Error
		if !errors.As(err, &re) || re.Fields[0].Field != tt.field || !strings.Contains(re.Error(), tt.want) {
			t.Errorf("%s %s: %v; want %s naming %q", tt.setting, tt.url, err, tt.field, tt.want)
		}
	}
}
