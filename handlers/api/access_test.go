package api

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spemigrate/spemigrate/shared/request"
)

// The deployment's policy at the HTTP entry points: refused requests get a
// 400 naming the field and the rule (403 for a target container outside the
// allow-list), and neither a migration nor a schedule comes of them.
func TestPolicyAtTheAPI(t *testing.T) {
	allowed := t.TempDir()
	if err := os.Symlink("/etc", filepath.Join(allowed, "etc")); err != nil {
		t.Fatal(err)
	}
	strict, _, _ := newServer() // the zero Policy
	configured, _, _ := newServer()
	configured.Policy = request.Policy{LocalRoots: []string{allowed}, BlobHosts: []string{"127.0.0.1:10000"}, Containers: []string{containerID}}
	local := func(p string) string {
		return `{"v":1,"source":{"kind":"localFolder","path":"` + p + `"},"target":{"containerId":"` + containerID + `"}}`
	}
	blob := func(u string) string {
		return strings.Replace(validBody, "https://acct.blob.core.windows.net/src", u, 1)
	}
	other := "b!b3RoZXItY29udGFpbmVyLWlkLTAwMDAwMDAw"

	for _, c := range []struct {
		name   string
		srv    *Server
		body   string
		status int
		field  string
		says   string
	}{
		{"local folder where none is enabled", strict, local("/etc"), 400, "source.kind", request.SettingLocalRoots},
		{"local folder /etc", configured, local("/etc"), 400, "source.path", "outside the folders"},
		{"local folder ../", configured, local(allowed + "/../../etc"), 400, "source.path", "'..'"},
		{"local folder through a link to /etc", configured, local(allowed + "/etc"), 400, "source.path", "symbolic links"},
		{"blob on another host", strict, blob("https://evil:9000/src"), 400, "source.containerUrl", `host "evil:9000" is not an Azure Blob endpoint`},
		{"blob on loopback without the allow-list", strict, blob("http://127.0.0.1:10000/devstoreaccount1/src"), 400, "source.containerUrl", request.SettingBlobHosts},
		{"target container outside the allow-list", configured, strings.Replace(validBody, containerID, other, 1), 403, "target.containerId", request.SettingContainers},
	} {
		t.Run(c.name, func(t *testing.T) {
			fb := c.srv.Backend.(*fakeBackend)
			before := fb.starts
			r := do(t, c.srv.Handler(), "POST", "/api/migrations", []byte(c.body))
			var eb ErrorBody
			r.json(t, &eb)
			if r.Code != c.status || len(eb.Errors) == 0 || eb.Errors[0].Field != c.field || !strings.Contains(eb.Errors[0].Message, c.says) {
				t.Fatalf("%d %s, want %d naming %s and %q", r.Code, r.Body, c.status, c.field, c.says)
			}
			if bytes.Contains(r.Body, []byte(secretSig)) {
				t.Errorf("response quotes the SAS signature: %s", r.Body)
			}
			if fb.starts != before {
				t.Error("a refused request reached the backend")
			}
			// The same template in a schedule: refused under request.
			sr := do(t, c.srv.Handler(), "POST", "/api/schedules", []byte(`{"cron":"0 0 2 * * *","request":`+c.body+`}`))
			sr.json(t, &eb)
			if sr.Code != c.status || len(eb.Errors) == 0 || eb.Errors[0].Field != "request."+c.field {
				t.Fatalf("schedule: %d %s, want %d naming request.%s", sr.Code, sr.Body, c.status, c.field)
			}
		})
	}
	for _, s := range []*Server{strict, configured} {
		if n := len(s.Schedules.(*memSchedules).m); n != 0 {
			t.Errorf("%d schedules created from refused templates", n)
		}
	}
	if r := do(t, configured.Handler(), "POST", "/api/migrations", []byte(local(allowed))); r.Code != http.StatusAccepted {
		t.Errorf("allowed local folder: %d %s", r.Code, r.Body)
	}
}

// Hostile schedules: malformed cron expressions are 400s naming cron, and a
// script posting thousands of schedules meets a limit, not a slower timer.
func TestHostileSchedules(t *testing.T) {
	s, _, ms := newServer()
	h := s.Handler()
	for _, cron := range []string{
		"", "* * * * * * * *", "*/0 * * * * *", "0-99999999999 * * * * *", "99 * * * * *",
		"0 0 2 31 2 *", strings.Repeat("1,", 5000) + "1 * * * * *", "0 0 2 * * *\u202e", "0 0 2 * * \x00",
		"-1 * * * * *", "a-b * * * * *", "1/1/1 * * * * *", "0 0 2 * * MON-SUN-XX",
	} {
		b, _ := jsonString(cron)
		r := do(t, h, "POST", "/api/schedules", []byte(`{"cron":`+b+`,"request":`+validBody+`}`))
		var eb ErrorBody
		r.json(t, &eb)
		if r.Code != 400 || len(eb.Errors) == 0 || eb.Errors[0].Field != "cron" {
			t.Errorf("cron %.40q: %d %s, want 400 naming cron", cron, r.Code, r.Body)
		}
	}
	if len(ms.m) != 0 {
		t.Fatalf("%d schedules created from bad cron expressions", len(ms.m))
	}
	refused := 0
	for i := range MaxSchedules + 100 {
		r := do(t, h, "POST", "/api/schedules", []byte(fmt.Sprintf(`{"id":"s%d","cron":"0 0 2 * * *","request":%s}`, i, validBody)))
		switch r.Code {
		case http.StatusCreated:
		case http.StatusConflict:
			refused++
			if !bytes.Contains(r.Body, []byte("delete unused")) {
				t.Fatalf("limit answer does not say what to do: %s", r.Body)
			}
		default:
			t.Fatalf("schedule %d: %d %s", i, r.Code, r.Body)
		}
	}
	if len(ms.m) != MaxSchedules || refused != 100 {
		t.Errorf("%d schedules stored, %d refused; want %d and 100", len(ms.m), refused, MaxSchedules)
	}
	if r := do(t, h, "GET", "/api/schedules", nil); r.Code != 200 {
		t.Errorf("list after the flood: %d", r.Code)
	}
}

// Bodies the HTTP layer sees: streamed without a length, larger than any
// request, of the wrong media type.
func TestHostileBodies(t *testing.T) {
	s, fb, _ := newServer()
	h := s.Handler()
	huge := bytes.Repeat([]byte("x"), 256<<10)
	for _, c := range []struct {
		name   string
		body   []byte
		ctype  string
		status int
	}{
		{"256 KiB chunked", append([]byte(`{"v":1,"colour":"`), huge...), "application/json", 413},
		{"256 KiB of NUL bytes", make([]byte, 256<<10), "application/json", 413},
		{"form-encoded", []byte("v=1&source=x"), "application/x-www-form-urlencoded", 415},
		{"multipart", []byte("--b\r\n\r\n{}\r\n--b--"), "multipart/form-data; boundary=b", 415},
		{"XML", []byte(`<request v="1"/>`), "application/xml", 415},
		{"malformed media type", []byte(validBody), "application/json; charset", 415},
		{"UTF-16 JSON", append([]byte{0xff, 0xfe}, []byte("{\x00}\x00")...), "application/json; charset=utf-16", 400},
		{"binary garbage", []byte{0x00, 0x9f, 0x92, 0x96, 0xff}, "application/json", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			// No Content-Length: the server reads it as a stream, as it does
			// a chunked body.
			req := httptest.NewRequest("POST", "/api/migrations", struct{ *bytes.Reader }{bytes.NewReader(c.body)})
			req.ContentLength = -1
			req.Header.Set("Content-Type", c.ctype)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.status || !strings.Contains(rec.Header().Get("Content-Type"), "application/json") {
				t.Errorf("%d %s, want %d as JSON", rec.Code, rec.Body, c.status)
			}
		})
	}
	if fb.starts != 0 {
		t.Errorf("%d migrations started", fb.starts)
	}
}

func jsonString(s string) (string, error) {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// A dry run reads the source too: the policy is applied before it.
func TestDryRunAppliesThePolicy(t *testing.T) {
	s, _, _ := newServer()
	ls := &localSources{}
	s.Scanner = &DryRun{Sources: ls}
	s.Policy = request.Policy{LocalRoots: []string{t.TempDir()}}
	body := `{"v":1,"source":{"kind":"localFolder","path":"/etc"},"target":{"containerId":"` + containerID + `"}}`
	r := do(t, s.Handler(), "POST", "/api/migrations?dryRun=true", []byte(body))
	if r.Code != http.StatusBadRequest || !bytes.Contains(r.Body, []byte("source.path")) || ls.opened != 0 {
		t.Fatalf("dry run of /etc: %d %s (sources opened %d)", r.Code, r.Body, ls.opened)
	}
}
