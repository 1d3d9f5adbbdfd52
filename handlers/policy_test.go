package handlers

import (
	"slices"
	"strings"
	"testing"
)

func TestLoadConfigPolicy(t *testing.T) {
	base := map[string]string{
		"AzureWebJobsStorage":  "UseDevelopmentStorage=true",
		"ServiceBusConnection": "Endpoint=sb://127.0.0.1;SharedAccessKeyName=k;SharedAccessKey=v",
		"SPEMIGRATE_STATE_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	}
	load := func(extra map[string]string) (Config, error) {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		return LoadConfig(func(k string) string { return env[k] })
	}
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Policy; p.LocalRoots != nil || p.BlobHosts != nil || p.BlobSuffixes != nil || p.Containers != nil {
		t.Errorf("unset settings gave %+v, want the strict zero policy", p)
	}
	c, err = load(map[string]string{
		"SPEMIGRATE_LOCAL_SOURCE_ROOTS":     "/srv/exports:/data/in/",
		"SPEMIGRATE_BLOB_ENDPOINT_SUFFIXES": "blob.core.usgovcloudapi.net, .blob.core.chinacloudapi.cn",
		"SPEMIGRATE_ALLOWED_BLOB_HOSTS":     "127.0.0.1:10000,Azurite:10000",
		"SPEMIGRATE_ALLOWED_CONTAINERS":     "b!one,b!two",
	})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Policy
	if !slices.Equal(p.LocalRoots, []string{"/srv/exports", "/data/in"}) ||
		!slices.Equal(p.BlobSuffixes, []string{"blob.core.usgovcloudapi.net", "blob.core.chinacloudapi.cn"}) ||
		!slices.Equal(p.BlobHosts, []string{"127.0.0.1:10000", "azurite:10000"}) ||
		!slices.Equal(p.Containers, []string{"b!one", "b!two"}) {
		t.Errorf("policy %+v", p)
	}
	for setting, bad := range map[string]string{
		"SPEMIGRATE_LOCAL_SOURCE_ROOTS":     "/",
		"SPEMIGRATE_BLOB_ENDPOINT_SUFFIXES": "*.evil",
		"SPEMIGRATE_ALLOWED_BLOB_HOSTS":     "http://127.0.0.1:10000",
		"SPEMIGRATE_ALLOWED_CONTAINERS":     "docs",
	} {
		if _, err := load(map[string]string{setting: bad}); err == nil || !strings.Contains(err.Error(), setting) {
			t.Errorf("%s=%q: %v, want an error naming the setting", setting, bad, err)
		}
	}
	if _, err := load(map[string]string{"SPEMIGRATE_LOCAL_SOURCE_ROOTS": "relative/dir"}); err == nil {
		t.Error("a relative local root was accepted")
	}
}
