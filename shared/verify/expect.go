package verify

import (
	"context"
	"fmt"
	"io"

	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/staging"
)

// FromReport builds what the target should hold after the migration of
// request r whose per-item report is rows: one Expect per file reported
// imported or renamed, at its reported target path with its reported size.
// With src (the migration's source, opened with the request's credentials)
// the source's times and author are expected too, as the request's preserve
// options say, and the content is read for the hash and byte comparisons.
// Files the report names that the source no longer lists are returned in
// gone: they cannot be compared and are the caller's to report.
func FromReport(ctx context.Context, r request.Request, rows []Row, src source.Source) (want []Expect, gone []string, err error) {
	byPath := map[string]Row{}
	var order []string
	for _, row := range rows {
		if row.Outcome != "imported" && row.Outcome != "renamed" {
			continue
		}
		if _, ok := byPath[row.SourcePath]; !ok {
			order = append(order, row.SourcePath)
		}
		byPath[row.SourcePath] = row // versions: the last row is the current one
	}
	var entries map[string]source.Entry
	if src != nil {
		if entries, err = listAll(ctx, src); err != nil {
			return nil, nil, err
		}
	}
	identities := staging.MetadataIdentities(r.Options.UserMap)
	for _, p := range order {
		row := byPath[p]
		w := Expect{Source: row.SourcePath, Target: row.TargetPath, Size: row.Size}
		if src != nil {
			e, ok := entries[p]
			if !ok {
				gone = append(gone, p)
				continue
			}
			if r.Options.PreserveTimestamps() {
				w.Created, w.Modified = e.Created, e.Modified
			}
			if a, _ := identities(e); r.Options.PreserveAuthors() && a.Login != "" {
				w.Author = a.Login
			}
			w.Open = func(ctx context.Context) (io.ReadCloser, error) { return src.Open(ctx, e) }
		}
		want = append(want, w)
	}
	return want, gone, nil
}

// listAll lists the whole source; for each path the last entry listed, the
// current version, wins.
func listAll(ctx context.Context, src source.Source) (map[string]source.Entry, error) {
	out := map[string]source.Entry{}
	cursor := ""
	for {
		pg, err := src.List(ctx, cursor, 5000)
		if err != nil {
			return nil, fmt.Errorf("verify: list source: %w", err)
		}
		for _, e := range pg.Entries {
			out[e.Path] = e
		}
		if pg.Next == "" || pg.Next == cursor {
			return out, nil
		}
		cursor = pg.Next
	}
}
