// Package joblog reads the import logs SharePoint writes back into a job's
// metadata container when the job ends (spec §7.5): a full log plus
// warning-only and error-only files, named Import-{jobId}-{run}.log, .wrn
// and .err, encrypted with the job's key and an IV in blob metadata.
//
// The provisioned SAS cannot list, so the names are guessed, and the line
// format is not documented. The parser therefore assumes nothing beyond
// "one line per entry": an entry is its level word (Error, Warning, …),
// the GUIDs it names and its tab- or comma-separated fields, and the
// caller matches those against what it sent.
package joblog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/spepackage"
)

// Kind is one of the three logs of a job run, by file extension.
type Kind string

const (
	Full     Kind = ".log"
	Warnings Kind = ".wrn"
	Errors   Kind = ".err"
)

// Name is the blob name of a run's log; run counts from 1 (SharePoint's
// totalRetryCount + 1).
func Name(jobID string, run int, k Kind) string {
	return fmt.Sprintf("Import-%s-%d%s", jobID, run, k)
}

// ErrNotWritten is returned when a log does not exist (yet): SharePoint
// copies the logs when the job leaves its queue, which may be after the
// final progress event.
var ErrNotWritten = errors.New("import log not written")

// Level is an entry's severity as the log spells it, normalised.
type Level string

const (
	LevelInfo    Level = "information"
	LevelWarning Level = "warning"
	LevelError   Level = "error"
	LevelFatal   Level = "fatalError"
	LevelUnknown Level = ""
)

// Failing reports whether the entry is an error of its object or the job.
func (l Level) Failing() bool { return l == LevelError || l == LevelFatal }

// Entry is one line of a log.
type Entry struct {
	Line  int
	Level Level
	// IDs are the GUIDs the line names, lower case without braces.
	IDs []string
	// Fields are the line split at tabs (or commas when it has no tab),
	// trimmed; Text is the last non-empty field, usually the message.
	Fields []string
	Text   string
}

// Log is one parsed log.
type Log struct {
	Name    string
	Kind    Kind
	Entries []Entry
}

// Reader fetches logs. Its zero value is ready to use.
type Reader struct {
	// ClientOptions configure the blob client (transport, retries).
	ClientOptions *container.ClientOptions
	// MaxBytes bounds a log's ciphertext (default 64 MiB): a log larger
	// than that is refused rather than held in memory.
	MaxBytes int64
}

// Read fetches, decrypts and parses one log from the metadata container
// (its SAS URL) with the job's base64 key.
func (r *Reader) Read(ctx context.Context, metadataURL, key, jobID string, run int, k Kind) (*Log, error) {
	name := Name(jobID, run, k)
	raw, err := r.download(ctx, metadataURL, key, name)
	if err != nil {
		return nil, err
	}
	entries, err := Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("import log %s: %w", name, err)
	}
	return &Log{Name: name, Kind: k, Entries: entries}, nil
}

func (r *Reader) download(ctx context.Context, metadataURL, key, name string) ([]byte, error) {
	limit := r.MaxBytes
	if limit <= 0 {
		limit = 64 << 20
	}
	k, err := spepackage.DecodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("import log %s: %w", name, err)
	}
	c, err := container.NewClientWithNoCredential(metadataURL, r.ClientOptions)
	if err != nil {
		// A URL parse error quotes the URL, SAS signature included.
		return nil, fmt.Errorf("import log %s: metadata container: %w", name, source.RedactError(err))
	}
	resp, err := c.NewBlobClient(name).DownloadStream(ctx, nil)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
			return nil, fmt.Errorf("%s: %w", name, ErrNotWritten)
		}
		return nil, fmt.Errorf("import log %s: %w", name, source.RedactError(err))
	}
	defer resp.Body.Close()
	if resp.ContentLength != nil && *resp.ContentLength > limit {
		return nil, fmt.Errorf("import log %s: %d bytes is over the %d-byte limit", name, *resp.ContentLength, limit)
	}
	ct, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("import log %s: read: %w", name, source.RedactError(err))
	}
	if int64(len(ct)) > limit {
		return nil, fmt.Errorf("import log %s: over the %d-byte limit", name, limit)
	}
	var iv []byte
	for mk, v := range resp.Metadata {
		if strings.EqualFold(mk, "IV") && v != nil {
			iv, err = base64.StdEncoding.DecodeString(*v)
			if err != nil || len(iv) != 16 {
				return nil, fmt.Errorf("import log %s: the IV metadata is not 16 bytes of base64", name)
			}
		}
	}
	if iv == nil {
		// Without encryption metadata the log is plain text.
		return ct, nil
	}
	plain, err := spepackage.Decrypt(ct, k, iv)
	if err != nil {
		return nil, fmt.Errorf("import log %s: %w", name, err)
	}
	return plain, nil
}

var guidRe = regexp.MustCompile(`\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?`)

// levels maps a field, lower-cased, to its level; the first field that is
// one of these words is the entry's level.
var levels = map[string]Level{
	"information": LevelInfo, "info": LevelInfo, "verbose": LevelInfo, "important": LevelWarning,
	"warning": LevelWarning, "warn": LevelWarning,
	"error": LevelError, "fatalerror": LevelFatal, "fatal": LevelFatal, "critical": LevelFatal,
}

// Parse reads a log's lines (a UTF-8 byte-order mark and blank lines are
// ignored).
func Parse(r io.Reader) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var out []Entry
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimPrefix(sc.Text(), "\ufeff")
		if strings.TrimSpace(line) == "" {
			continue
		}
		out = append(out, parseLine(n, line))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return out, nil
}

func parseLine(n int, line string) Entry {
	sep := "\t"
	if !strings.Contains(line, sep) {
		sep = ","
	}
	parts := strings.Split(line, sep)
	e := Entry{Line: n, Fields: make([]string, 0, len(parts))}
	for _, p := range parts {
		p = strings.Trim(strings.TrimSpace(p), `"`)
		e.Fields = append(e.Fields, p)
		if p != "" {
			e.Text = p
		}
		if l, ok := levels[strings.ToLower(p)]; ok && e.Level == LevelUnknown {
			e.Level = l
		}
	}
	for _, g := range guidRe.FindAllString(line, -1) {
		e.IDs = append(e.IDs, strings.ToLower(strings.Trim(g, "{}")))
	}
	return e
}
