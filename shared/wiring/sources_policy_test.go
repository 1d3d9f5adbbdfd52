package wiring

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spemigrate/spemigrate/shared/request"
)

// The policy again at open time: a stored request the entry points would
// refuse today (an older version, a setting narrowed since) opens nothing,
// and a permitted local folder is opened at the real path the policy
// resolved.
func TestRequestSourcesApplyThePolicy(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "data"), filepath.Join(root, "alias")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	rs := &RequestSources{Policy: &request.Policy{LocalRoots: []string{root}}}
	open := func(src request.Source) error {
		r := request.Request{V: 1, Source: src, Target: request.Target{ContainerID: "b!ISJs1WRro0y0EWgkUYcktDa0mE8z"}}
		r.ApplyDefaults()
		_, err := rs.Open(r)
		return err
	}
	for name, src := range map[string]request.Source{
		"/etc":                 {Kind: request.KindLocalFolder, Path: "/etc"},
		"link to /etc":         {Kind: request.KindLocalFolder, Path: filepath.Join(root, "etc")},
		"../":                  {Kind: request.KindLocalFolder, Path: root + "/data/../../"},
		"blob on another host": {Kind: request.KindAzureBlob, ContainerURL: "https://evil:9000/src", Credential: request.CredentialManagedIdentity},
	} {
		if err := open(src); !request.IsInvalid(err) {
			t.Errorf("%s: %v, want a request error (the migration fails for good)", name, err)
		}
	}
	if err := open(request.Source{Kind: request.KindLocalFolder, Path: filepath.Join(root, "alias")}); err != nil {
		t.Errorf("allowed folder through a link inside the root: %v", err)
	}
}
