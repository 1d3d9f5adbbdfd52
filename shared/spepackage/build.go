package spepackage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
)

// The package's blob names, at the metadata container's root (§6.2).
const (
	ManifestFile       = "Manifest.xml"
	ExportSettingsFile = "ExportSettings.xml"
	SystemDataFile     = "SystemData.xml"
	RootObjectMapFile  = "RootObjectMap.xml"
	UserGroupFile      = "UserGroup.xml"
	LookupListMapFile  = "LookupListMap.xml"
	RequirementsFile   = "Requirements.xml"
	ViewFormsListFile  = "ViewFormsList.xml"
)

// Files lists the package's files in the order [Build] writes them.
var Files = []string{
	ManifestFile, UserGroupFile, ExportSettingsFile, SystemDataFile,
	RootObjectMapFile, LookupListMapFile, RequirementsFile, ViewFormsListFile,
}

// Package is everything [Build] needs.
type Package struct {
	Target     Target
	Namespace  uuid.UUID
	SourceType SourceType
	IDs        IntIDs
	Items      []Item
	// ExistingFolders are folders the library holds already that this
	// package must not create, by [PathKey] of their library path, with
	// their GUID (the folder's eTag GUID, sharepointIds.listItemUniqueId):
	// no SPFolder is emitted for them, and what they hold names them as
	// ParentId / ParentFolderId. A folder of another owner that the package
	// emitted with its own deterministic id would clash with it (spec §6.5).
	ExistingFolders map[string]uuid.UUID
	// Options tune what the package says; the zero value takes the
	// documented defaults.
	Options Options
}

// AuthorChoice records how an item's authorship was set.
type AuthorChoice string

const (
	// AuthorMapped: Author/ModifiedBy point at users in UserGroup.xml.
	AuthorMapped AuthorChoice = "mapped"
	// AuthorDefault: the item had no usable identity; SharePoint applies
	// its default.
	AuthorDefault AuthorChoice = "default"
)

// ItemReport says what the package holds for one object.
type ItemReport struct {
	Path        string // as given in Item.Path (relative to the destination)
	LibraryPath string // relative to the library root
	Folder      bool
	// Synthesised is set for a parent folder the package creates because
	// a file below it needs it; such folders carry no times or authors.
	Synthesised bool
	ID          uuid.UUID
	ListItemID  uuid.UUID
	IntID       int
	Author      AuthorChoice
	// VersionsDropped counts the oldest versions left out by
	// [Options.MaxVersions].
	VersionsDropped int
}

// Report describes a built package.
type Report struct {
	Items []ItemReport
	Users int // users declared in UserGroup.xml
}

// Build writes the eight files of a package. create is called once per file
// name (see [Files]) and the writer it returns is closed before the next one
// is created; an error from Close (a failed upload, say) stops the build.
// When writing a file fails, Build calls CloseWithError(err) instead of Close
// if the writer has that method, so an upload can abandon a partial file.
// Items are emitted parents first; every folder between the destination and
// an item that is not in ExistingFolders is created in the package (with a
// deterministic id), so each package stands on its own whatever order
// batches are imported in.
func Build(ctx context.Context, p Package, create func(name string) (io.WriteCloser, error)) (Report, error) {
	if err := p.Target.Validate(); err != nil {
		return Report{}, fmt.Errorf("build package: %w", err)
	}
	if p.Namespace == uuid.Nil {
		return Report{}, errors.New("build package: Namespace is empty: use a stable UUID for the target")
	}
	if p.IDs == nil {
		return Report{}, errors.New("build package: IDs is nil: pass the migration's list-item id allocator")
	}
	switch p.SourceType {
	case SourceAzureStorage, SourceFileShare:
	default:
		return Report{}, fmt.Errorf("build package: SourceType %q is not supported: use %q or %q", p.SourceType, SourceAzureStorage, SourceFileShare)
	}
	opts, err := p.Options.withDefaults()
	if err != nil {
		return Report{}, fmt.Errorf("build package: %w", err)
	}
	p.Options = opts
	items, err := ordered(p.Items)
	if err != nil {
		return Report{}, fmt.Errorf("build package: %w", err)
	}

	users := &userMap{index: map[string]int{}}
	var rep Report
	err = writeFile(create, ManifestFile, func(w io.Writer) error {
		var err error
		rep, err = writeManifest(ctx, w, p, items, users)
		return err
	})
	if err != nil {
		return Report{}, err
	}
	rep.Users = len(users.list)
	steps := []struct {
		name  string
		write func(io.Writer) error
	}{
		{UserGroupFile, users.write},
		{ExportSettingsFile, func(w io.Writer) error { return writeExportSettings(w, p.Target, p.SourceType) }},
		{SystemDataFile, func(w io.Writer) error { return writeSystemData(w, p.Target, opts, []string{ManifestFile}) }},
		{RootObjectMapFile, func(w io.Writer) error { return writeRootObjectMap(w, p.Target) }},
		{LookupListMapFile, func(w io.Writer) error {
			return writeEmptyRoot(w, "LookupLists", "urn:deployment-lookuplistmap-schema")
		}},
		{RequirementsFile, func(w io.Writer) error {
			return writeEmptyRoot(w, "Requirements", "urn:deployment-requirements-schema")
		}},
		{ViewFormsListFile, func(w io.Writer) error {
			return writeEmptyRoot(w, "ViewFormsList", "urn:deployment-viewformlist-schema")
		}},
	}
	for _, s := range steps {
		if err := writeFile(create, s.name, s.write); err != nil {
			return Report{}, err
		}
	}
	return rep, nil
}

func writeFile(create func(string) (io.WriteCloser, error), name string, write func(io.Writer) error) error {
	w, err := create(name)
	if err != nil {
		return fmt.Errorf("build package: open %s: %w", name, err)
	}
	if err := write(w); err != nil {
		if a, ok := w.(interface{ CloseWithError(error) error }); ok {
			a.CloseWithError(err)
		} else {
			w.Close()
		}
		return fmt.Errorf("build package: write %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("build package: close %s: %w", name, err)
	}
	return nil
}

func choice(ids ...string) AuthorChoice {
	for _, id := range ids {
		if id != "" {
			return AuthorMapped
		}
	}
	return AuthorDefault
}

func writeExportSettings(w io.Writer, t Target, st SourceType) error {
	x := newXW(w)
	x.start("ExportSettings", "xmlns", "urn:deployment-exportsettings-schema",
		"SiteUrl", t.siteURL(), "FileLocation", "", "IncludeSecurity", "None",
		"IncludeVersions", "All", "SourceType", string(st), "IgnoreWebParts", "true")
	x.start("ExportObjects")
	x.empty("DeploymentObject", "Id", t.ListID.String(), "Type", "List", "ParentId", t.WebID.String())
	x.end("ExportObjects")
	x.end("ExportSettings")
	return x.close()
}

func writeSystemData(w io.Writer, t Target, o Options, manifests []string) error {
	x := newXW(w)
	x.start("SystemData", "xmlns", "urn:deployment-systemdata-schema")
	x.empty("SchemaVersion", "Version", "15.0.0.0", "Build", o.SchemaBuild, "DatabaseVersion", o.DatabaseVersion, "SiteVersion", "15")
	x.start("ManifestFiles")
	for _, m := range manifests {
		x.empty("ManifestFile", "Name", m)
	}
	x.end("ManifestFiles")
	x.start("SystemObjects")
	x.empty("SystemObject", "Id", t.WebID.String(), "Type", "Web", "Url", t.webPath())
	x.end("SystemObjects")
	x.empty("RootWebOnlyLists")
	x.end("SystemData")
	return x.close()
}

func writeRootObjectMap(w io.Writer, t Target) error {
	x := newXW(w)
	web := t.webPath()
	x.start("RootObjects", "xmlns", "urn:deployment-rootobjectmap-schema")
	x.empty("RootObject", "Id", t.ListID.String(), "Type", "List", "ParentId", t.WebID.String(),
		"WebUrl", web, "Url", strings.TrimRight(web, "/")+"/"+t.library(), "IsDependency", "false")
	x.end("RootObjects")
	return x.close()
}

func writeEmptyRoot(w io.Writer, root, ns string) error {
	x := newXW(w)
	x.empty(root, "xmlns", ns)
	return x.close()
}
