package wiring

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/spepackage"
	"github.com/spemigrate/spemigrate/shared/staging"
	"github.com/spemigrate/spemigrate/shared/state"
)

// SourceOpener opens the source a request names.
type SourceOpener interface {
	Open(r request.Request) (source.Source, error)
}

// StagingStager is the [pipeline.Stager] over shared/staging.
type StagingStager struct {
	// Stager is the process's one staging.Stager.
	Stager     *staging.Stager
	Sources    SourceOpener
	Targets    *TargetCache
	State      *state.Store
	FirstIntID int64
	// Folders finds the batch's folders the container holds already; nil
	// creates every folder (an empty container).
	Folders *FolderRefs
	// IntBase decides the floor of list-item ids; nil uses FirstIntID.
	IntBase *IntIDBase

	// folderIDs remembers folders' list-item ids (container id + "\x00" +
	// path key -> id): a folder's id never changes once claimed, and the
	// batches of a migration share their folders, so each process claims
	// a folder once instead of once per batch.
	folderIDs     sync.Map
	folderIDCount atomic.Int64
}

// maxFolderIDs bounds the folder id memory of a process.
const maxFolderIDs = 200_000

// prefetchIDs claims the list-item ids of items and their folders in
// batches; folders this process has seen are answered from memory, so on a
// first run the transactions hold new paths only and do not fail.
func (ss *StagingStager) prefetchIDs(ctx context.Context, ids *IntIDs, containerID string, items []state.Item, plan FolderPlan) error {
	folders, files := libraryPaths(items)
	var missing []string
	for _, f := range folders {
		if _, ok := plan.Existing[spepackage.PathKey(f)]; ok {
			continue // referenced, not created: no id of ours
		}
		if id, ok := ss.folderIDs.Load(containerID + "\x00" + spepackage.PathKey(f)); ok {
			ids.known[spepackage.PathKey(f)] = id.(int)
			continue
		}
		missing = append(missing, f)
	}
	if err := ids.Prefetch(ctx, append(missing, files...)); err != nil {
		return err
	}
	for _, f := range missing {
		if id, ok := ids.known[spepackage.PathKey(f)]; ok && ss.folderIDCount.Load() < maxFolderIDs {
			if _, loaded := ss.folderIDs.LoadOrStore(containerID+"\x00"+spepackage.PathKey(f), id); !loaded {
				ss.folderIDCount.Add(1)
			}
		}
	}
	return nil
}

// Stage implements [pipeline.Stager].
func (ss *StagingStager) Stage(ctx context.Context, m *state.Migration, b *state.Batch, items []state.Item, info graph.ContainerInfo) (pipeline.StageResult, error) {
	r := m.Request
	src, err := ss.Sources.Open(r)
	if err != nil {
		return pipeline.StageResult{}, fmt.Errorf("open source: %w", err)
	}
	gt, err := ss.Targets.Get(ctx, m.ContainerID)
	if err != nil {
		return pipeline.StageResult{}, fmt.Errorf("resolve target library: %w", err)
	}
	target, err := packageTarget(gt)
	if err != nil {
		return pipeline.StageResult{}, err
	}
	key, err := spepackage.DecodeKey(info.EncryptionKey)
	if err != nil {
		return pipeline.StageResult{}, errors.New("provisioned encryption key is malformed")
	}
	st := spepackage.SourceAzureStorage
	if r.Source.Kind == request.KindLocalFolder {
		st = spepackage.SourceFileShare
	}
	ids, plan, staged, out, err := ss.prepare(ctx, m, items)
	if err != nil {
		return pipeline.StageResult{}, err
	}
	req := staging.Request{
		Source:     src,
		Containers: staging.Containers{DataURL: info.DataContainerURI, MetadataURL: info.MetadataContainerURI, Key: key},
		Target:     target,
		Namespace:  Namespace(m.ContainerID, ""),
		SourceType: st,
		IDs:        ids,

		ExistingFolders: plan.Existing,
	}
	req.Identities = identities(r)
	for _, i := range staged {
		it := items[i]
		req.Batch.Items = append(req.Batch.Items, staging.Item{Path: it.Target, Versions: it.Versions})
		req.Batch.Bytes += it.Size()
		req.Batch.Blobs += len(it.Versions)
	}
	res, err := ss.Stager.Stage(ctx, req)
	if errors.Is(err, staging.ErrSASExpiring) || errors.Is(err, staging.ErrSASRejected) {
		return pipeline.StageResult{}, fmt.Errorf("%w: %w", pipeline.ErrSASTooShort, err)
	}
	if err != nil {
		return pipeline.StageResult{}, err
	}
	for j, ir := range res.Items {
		if ir.Error != "" && j < len(staged) {
			out.Failed[staged[j]] = ir.Error
		}
	}
	return out, nil
}

// prepare finds the batch's folders that the container holds (referenced,
// not created), fails the items a file in the container stands in the way
// of, and claims the list-item ids of the rest and their new folders above
// the library's highest; staged are the indexes of the items to stage.
func (ss *StagingStager) prepare(ctx context.Context, m *state.Migration, items []state.Item) (*IntIDs, FolderPlan, []int, pipeline.StageResult, error) {
	out := pipeline.StageResult{Failed: map[int]string{}}
	var plan FolderPlan
	if ss.Folders != nil {
		folders, _ := libraryPaths(items)
		var err error
		if plan, err = ss.Folders.Resolve(ctx, m.ID, m.ContainerID, Namespace(m.ContainerID, ""), folders); err != nil {
			return nil, plan, nil, out, err
		}
	}
	var staged []int
	var keep []state.Item
	for i, it := range items {
		if f, blocked := plan.Blocked(it.Target); blocked {
			out.Failed[i] = fmt.Sprintf("the target container has a file at %q where this item needs a folder; rename or remove that file, or migrate into another target folder", f)
			continue
		}
		staged, keep = append(staged, i), append(keep, it)
	}
	floor := ss.FirstIntID
	if ss.IntBase != nil {
		var err error
		if floor, err = ss.IntBase.Floor(ctx, m.ContainerID, m.ID); err != nil {
			return nil, plan, nil, out, err
		}
	}
	// The batch's files and their folders claim their ids in a few Table
	// transactions before the manifest asks for them one by one.
	ids := NewIntIDs(ss.State, m.ContainerID, floor, 64)
	if err := ss.prefetchIDs(ctx, ids, m.ContainerID, keep, plan); err != nil {
		return nil, plan, nil, out, err
	}
	return ids, plan, staged, out, nil
}

// FileID implements [pipeline.FileIDer]: the manifest's File@Id of an item.
func (ss *StagingStager) FileID(m *state.Migration, it state.Item) string {
	return spepackage.ObjectID(Namespace(m.ContainerID, ""), it.Target).String()
}

// AuthorLogin implements [pipeline.Authorer]: the login the package names
// as the item's author, read from the current version as Stage reads it.
func (ss *StagingStager) AuthorLogin(m *state.Migration, it state.Item) string {
	a, _ := identities(m.Request)(it.Current())
	return a.ClaimsLogin()
}

// identities is how a request's items get their author and editor, for
// the package and for the report alike: none when authors are not
// preserved, else from blob metadata through the request's user map.
func identities(r request.Request) func(source.Entry) (spepackage.Identity, spepackage.Identity) {
	if !r.Options.PreserveAuthors() {
		return func(source.Entry) (spepackage.Identity, spepackage.Identity) {
			return spepackage.Identity{}, spepackage.Identity{}
		}
	}
	return staging.MetadataIdentities(r.Options.UserMap)
}

var _ pipeline.Authorer = (*StagingStager)(nil)

func packageTarget(t graph.Target) (spepackage.Target, error) {
	var pt spepackage.Target
	var err error
	pt.SiteURL, pt.LibraryFolder = t.SiteURL, t.LibraryFolder
	if pt.WebID, err = uuid.Parse(t.WebID); err != nil {
		return pt, fmt.Errorf("target web id: %w", err)
	}
	if pt.ListID, err = uuid.Parse(t.ListID); err != nil {
		return pt, fmt.Errorf("target list id: %w", err)
	}
	if pt.RootFolderID, err = uuid.Parse(t.RootFolderID); err != nil {
		return pt, fmt.Errorf("target root folder id: %w", err)
	}
	return pt, nil
}

// libraryPaths lists the folders above items' targets and the targets,
// each once, parents before children.
func libraryPaths(items []state.Item) (folders, files []string) {
	seen := map[string]bool{}
	for _, it := range items {
		t := strings.Trim(it.Target, "/")
		files = append(files, t)
		segs := strings.Split(t, "/")
		for i := 1; i < len(segs); i++ {
			p := strings.Join(segs[:i], "/")
			if !seen[p] {
				seen[p] = true
				folders = append(folders, p)
			}
		}
	}
	return folders, files
}
