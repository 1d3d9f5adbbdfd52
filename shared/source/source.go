// Package source enumerates and reads the content a migration moves: an Azure
// Blob container (optionally under a prefix) or a local folder.
//
// Sources are paged and resumable: List returns at most max entries after the
// cursor, and the cursor it returns can be stored and handed back after a crash.
package source

import (
	"context"
	"io"
	"time"
)

// Entry is one file in a source. Folders are implied by paths.
type Entry struct {
	// Path is slash-separated and relative to the source root, exactly as the
	// source names it (no normalisation: the naming policy decides the target).
	Path       string
	Size       int64
	Created    time.Time // UTC; zero when the source does not know it
	Modified   time.Time // UTC
	ETag       string
	ContentMD5 []byte
	// Metadata holds the blob's metadata with keys lower-cased (Azure returns
	// them in different cases from different calls).
	Metadata map[string]string
	// VersionID names a blob version when versions were asked for; the
	// entries for one path then come oldest first, the current one last.
	VersionID string
}

// Page is one slice of a listing plus the cursor that resumes after it.
type Page struct {
	Entries []Entry
	// Next resumes the listing after this page; empty when the listing is done.
	Next string
}

// Source is what the pipeline needs from any source.
type Source interface {
	// List returns up to max entries after cursor ("" starts at the beginning).
	List(ctx context.Context, cursor string, max int) (Page, error)
	// Open streams one entry's bytes.
	Open(ctx context.Context, e Entry) (io.ReadCloser, error)
}

var (
	_ Source = (*Blob)(nil)
	_ Source = (*Local)(nil)
)
