package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

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

func importRK(libraryPath string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.Trim(libraryPath, "/"))))
	return hex.EncodeToString(sum[:])
}

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
	resp, err := s.imports.GetEntity(ctx, containerID, importRK(libraryPath), nil)
	if isNotFound(err) {
		return Import{}, fmt.Errorf("import of %q into container %s: %w", libraryPath, containerID, ErrNotFound)
	}
	if err != nil {
		return Import{}, storageErr("get import into container "+containerID, err)
	}
	e, err := unmarshalEntity(resp.Value, resp.ETag)
	if err != nil {
		return Import{}, err
	}
	p := e.p
	return Import{
		ContainerID: e.pk, LibraryPath: p.str("LibraryPath"), Source: p.str("Source"), SourcePath: p.str("SourcePath"),
		ETag: p.str("ETag"), Size: p.i64("Size"), Modified: p.time("Modified"), Versions: p.i64("Versions"),
		MigrationID: p.str("MigrationID"), BatchID: p.str("BatchID"), ImportedAt: p.time("ImportedAt"),
	}, nil
}
