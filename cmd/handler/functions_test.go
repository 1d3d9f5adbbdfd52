package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Every function folder under handlers/ has code in the handler, and every
// function the handler serves has a folder: a mismatch is a function the
// host would invoke into a 404, or code no trigger reaches.
func TestFunctionTableMatchesFolders(t *testing.T) {
	fns, _ := functionsFor(deps{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var served []string
	for name := range fns {
		served = append(served, name)
	}
	sort.Strings(served)

	dirs, err := filepath.Glob("../../handlers/*/function.json")
	if err != nil {
		t.Fatal(err)
	}
	var folders []string
	for _, d := range dirs {
		folders = append(folders, filepath.Base(filepath.Dir(d)))
		// Every function.json is valid JSON with exactly one trigger.
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		var fj struct {
			Bindings []struct {
				Type       string `json:"type"`
				Direction  string `json:"direction"`
				Name       string `json:"name"`
				Connection string `json:"connection"`
			} `json:"bindings"`
		}
		if err := json.Unmarshal(b, &fj); err != nil {
			t.Errorf("%s: %v", d, err)
			continue
		}
		triggers := 0
		for _, b := range fj.Bindings {
			if strings.HasSuffix(b.Type, "Trigger") {
				triggers++
			}
			if b.Type == "serviceBusTrigger" && b.Connection != "ServiceBusConnection" {
				t.Errorf("%s: connection %q; every Service Bus binding uses the ServiceBusConnection setting (or its __fullyQualifiedNamespace form)", d, b.Connection)
			}
		}
		if triggers != 1 {
			t.Errorf("%s: %d triggers, want exactly 1", d, triggers)
		}
	}
	sort.Strings(folders)
	if strings.Join(served, ",") != strings.Join(folders, ",") {
		t.Errorf("handler serves %v\nfolders are     %v", served, folders)
	}
}
