package graphemu_test

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
)

// qxh is QuickXorHash computed bit by bit (independent of the emulator's).
func qxh(data []byte) string {
	var bits [160]bool
	for i, b := range data {
		for k := 0; k < 8; k++ {
			if b&(1<<k) != 0 {
				p := (11*i + k) % 160
				bits[p] = !bits[p]
			}
		}
	}
	var out [20]byte
	for p, set := range bits {
		if set {
			out[p/8] |= 1 << (p % 8)
		}
	}
	var l [8]byte
	binary.LittleEndian.PutUint64(l[:], uint64(len(data)))
	for i := range l {
		out[12+i] ^= l[i]
	}
	return base64.StdEncoding.EncodeToString(out[:])
}

func zipOf(t *testing.T, members map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range members {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// archivedPkg moves version 1.0 of the example file into an archive.
func archivedPkg(t *testing.T, checksum func(zip []byte) string, extra string, member []byte) *pkg {
	p := examplePkg()
	if member == nil {
		member = p.data["src/0001.bin"]
	}
	z := zipOf(t, map[string][]byte{"a/0001.dat": member})
	delete(p.data, "src/0001.bin")
	p.data["batch-000.zip"] = z
	replaceIn(p, "Manifest.xml", `FileValue="src/0001.bin" FileSize="18211"`, `FileValue="a/0001.dat" FileSize="`+strconv.Itoa(len(member))+`"`)
	p.meta["ArchivedFiles.xml"] = []byte(`<?xml version="1.0" encoding="utf-8"?>
<ArchivedFiles>
  <ArchivedFile Name="batch-000.zip" Checksum="` + checksum(z) + `">
    <File FileValue="a/0001.dat" />
  </ArchivedFile>` + extra + `
</ArchivedFiles>`)
	return p
}

func TestArchivedFiles(t *testing.T) {
	t.Run("members import like data blobs", func(t *testing.T) {
		e := newEmu(t, nil)
		ci := e.provision()
		p := archivedPkg(t, qxh, "", nil)
		p.upload(t, ci)
		evs := e.waitDone(e.mustCreateJob(ci))
		assertOutcome(t, evs, rule{level: ""})
		got := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts/nda.pdf:/versions/1.0/content", nil).body
		if !bytes.Equal(got, examplePkg().data["src/0001.bin"]) {
			t.Errorf("archived version content differs (%d bytes)", len(got))
		}
	})
	t.Run("checksum over ciphertext (knob)", func(t *testing.T) {
		e := newEmu(t, func(c *graphemu.Config) { c.Knobs.ArchiveChecksum = "ciphertext" })
		ci := e.provision()
		p := archivedPkg(t, qxh, "", nil) // plaintext checksum: wrong under this knob
		p.upload(t, ci)
		evs := e.waitDone(e.mustCreateJob(ci))
		assertOutcome(t, evs, rule{level: objError, objType: "file", objURL: "batch-000.zip", msg: "its QuickXorHash is"})
	})
	t.Run("checksum mismatch", func(t *testing.T) {
		e := newEmu(t, nil)
		ci := e.provision()
		p := archivedPkg(t, func([]byte) string { return "kV2sR0m1Xo4cQ8dJf3aLzB7eHbE=" }, "", nil)
		p.upload(t, ci)
		evs := e.waitDone(e.mustCreateJob(ci))
		assertOutcome(t, evs, rule{level: objError, objType: "file", objURL: fileURL, msg: "archive 'batch-000.zip' could not be used"})
	})
	t.Run("more than two archives", func(t *testing.T) {
		e := newEmu(t, nil)
		ci := e.provision()
		more := `<ArchivedFile Name="b.zip" Checksum="x"/><ArchivedFile Name="c.zip" Checksum="y"/>`
		p := archivedPkg(t, qxh, more, nil)
		p.upload(t, ci)
		evs := e.waitDone(e.mustCreateJob(ci))
		assertOutcome(t, evs, rule{level: fatal, msg: "lists 3 archives; at most 2"})
	})
	t.Run("member of 100 KB or more", func(t *testing.T) {
		e := newEmu(t, nil)
		ci := e.provision()
		p := archivedPkg(t, qxh, "", content(9, 100<<10))
		p.upload(t, ci)
		evs := e.waitDone(e.mustCreateJob(ci))
		assertOutcome(t, evs, rule{level: objError, objType: "file", objURL: fileURL, msg: "members must be smaller than 102400"})
	})
}
