package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// Import records what was last imported at one library path of a container,
// so a later migration can leave an unchanged source file alone.
type Import struct {
	ContainerID string
	// LibraryPath is the path in the container's library (target folder
	// included); matched case-insensitively, as SharePoint does.
	LibraryPath string
	// Source identifies the source the file came from (kind and location,
	// no secret); SourcePath is the file's path in it.
	Source     string
	SourcePath string
	// The source file's current version as imported.
	ETag     string
	Size     int64
	Modified time.Time
	Versions int64
	// MigrationID and BatchID name the import.
	MigrationID string
	BatchID     string
	ImportedAt  time.Time
}

// importRK is the row key of an import: the lower-cased library path with
// the characters row keys refuse (and "%", the escape, and "~") written as
// %XX, so a folder's imports are neighbours in the table and one range
// query answers a page of lookups. A path whose encoding would pass Table
// Storage's 1 KiB key limit is keyed "~" + its SHA-256 instead (no encoded
// path starts with "~").
func importRK(libraryPath string) string {
	p := strings.ToLower(strings.Trim(libraryPath, "/"))
	var b strings.Builder
	for _, r := range p {
		switch {
		case r == '/' || r == '\\' || r == '#' || r == '?' || r == '%' || r == '~' || r < 0x20 || (r >= 0x7f && r <= 0x9f):
			var buf [4]byte
			for _, c := range buf[:utf8.EncodeRune(buf[:], r)] {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		default:
			b.WriteRune(r)
		}
	}
	if b.Len() > maxImportRK {
		sum := sha256.Sum256([]byte(p))
		return "~" + hex.EncodeToString(sum[:])
	}
	return b.String()
}

// maxImportRK keeps row keys well under Table Storage's 1 KiB.
const maxImportRK = 900

// PutImports records imports (insert or replace, one row per container and
// library path, in transactions of up to 100 rows per container).
func (s *Store) PutImports(ctx context.Context, imports []Import) error {
	byContainer := map[string][]aztables.TransactionAction{}
	var order []string
	now := s.now().UTC()
	for _, im := range imports {
		if err := checkKey("container id", im.ContainerID); err != nil {
			return err
		}
		if im.LibraryPath == "" {
			return fmt.Errorf("state: import into container %s: LibraryPath is empty", im.ContainerID)
		}
		if im.ImportedAt.IsZero() {
			im.ImportedAt = now
		}
		p := props{}
		p.setStr("LibraryPath", im.LibraryPath)
		p.setStr("Source", im.Source)
		p.setStr("SourcePath", im.SourcePath)
		p.setStr("ETag", im.ETag)
		p.setI64("Size", im.Size)
		p.setTime("Modified", im.Modified)
		p.setI64("Versions", im.Versions)
		p.setStr("MigrationID", im.MigrationID)
		p.setStr("BatchID", im.BatchID)
		p.setTime("ImportedAt", im.ImportedAt)
		data, err := marshalEntity(im.ContainerID, importRK(im.LibraryPath), p)
		if err != nil {
			return err
		}
		if _, ok := byContainer[im.ContainerID]; !ok {
			order = append(order, im.ContainerID)
		}
		byContainer[im.ContainerID] = append(byContainer[im.ContainerID], aztables.TransactionAction{
			ActionType: aztables.TransactionTypeInsertReplace, Entity: data,
		})
	}
	for _, cid := range order {
		// The flag goes first: a planner that sees it unset knows no
		// import into the container has been recorded.
		if err := s.markImports(ctx, cid); err != nil {
			return err
		}
		if err := s.submit(ctx, s.imports, dedupeActions(byContainer[cid]), "record imports into container "+cid); err != nil {
			return err
		}
	}
	return nil
}

// GetImport returns what was last imported at a library path of a
// container; ErrNotFound if nothing was recorded there.
func (s *Store) GetImport(ctx context.Context, containerID, libraryPath string) (Import, error) {
	if err := checkKey("container id", containerID); err != nil {
		return Import{}, err
	}
	e, found, err := getRaw(ctx, s.imports, containerID, importRK(libraryPath), "get import into container "+containerID)
	if err != nil {
		return Import{}, err
	}
	if !found {
		return Import{}, fmt.Errorf("import of %q into container %s: %w", libraryPath, containerID, ErrNotFound)
	}
	return importFrom(e), nil
}

func importFrom(e rawEntity) Import {
	p := e.p
	return Import{
		ContainerID: e.pk, LibraryPath: p.str("LibraryPath"), Source: p.str("Source"), SourcePath: p.str("SourcePath"),
		ETag: p.str("ETag"), Size: p.i64("Size"), Modified: p.time("Modified"), Versions: p.i64("Versions"),
		MigrationID: p.str("MigrationID"), BatchID: p.str("BatchID"), ImportedAt: p.time("ImportedAt"),
	}
}

// markImports sets the container's HasImports flag, once per Store.
func (s *Store) markImports(ctx context.Context, containerID string) error {
	if _, ok := s.flagged.Load(containerID); ok {
		return nil
	}
	_, err := s.UpdateTarget(ctx, containerID, func(t *Target) error {
		if t.HasImports {
			return ErrNoChange
		}
		t.HasImports = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: mark imports into container %s: %w", containerID, err)
	}
	s.flagged.Store(containerID, true)
	return nil
}

// GetImports returns what was last imported at each of libraryPaths in a
// container, by index into libraryPaths (paths with nothing recorded are
// absent). A container with no recorded imports costs one read; otherwise
// one range query over the paths' row keys answers them (the table keeps
// a folder's imports together), scanning at most a few rows per path
// before the rest are read one by one.
func (s *Store) GetImports(ctx context.Context, containerID string, libraryPaths []string) (map[int]Import, error) {
	if err := checkKey("container id", containerID); err != nil {
		return nil, err
	}
	out := map[int]Import{}
	if len(libraryPaths) == 0 {
		return out, nil
	}
	t, err := s.GetTarget(ctx, containerID)
	if errors.Is(err, ErrNotFound) || (err == nil && !t.HasImports) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	want := map[string][]int{}
	var ranged []string
	for i, p := range libraryPaths {
		rk := importRK(p)
		if _, ok := want[rk]; !ok && !strings.HasPrefix(rk, "~") {
			ranged = append(ranged, rk)
		}
		want[rk] = append(want[rk], i)
	}
	done := map[string]bool{}
	if len(ranged) > 0 {
		slices.Sort(ranged)
		lo, hi := ranged[0], ranged[len(ranged)-1]
		filter := "PartitionKey eq " + quote(containerID) + " and RowKey ge " + quote(lo) + " and RowKey le " + quote(hi)
		budget := 4*len(ranged) + s.importScan
		last, scanned := "", 0
		err := s.list(ctx, s.imports, filter, budget, func(e rawEntity) {
			scanned++
			last = e.rk
			if idx, ok := want[e.rk]; ok {
				im := importFrom(e)
				for _, i := range idx {
					out[i] = im
				}
			}
		})
		if err != nil {
			return nil, fmt.Errorf("state: imports into container %s: %w", containerID, err)
		}
		for _, rk := range ranged {
			// Rows come in key order: below the last row seen, or with
			// the whole range seen, absence is an answer.
			if scanned < budget || rk <= last {
				done[rk] = true
			}
		}
	}
	for rk, idx := range want {
		if done[rk] {
			continue
		}
		e, found, err := getRaw(ctx, s.imports, containerID, rk, "get import into container "+containerID)
		if err != nil {
			return nil, err
		}
		if !found {
			continue
		}
		im := importFrom(e)
		for _, i := range idx {
			out[i] = im
		}
	}
	return out, nil
}
