package graphemu

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

// OverwriteContent replaces the bytes of the current version of the file
// at path (relative to the library root) in the container's drive, as a
// change made behind the migration's back would: size and quickXorHash
// follow the new bytes, times and authors stay. Verification tests use it
// to plant a corrupted file.
func (s *Server) OverwriteContent(containerID, path string, data []byte) error {
	d := s.container(containerID)
	if d == nil {
		return fmt.Errorf("graphemu: no container %q", containerID)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	it := d.byPath(path)
	if it == nil || it.Folder || len(it.Versions) == 0 {
		return fmt.Errorf("graphemu: no file %q in container %q", path, containerID)
	}
	v := &it.Versions[len(it.Versions)-1]
	if err := os.WriteFile(v.path, data, 0o644); err != nil {
		return fmt.Errorf("graphemu: overwrite %q: %w", path, err)
	}
	var h quickXorHash
	h.Write(data)
	v.Size, v.QuickXorHash = int64(len(data)), h.Sum()
	return nil
}

// serveOverwrite answers PUT /_admin/content?container=ID&path=P with the
// new bytes as the body.
func (s *Server) serveOverwrite(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	if err := s.OverwriteContent(q.Get("container"), q.Get("path"), data); err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
