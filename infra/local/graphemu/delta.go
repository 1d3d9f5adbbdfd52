package graphemu

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Drive paging: children listings and root/delta answer in pages of
// Knobs.DrivePageSize with opaque tokens that name the drive's epoch (a new
// one each start), so a client must follow @odata.nextLink and
// @odata.deltaLink verbatim; a token from an earlier start is 410
// resyncRequired, as Graph answers a delta token it no longer honours.

// driveToken is the opaque form of a drive page position.
func (d *drive) driveToken(kind string, a, b int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + "|" + d.epoch + "|" + strconv.FormatInt(a, 10) + "|" + strconv.FormatInt(b, 10)))
}

// parseDriveToken reads a token d issued; stale is set for a token of
// another epoch, ok is false for anything d did not issue.
func (d *drive) parseDriveToken(kind, tok string) (a, b int64, stale, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(tok, "="))
	if err != nil {
		return 0, 0, false, false
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 4 || parts[0] != kind {
		return 0, 0, false, false
	}
	a, err1 := strconv.ParseInt(parts[2], 10, 64)
	b, err2 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil || a < 0 || b < 0 {
		return 0, 0, false, false
	}
	if parts[1] != d.epoch {
		return 0, 0, true, true
	}
	return a, b, false, true
}

func newEpoch() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// queryValue reads a query parameter whose name is matched in any case.
func queryValue(r *http.Request, name string) (string, bool) {
	for k, v := range r.URL.Query() {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}

// pageSize is $top when given and smaller than the drive page size.
func (s *Server) pageSize(r *http.Request) int {
	n := s.cfg.Knobs.DrivePageSize
	if v, ok := queryValue(r, "$top"); ok {
		if t, err := strconv.Atoi(v); err == nil && t > 0 && t < n {
			n = t
		}
	}
	return n
}

// listChildren answers GET .../children, a page at a time.
func (s *Server) listChildren(w http.ResponseWriter, r *http.Request, d *drive, it *item) {
	var start int64
	if tok, ok := queryValue(r, "$skiptoken"); ok {
		var stale, valid bool
		start, _, stale, valid = d.parseDriveToken("c", tok)
		if !valid || stale {
			d.mu.Unlock()
			writeError(w, r, http.StatusBadRequest, "invalidRequest", "", "The $skiptoken is not valid; use the @odata.nextLink as returned.")
			return
		}
	}
	all := d.children(it.ID)
	start = min(start, int64(len(all)))
	end := min(start+int64(s.pageSize(r)), int64(len(all)))
	vals := []map[string]any{}
	for _, c := range all[start:end] {
		vals = append(vals, selectFields(s.driveItemJSON(d, c), r.URL.Query()))
	}
	out := map[string]any{"value": vals}
	if end < int64(len(all)) {
		out["@odata.nextLink"] = s.url + r.URL.EscapedPath() + "?" + keepQuery(r, "$select", "$top") + "$skiptoken=" + d.driveToken("c", end, 0)
	}
	d.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// keepQuery re-encodes the named parameters of r's query for a next link,
// each followed by "&".
func keepQuery(r *http.Request, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		if v, ok := queryValue(r, n); ok {
			b.WriteString(n + "=" + strings.ReplaceAll(v, " ", "%20") + "&")
		}
	}
	return b.String()
}

// fingerprint is what makes an item changed for delta.
func fingerprint(it *item) string {
	return fmt.Sprintf("%s|%s|%d|%d", it.ParentID, it.Name, it.IntID, it.ETagN)
}

// stamp gives every item changed since the last stamp a new change
// sequence number. Callers hold d.mu.
func (d *drive) stamp() {
	if d.stamps == nil {
		d.stamps = map[string]string{}
		d.seqs = map[string]int64{}
	}
	var changed []*item
	for id, it := range d.items {
		if id == d.rootID() {
			continue
		}
		if fp := fingerprint(it); d.stamps[id] != fp {
			d.stamps[id] = fp
			changed = append(changed, it)
		}
	}
	// Deterministic order within one stamp: by int id, then id.
	sort.Slice(changed, func(i, j int) bool {
		if changed[i].IntID != changed[j].IntID {
			return changed[i].IntID < changed[j].IntID
		}
		return changed[i].ID < changed[j].ID
	})
	for _, it := range changed {
		d.seq++
		d.seqs[it.ID] = d.seq
	}
}

// delta answers GET /drives/{id}/root/delta: every item (not the root)
// changed after the token's sequence, in change order, a page at a time;
// the last page carries @odata.deltaLink instead of a next link. Deleted
// items are not reported (the emulator keeps no tombstones).
func (s *Server) delta(w http.ResponseWriter, r *http.Request, d *drive, _ *item) {
	var after int64
	if tok, ok := queryValue(r, "token"); ok {
		var stale, valid bool
		after, _, stale, valid = d.parseDriveToken("d", tok)
		switch {
		case !valid:
			d.mu.Unlock()
			writeError(w, r, http.StatusBadRequest, "invalidRequest", "", "The delta token is not valid; use the @odata.nextLink or @odata.deltaLink as returned.")
			return
		case stale:
			d.mu.Unlock()
			writeError(w, r, http.StatusGone, "resyncRequired", "", "The delta token is no longer valid; start again without a token.")
			return
		}
	}
	d.stamp()
	var changed []*item
	for id, it := range d.items {
		if seq, ok := d.seqs[id]; ok && seq > after {
			changed = append(changed, it)
		}
	}
	sort.Slice(changed, func(i, j int) bool { return d.seqs[changed[i].ID] < d.seqs[changed[j].ID] })
	n := min(s.pageSize(r), len(changed))
	vals := []map[string]any{}
	last := after
	for _, c := range changed[:n] {
		vals = append(vals, selectFields(s.driveItemJSON(d, c), r.URL.Query()))
		last = d.seqs[c.ID]
	}
	if n == len(changed) && after == 0 && n == 0 {
		last = d.seq
	}
	link := s.url + r.URL.EscapedPath() + "?" + keepQuery(r, "$select", "$top") + "token=" + d.driveToken("d", last, 0)
	out := map[string]any{"value": vals}
	if n < len(changed) {
		out["@odata.nextLink"] = link
	} else {
		out["@odata.deltaLink"] = link
	}
	d.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}
