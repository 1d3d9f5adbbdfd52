package main

import (
	"context"
	"testing"
)

// The scenarios run in-process here on small inputs, so a change in the
// packages they drive breaks the test rather than `make bench`.

func TestStageScenario(t *testing.T) {
	v, err := scenarioStage(context.Background(), "3:1048576:2")
	if err != nil {
		t.Fatal(err)
	}
	if v["bytes"] != 3<<20 || v["oneBytes"] != 3<<20 {
		t.Errorf("bytes %v, one file %v", v["bytes"], v["oneBytes"])
	}
	for _, k := range []string{"stageCPU", "stageWall", "cbcCPU", "md5CPU", "cbcAllWall", "oneWall"} {
		if v[k] <= 0 {
			t.Errorf("%s = %v, want > 0", k, v[k])
		}
	}
}

func TestPlanScenario(t *testing.T) {
	v, err := scenarioPlan(context.Background(), "2500")
	if err != nil {
		t.Fatal(err)
	}
	// 1,000-entry pages of 64 KiB files spread over 1,000 team folders:
	// the folders a package creates count towards the 250 objects of a
	// batch, so a full page takes 9 batches (2 pages: 18, the last half page
	// 5); every batch writes the eight package files.
	if v["items"] != 2500 || v["batches"] != 23 || v["manifests"] != 184 {
		t.Errorf("items %v batches %v manifests %v", v["items"], v["batches"], v["manifests"])
	}
	if v["renamed"] != 25 {
		t.Errorf("renamed %v, want the 1 %% of names with refused characters", v["renamed"])
	}
}

func TestListingPages(t *testing.T) {
	l := listing{2500}
	seen, cursor, pages := 0, "", 0
	for {
		p, err := l.List(context.Background(), cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		seen += len(p.Entries)
		pages++
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	if seen != 2500 || pages != 3 {
		t.Errorf("listed %d entries in %d pages", seen, pages)
	}
}
