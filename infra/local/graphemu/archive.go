package graphemu

import (
	"archive/zip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// quickXorHash is OneDrive's QuickXorHash (spec §6.9): bytes are XORed into
// a 160-bit state at a bit offset that advances by 11 per byte, then the
// length is XORed into the last 8 bytes.
type quickXorHash struct {
	state [20]byte
	n     uint64
}

func (h *quickXorHash) Write(p []byte) (int, error) {
	for _, b := range p {
		off := (h.n * 11) % 160
		i, shift := off/8, off%8
		h.state[i] ^= b << shift
		if shift > 0 {
			h.state[(i+1)%20] ^= b >> (8 - shift)
		}
		h.n++
	}
	return len(p), nil
}

func (h *quickXorHash) Sum() string {
	out := h.state
	var l [8]byte
	binary.LittleEndian.PutUint64(l[:], h.n)
	for i := range l {
		out[12+i] ^= l[i]
	}
	return base64.StdEncoding.EncodeToString(out[:])
}

// Limits of the small-file archive feature (spec §6.8–§6.9).
const (
	maxArchives      = 2
	maxArchiveSize   = 10 << 20
	maxArchiveMember = 100 << 10
)

var archivedFilesSchema = &schemaDoc{file: "ArchivedFiles.xml", root: "ArchivedFiles", ns: "", elems: map[string]*elemSpec{
	"ArchivedFiles": el("", false, "ArchivedFile"),
	"ArchivedFile":  el("Name Checksum", false, "File"),
	"File":          el("FileValue", false),
}}

// archiveMember says where a FileValue lives when it comes from an archive.
type archiveMember struct {
	zip    string // decrypted archive on disk
	member string
	err    string // why the member cannot be used, if it cannot
}

// loadArchives reads ArchivedFiles.xml, checks each archive and indexes its
// members by FileValue. Too many archives is fatal; a bad archive makes its
// members unavailable (each file then reports its own object error).
func (im *importer) loadArchives(ctx context.Context, path string) error {
	doc, err := readDocFile(path, archivedFilesSchema)
	if err != nil {
		return err
	}
	if len(doc.kids) > maxArchives {
		return fatalf("ArchivedFiles.xml lists %d archives; at most %d are allowed", len(doc.kids), maxArchives)
	}
	im.archives = map[string]archiveMember{}
	for i, a := range doc.kids {
		name := a.attr("Name")
		zipPath := filepath.Join(im.tmp, "archive-"+strconv.Itoa(i)+".zip")
		problem := im.fetchArchive(ctx, name, a.attr("Checksum"), zipPath)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var zr *zip.ReadCloser
		if problem == "" {
			if zr, err = zip.OpenReader(zipPath); err != nil {
				problem = "is not a zip archive: " + err.Error()
			}
		}
		if problem != "" {
			im.objError("file", "", name, codeBadData, fmt.Sprintf("Archive '%s' %s", name, problem))
		}
		members := map[string]*zip.File{}
		if zr != nil {
			for _, f := range zr.File {
				members[f.Name] = f
			}
			zr.Close()
		}
		for _, f := range a.kids {
			fv := f.attr("FileValue")
			m := archiveMember{zip: zipPath, member: fv}
			switch zf := members[fv]; {
			case problem != "":
				m.err = fmt.Sprintf("archive '%s' could not be used", name)
			case zf == nil:
				m.err = fmt.Sprintf("'%s' is not a member of archive '%s'", fv, name)
			case zf.UncompressedSize64 >= maxArchiveMember:
				m.err = fmt.Sprintf("archive member '%s' is %d bytes; members must be smaller than %d", fv, zf.UncompressedSize64, maxArchiveMember)
			}
			im.archives[fv] = m
		}
	}
	return nil
}

// fetchArchive downloads and decrypts an archive, checking its size and
// checksum; it returns a problem description or "".
func (im *importer) fetchArchive(ctx context.Context, name, checksum, dst string) string {
	var hCipher quickXorHash
	rc, _, missing, err := im.openBlob(ctx, im.data, name, true, &hCipher)
	if missing {
		return "was not found in the data container"
	}
	if err != nil {
		return "cannot be read: " + err.Error()
	}
	defer rc.Close()
	f, err := os.Create(dst)
	if err != nil {
		return "cannot be stored: " + err.Error()
	}
	defer f.Close()
	var hPlain quickXorHash
	n, err := io.Copy(io.MultiWriter(f, &hPlain), io.LimitReader(rc, maxArchiveSize+1))
	if err != nil {
		return "cannot be decrypted: " + err.Error()
	}
	if n > maxArchiveSize {
		return fmt.Sprintf("is larger than %d bytes", maxArchiveSize)
	}
	got := hPlain.Sum()
	if im.s.cfg.Knobs.ArchiveChecksum == "ciphertext" {
		got = hCipher.Sum()
	}
	if checksum != got {
		return fmt.Sprintf("has Checksum '%s' but its QuickXorHash is '%s'", checksum, got)
	}
	return ""
}

// openArchived extracts an archive member to dst.
func (im *importer) openArchived(m archiveMember, dst string, h io.Writer) (int64, error) {
	if m.err != "" {
		return 0, errors.New(m.err)
	}
	zr, err := zip.OpenReader(m.zip)
	if err != nil {
		return 0, err
	}
	defer zr.Close()
	src, err := zr.Open(m.member)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	f, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(io.MultiWriter(f, h), src)
}
