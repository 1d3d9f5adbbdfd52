package spepackage

import "fmt"

// DirNameForm is how ListItem@DirName spells the parent folder (§6.5: the
// samples use both forms and the docs do not settle it).
type DirNameForm string

const (
	// DirNameWebRelative: "Document Library/Contracts" (the default).
	DirNameWebRelative DirNameForm = "webRelative"
	// DirNameServerRelative: "/contentstorage/CSP_<guid>/Document Library/Contracts".
	DirNameServerRelative DirNameForm = "serverRelative"
)

// Defaults for [Options].
const (
	// DefaultSchemaBuild and DefaultDatabaseVersion are SystemData's
	// SchemaVersion@Build and @DatabaseVersion from the docs' example; they
	// are meant to match the target farm (§6.3.2).
	DefaultSchemaBuild     = "16.0.3111.1200"
	DefaultDatabaseVersion = "11552"
	// DefaultMaxVersions is SharePoint's default major-version limit of a
	// document library: older versions would be trimmed on import anyway.
	DefaultMaxVersions = 500
)

// Options tune a package. Zero values take the defaults noted.
type Options struct {
	// SchemaBuild is SystemData SchemaVersion@Build (default
	// [DefaultSchemaBuild]).
	SchemaBuild string
	// DatabaseVersion is SchemaVersion@DatabaseVersion (default
	// [DefaultDatabaseVersion]).
	DatabaseVersion string
	// DirName is the form of ListItem@DirName (default
	// [DirNameWebRelative]).
	DirName DirNameForm
	// MaxVersions caps the versions written per file (default
	// [DefaultMaxVersions]; negative means no cap). A file with more keeps
	// its newest MaxVersions, and [ItemReport.VersionsDropped] says how
	// many older ones were left out.
	MaxVersions int
}

func (o Options) withDefaults() (Options, error) {
	if o.SchemaBuild == "" {
		o.SchemaBuild = DefaultSchemaBuild
	}
	if o.DatabaseVersion == "" {
		o.DatabaseVersion = DefaultDatabaseVersion
	}
	switch o.DirName {
	case "":
		o.DirName = DirNameWebRelative
	case DirNameWebRelative, DirNameServerRelative:
	default:
		return o, fmt.Errorf("Options.DirName %q: use %q or %q", o.DirName, DirNameWebRelative, DirNameServerRelative)
	}
	if o.MaxVersions == 0 {
		o.MaxVersions = DefaultMaxVersions
	}
	return o, nil
}
