package graphemu

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// The drive's metadata is saved next to its content after every change, so
// a stack started again on the same data directory (spemigrate dev -data)
// still shows what was imported. Jobs and provisioned containers are not
// kept: after a restart a client re-provisions, as after invalidAzureResource.

const driveFile = "drive.json"

type savedVersion struct {
	version
	File string `json:"file"` // relative to the drive directory
}

type savedItem struct {
	item
	Versions []savedVersion `json:"versions,omitempty"`
}

type savedDrive struct {
	Items []savedItem `json:"items"`
	Next  int         `json:"next"`
}

// save writes the drive's metadata atomically. Callers hold d.mu.
func (d *drive) save() error {
	out := savedDrive{Next: d.next}
	for _, it := range d.items {
		si := savedItem{item: *it}
		si.item.Versions = nil
		for _, v := range it.Versions {
			rel, err := filepath.Rel(d.dir, v.path)
			if err != nil {
				return err
			}
			si.Versions = append(si.Versions, savedVersion{version: v, File: rel})
		}
		out.Items = append(out.Items, si)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	tmp := filepath.Join(d.dir, driveFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(d.dir, driveFile))
}

// load reads saved metadata, if any.
func (d *drive) load() error {
	b, err := os.ReadFile(filepath.Join(d.dir, driveFile))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var sd savedDrive
	if err := json.Unmarshal(b, &sd); err != nil {
		return fmt.Errorf("graphemu: %s: %w", filepath.Join(d.dir, driveFile), err)
	}
	for _, si := range sd.Items {
		it := si.item
		it.Versions = nil
		for _, v := range si.Versions {
			v.version.path = filepath.Join(d.dir, v.File)
			it.Versions = append(it.Versions, v.version)
		}
		d.items[it.ID] = &it
		if it.ID != d.rootID() {
			d.byInt[it.IntID] = it.ID
		}
	}
	if sd.Next > d.next {
		d.next = sd.Next
	}
	return nil
}
