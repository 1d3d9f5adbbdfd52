package handlers

import (
	"strings"
	"testing"
	"time"
)

// TestSettingsListsWhatLoadConfigReads records every name LoadConfig asks
// for, over configurations that take each branch (connection strings,
// identity by account name or table URI, the state-storage override), and
// fails for a name Settings does not list.
func TestSettingsListsWhatLoadConfigReads(t *testing.T) {
	listed := map[string]bool{}
	for _, s := range Settings {
		if listed[s.Name] {
			t.Errorf("Settings lists %s twice", s.Name)
		}
		listed[s.Name] = true
	}
	key := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	envs := []map[string]string{
		{}, // nothing set: every fallback is looked up
		{"SPEMIGRATE_STORAGE": "UseDevelopmentStorage=true", "ServiceBusConnection": "Endpoint=sb://x", "SPEMIGRATE_STATE_KEY": key},
		{"SPEMIGRATE_STORAGE__tableServiceUri": "https://a.table.core.windows.net", "ServiceBusConnection__fullyQualifiedNamespace": "b.servicebus.windows.net"},
		{"AzureWebJobsStorage__accountName": "a", "SPEMIGRATE_POLL_INTERVAL": "5s", "SPEMIGRATE_PAGE_SIZE": "10", "SPEMIGRATE_MAX_ATTEMPTS": "2"},
	}
	read := map[string]bool{}
	for _, env := range envs {
		LoadConfig(func(name string) string {
			read[name] = true
			return env[name]
		})
	}
	for name := range read {
		if !listed[name] {
			t.Errorf("LoadConfig reads %s, which handlers.Settings does not list", name)
		}
	}
	// The other direction keeps the list honest: a listed name nobody reads
	// is a leftover of a rename (the host-resolved ones excepted).
	for name := range listed {
		if !read[name] && name != "SPEMIGRATE_DRAIN_SCHEDULE" {
			t.Errorf("handlers.Settings lists %s, which LoadConfig never reads", name)
		}
	}
}

func TestPermissionCheckSetting(t *testing.T) {
	key := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	base := map[string]string{"AzureWebJobsStorage__accountName": "a", "ServiceBusConnection__fullyQualifiedNamespace": "b", "SPEMIGRATE_STATE_KEY": key}
	get := func(extra string) (Config, error) {
		return LoadConfig(func(k string) string {
			if k == "SPEMIGRATE_GRAPH_PERMISSION_CHECK" {
				return extra
			}
			return base[k]
		})
	}
	c, err := get("")
	if err != nil || c.Graph.PermissionCheck != PermissionCheckWarn {
		t.Errorf("default: %q, %v; want warn", c.Graph.PermissionCheck, err)
	}
	if c, err := get("require"); err != nil || c.Graph.PermissionCheck != PermissionCheckRequire {
		t.Errorf("require: %q, %v", c.Graph.PermissionCheck, err)
	}
	if _, err := get("sometimes"); err == nil || !strings.Contains(err.Error(), "SPEMIGRATE_GRAPH_PERMISSION_CHECK") {
		t.Errorf("bad value: %v; want an error naming the setting", err)
	}
}

func TestSubmitLeaseSetting(t *testing.T) {
	key := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	get := func(v string) (Config, error) {
		env := map[string]string{"AzureWebJobsStorage__accountName": "a", "ServiceBusConnection__fullyQualifiedNamespace": "b", "SPEMIGRATE_STATE_KEY": key, "SPEMIGRATE_SUBMIT_LEASE": v}
		return LoadConfig(func(k string) string { return env[k] })
	}
	if c, err := get(""); err != nil || c.SubmitLease != 0 {
		t.Errorf("unset: %v, %v; want 0 (the engine's default)", c.SubmitLease, err)
	}
	if c, err := get("30s"); err != nil || c.SubmitLease != 30*time.Second {
		t.Errorf("30s: %v, %v", c.SubmitLease, err)
	}
	for _, bad := range []string{"5", "2s"} {
		if _, err := get(bad); err == nil || !strings.Contains(err.Error(), "SPEMIGRATE_SUBMIT_LEASE") {
			t.Errorf("%q: %v; want an error naming the setting", bad, err)
		}
	}
}

func TestDrainThresholdSettings(t *testing.T) {
	key := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	get := func(stuck, grace string) (Config, error) {
		env := map[string]string{"AzureWebJobsStorage__accountName": "a", "ServiceBusConnection__fullyQualifiedNamespace": "b", "SPEMIGRATE_STATE_KEY": key,
			"SPEMIGRATE_STUCK_AFTER": stuck, "SPEMIGRATE_POLL_GRACE": grace}
		return LoadConfig(func(k string) string { return env[k] })
	}
	if c, err := get("", ""); err != nil || c.StuckAfter != 0 || c.PollGrace != 0 {
		t.Errorf("unset: %v %v, %v; want zero (the engine's defaults)", c.StuckAfter, c.PollGrace, err)
	}
	if c, err := get("1m", "20s"); err != nil || c.StuckAfter != time.Minute || c.PollGrace != 20*time.Second {
		t.Errorf("1m/20s: %v %v, %v", c.StuckAfter, c.PollGrace, err)
	}
	if _, err := get("10s", ""); err == nil || !strings.Contains(err.Error(), "SPEMIGRATE_STUCK_AFTER") {
		t.Errorf("stuck 10s: %v; want an error naming the setting", err)
	}
	if _, err := get("", "soon"); err == nil || !strings.Contains(err.Error(), "SPEMIGRATE_POLL_GRACE") {
		t.Errorf("grace soon: %v; want an error naming the setting", err)
	}
}
