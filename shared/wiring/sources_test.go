package wiring

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spemigrate/spemigrate/shared/request"
)

func TestRequestSourcesOpensWhatTheRequestNames(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"top.txt", "sub/a.txt"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rs := &RequestSources{}
	src, err := rs.Open(request.Request{V: 1, Source: request.Source{Kind: request.KindLocalFolder, Path: dir, Prefix: "sub"}})
	if err != nil {
		t.Fatal(err)
	}
	pg, err := src.List(context.Background(), "", 10)
	if err != nil || len(pg.Entries) != 1 || pg.Entries[0].Path != "a.txt" {
		t.Fatalf("prefix sub listed %+v, %v", pg.Entries, err)
	}

	for _, tt := range []struct {
		name string
		src  request.Source
		want string
	}{
		{"unknown kind", request.Source{Kind: "ftp"}, `source.kind "ftp"`},
		{"setting without app settings", request.Source{Kind: request.KindAzureBlob, Credential: request.CredentialConnectionString,
			ContainerURL: "https://a.blob.core.windows.net/c", ConnectionSetting: "SRC"}, `source.connectionSetting "SRC"`},
		{"unknown credential", request.Source{Kind: request.KindAzureBlob, Credential: "password"}, `source.credential "password"`},
	} {
		_, err := rs.Open(request.Request{V: 1, Source: tt.src})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error naming %s", tt.name, err, tt.want)
		}
	}
	empty := &RequestSources{Getenv: func(string) string { return "" }}
	_, err = empty.Open(request.Request{V: 1, Source: request.Source{Kind: request.KindAzureBlob, Credential: request.CredentialConnectionString,
		ContainerURL: "https://a.blob.core.windows.net/c", ConnectionSetting: "SRC"}})
	if err == nil || !strings.Contains(err.Error(), "empty or missing") {
		t.Errorf("empty setting: %v", err)
	}
}
