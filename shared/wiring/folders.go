package wiring

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"strings"
	"sync"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/spepackage"
	"github.com/spemigrate/spemigrate/shared/state"
)

// DriveLookup is what the folder walk asks Graph.
type DriveLookup interface {
	ItemByPath(ctx context.Context, driveID, libraryPath string) (graph.DriveEntry, error)
	Children(ctx context.Context, driveID, libraryPath string, top int) ([]graph.DriveEntry, error)
}

// FolderRefs finds which of a batch's folders the target container holds
// already, so the package references them by their GUID instead of
// creating a folder of the same name with our deterministic id (which
// SharePoint refuses as an id conflict, failing everything below it).
//
// The walk is top-down: a folder whose parent does not exist does not
// exist either, so Graph is only asked about the outermost folders (one
// GET by path each) and about the children of folders that exist (one
// listing each). What the walk learns is claimed in the migration's claims
// (folderref|<path key>), so later batches of the migration, in any
// process, read it from Table Storage instead of asking again; a new
// migration walks again, so a folder created or removed by someone else
// in between is seen.
type FolderRefs struct {
	Graph DriveLookup
	State *state.Store
	// Top is the page size asked for children listings; 0 is Graph's.
	Top int

	// known remembers answers in this process (migration + "\x00" + path
	// key -> state): a claim never changes once taken, and the batches of
	// a migration share their folders, so a process reads each once.
	mu    sync.Mutex
	known map[string]string
	// calls shares one Graph lookup among the batches that start together
	// (before the first has claimed its answers).
	calls singleflight.Group
}

// maxKnownFolders bounds the folder answers a process remembers.
const maxKnownFolders = 200_000

// folderRefPrefix starts the claim key of a folder's answer.
const folderRefPrefix = "folderref|"

// What a folderref claim holds besides an existing folder's GUID.
const (
	folderOurs = "ours" // absent when looked at: the package creates it
	folderFile = "file" // a file holds the path
)

// FolderPlan is what the walk found for a batch's folders.
type FolderPlan struct {
	// Existing are folders to reference, by spepackage.PathKey.
	Existing map[string]uuid.UUID
	// Files are folder paths held by a file in the container (by path key,
	// with the path as the batch names it): items below them cannot be
	// imported.
	Files map[string]string
}

// Blocked returns the folder above libraryPath that a file holds, if any.
func (p FolderPlan) Blocked(libraryPath string) (string, bool) {
	segs := strings.Split(strings.Trim(libraryPath, "/"), "/")
	for i := 1; i < len(segs); i++ {
		if f, ok := p.Files[spepackage.PathKey(strings.Join(segs[:i], "/"))]; ok {
			return f, true
		}
	}
	return "", false
}

// Resolve walks folders (library paths, parents before children, as
// libraryPaths returns them) in containerID for migrationID; ns is the
// package namespace, whose folder ids mark folders of ours.
func (fr *FolderRefs) Resolve(ctx context.Context, migrationID, containerID string, ns uuid.UUID, folders []string) (FolderPlan, error) {
	plan := FolderPlan{Existing: map[string]uuid.UUID{}, Files: map[string]string{}}
	if len(folders) == 0 {
		return plan, nil
	}
	keys := make([]string, len(folders))
	known := map[string]string{}
	var unknown []string
	fr.mu.Lock()
	for i, f := range folders {
		keys[i] = folderRefPrefix + spepackage.PathKey(f)
		if v, ok := fr.known[migrationID+"\x00"+keys[i]]; ok {
			known[keys[i]] = v
		} else {
			unknown = append(unknown, keys[i])
		}
	}
	fr.mu.Unlock()
	if len(unknown) > 0 {
		stored, err := fr.State.Claimed(ctx, migrationID, unknown)
		if err != nil {
			return plan, fmt.Errorf("read known folders: %w", err)
		}
		maps.Copy(known, stored)
	}
	answers := map[string]string{} // path key -> ours | file | GUID
	var newKeys, newVals []string
	w := walk{fr: fr, containerID: containerID, ns: ns, children: map[string][]graph.DriveEntry{}}
	for i, f := range folders {
		k := spepackage.PathKey(f)
		if _, done := answers[k]; done {
			continue // the same folder in other case
		}
		v, ok := known[keys[i]]
		if !ok {
			// A batch walking alongside may have learned it meanwhile.
			if v, ok = fr.recall(migrationID, k); !ok {
				var err error
				if v, err = w.lookup(ctx, f, answers); err != nil {
					return plan, err
				}
				fr.remember(migrationID, map[string]string{k: v})
			}
			newKeys, newVals = append(newKeys, keys[i]), append(newVals, v)
		}
		answers[k] = v
	}
	if len(newKeys) > 0 {
		// A concurrent batch may have claimed first; its answer is the
		// same walk's, and holding one answer keeps the batches agreeing.
		held, err := fr.State.ClaimMany(ctx, migrationID, newKeys, newVals)
		if err != nil {
			return plan, fmt.Errorf("record known folders: %w", err)
		}
		for i, k := range newKeys {
			answers[strings.TrimPrefix(k, folderRefPrefix)] = held[i]
		}
	}
	fr.remember(migrationID, answers)
	for _, f := range folders {
		k := spepackage.PathKey(f)
		switch v := answers[k]; v {
		case folderOurs:
		case folderFile:
			plan.Files[k] = f
		default:
			id, err := uuid.Parse(v)
			if err != nil {
				return plan, fmt.Errorf("known folder %q: malformed GUID %q", f, v)
			}
			plan.Existing[k] = id
		}
	}
	return plan, nil
}

func (fr *FolderRefs) recall(migrationID, key string) (string, bool) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	v, ok := fr.known[migrationID+"\x00"+folderRefPrefix+key]
	return v, ok
}

func (fr *FolderRefs) remember(migrationID string, answers map[string]string) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.known == nil || len(fr.known)+len(answers) > maxKnownFolders {
		fr.known = map[string]string{}
	}
	for k, v := range answers {
		fr.known[migrationID+"\x00"+folderRefPrefix+k] = v
	}
}

// walk is one Resolve's Graph lookups; children are listed once per folder.
type walk struct {
	fr          *FolderRefs
	containerID string
	ns          uuid.UUID
	children    map[string][]graph.DriveEntry
}

// lookup finds what folder is in the container, given what its ancestors
// are (answers, filled parents first).
func (w *walk) lookup(ctx context.Context, folder string, answers map[string]string) (string, error) {
	parent := path.Dir(strings.Trim(folder, "/"))
	if parent == "." {
		v, err, _ := w.fr.calls.Do(w.containerID+"\x00item\x00"+spepackage.PathKey(folder), func() (any, error) {
			return w.fr.Graph.ItemByPath(ctx, w.containerID, folder)
		})
		e, _ := v.(graph.DriveEntry)
		if errors.Is(err, graph.ErrNotFound) {
			return folderOurs, nil
		}
		if err != nil {
			return "", fmt.Errorf("look up folder %q in the target container: %w", folder, err)
		}
		return w.entryState(folder, e), nil
	}
	pk := spepackage.PathKey(parent)
	switch answers[pk] {
	case folderOurs, folderFile, "":
		// Below a folder that does not exist, is a file or is ours, nothing
		// of another owner is expected: our folders hold what we import.
		return folderOurs, nil
	}
	kids, ok := w.children[pk]
	if !ok {
		v, err, _ := w.fr.calls.Do(w.containerID+"\x00children\x00"+pk, func() (any, error) {
			return w.fr.Graph.Children(ctx, w.containerID, parent, w.fr.Top)
		})
		if err != nil {
			return "", fmt.Errorf("list folder %q in the target container: %w", parent, err)
		}
		kids = v.([]graph.DriveEntry)
		w.children[pk] = kids
	}
	name := path.Base(folder)
	for _, e := range kids {
		// SharePoint names are case-insensitive.
		if strings.EqualFold(e.Name, name) {
			return w.entryState(folder, e), nil
		}
	}
	return folderOurs, nil
}

// entryState is what an existing item at folder means: a file in the way,
// a folder an earlier run of ours created (it carries our deterministic
// id, so the package may emit it again: same id, replace semantics), or a
// folder of another owner to reference.
func (w *walk) entryState(folder string, e graph.DriveEntry) string {
	switch {
	case !e.Folder:
		return folderFile
	case e.GUID == spepackage.ObjectID(w.ns, folder).String():
		return folderOurs
	}
	return e.GUID
}
