package joblog_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/shared/joblog"
	"github.com/spemigrate/spemigrate/shared/spepackage"
)

func TestParse(t *testing.T) {
	const log = "\ufeff2026-12-02T10:00:00.000Z\tInformation\t\t\t\tJob started\n" +
		"\n" +
		"2026-12-02T10:00:01.000Z\tError\tfile\t6f1c2d3e-0000-4000-8000-00000000abcd\tDocument Library/a/b.txt\tFile 'b.txt' could not be imported\n" +
		"2026-12-02T10:00:02.000Z,Warning,listItem,{6F1C2D3E-0000-4000-8000-00000000ABCE},\"Document Library/c.txt\",Failed to ensure user\n" +
		"just a message with no level\n" +
		"FatalError\tThe job ended abnormally\n"
	es, err := joblog.Parse(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 5 {
		t.Fatalf("%d entries, want 5 (the blank line is not one): %+v", len(es), es)
	}
	want := []struct {
		line  int
		level joblog.Level
		id    string
		text  string
	}{
		{1, joblog.LevelInfo, "", "Job started"},
		{3, joblog.LevelError, "6f1c2d3e-0000-4000-8000-00000000abcd", "File 'b.txt' could not be imported"},
		{4, joblog.LevelWarning, "6f1c2d3e-0000-4000-8000-00000000abce", "Failed to ensure user"},
		{5, joblog.LevelUnknown, "", "just a message with no level"},
		{6, joblog.LevelFatal, "", "The job ended abnormally"},
	}
	for i, w := range want {
		e := es[i]
		id := ""
		if len(e.IDs) > 0 {
			id = e.IDs[0]
		}
		if e.Line != w.line || e.Level != w.level || id != w.id || e.Text != w.text {
			t.Errorf("entry %d: line %d level %q id %q text %q; want %+v", i, e.Line, e.Level, id, e.Text, w)
		}
	}
	if got := es[1].Fields[4]; got != "Document Library/a/b.txt" {
		t.Errorf("path field %q", got)
	}
	if got := es[2].Fields[4]; got != "Document Library/c.txt" {
		t.Errorf("quoted path field %q", got)
	}
	if !es[1].Level.Failing() || !es[4].Level.Failing() || es[2].Level.Failing() {
		t.Error("Failing: want error and fatalError only")
	}
}

var local *stack.Stack

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s, err := stack.Start(ctx, stack.Options{Azurite: true})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start local stack:", err)
		os.Exit(1)
	}
	local = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

// metadataContainer is a container with a read-only SAS, as a job's
// metadata container is to its reader, and a shared-key client to write it.
func metadataContainer(t *testing.T) (*container.Client, string) {
	t.Helper()
	name := fmt.Sprintf("meta-%d", time.Now().UnixNano())
	c, err := container.NewClientFromConnectionString(local.StorageConnectionString, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	u, err := c.GetSASURL(sas.ContainerPermissions{Read: true}, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, u
}

func upload(t *testing.T, c *container.Client, name, text string, key []byte) {
	t.Helper()
	var body io.Reader = strings.NewReader(text)
	md := map[string]*string{}
	if key != nil {
		iv, err := spepackage.NewIV()
		if err != nil {
			t.Fatal(err)
		}
		er, err := spepackage.NewEncryptReader(body, key, iv)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := io.ReadAll(er)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(ct)
		v := spepackage.IVValue(iv)
		md["IV"] = &v
	}
	if _, err := c.NewBlockBlobClient(name).UploadStream(context.Background(), body, &blockblob.UploadStreamOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
}

// TestRead reads logs from Azurite over a read-only SAS: encrypted with the
// job key and an IV in metadata, in plain text, missing (not yet written),
// with the wrong key, and over the size limit.
func TestRead(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Azurite")
	}
	ctx := context.Background()
	c, sasURL := metadataContainer(t)
	key := make([]byte, 32)
	rand.Read(key)
	b64 := base64.StdEncoding.EncodeToString(key)
	const job = "0f0e0d0c-0000-4000-8000-000000000001"
	upload(t, c, joblog.Name(job, 1, joblog.Full), "t\tInformation\tfile\t\tDocument Library/a.txt\tImported\nt\tError\tfile\t\tDocument Library/b.txt\tno\n", key)
	upload(t, c, joblog.Name(job, 2, joblog.Errors), "t\tError\tfile\t\tDocument Library/b.txt\tno\n", nil)

	r := &joblog.Reader{}
	lg, err := r.Read(ctx, sasURL, b64, job, 1, joblog.Full)
	if err != nil {
		t.Fatal(err)
	}
	if lg.Name != "Import-"+job+"-1.log" || len(lg.Entries) != 2 || lg.Entries[1].Level != joblog.LevelError {
		t.Errorf("encrypted log: %s %+v", lg.Name, lg.Entries)
	}
	if lg, err := r.Read(ctx, sasURL, b64, job, 2, joblog.Errors); err != nil || len(lg.Entries) != 1 {
		t.Errorf("plain log: %v %+v", err, lg)
	}
	if _, err := r.Read(ctx, sasURL, b64, job, 3, joblog.Full); !errors.Is(err, joblog.ErrNotWritten) {
		t.Errorf("missing log: %v, want ErrNotWritten", err)
	}
	other := make([]byte, 32)
	rand.Read(other)
	_, err = r.Read(ctx, sasURL, base64.StdEncoding.EncodeToString(other), job, 1, joblog.Full)
	if err == nil || errors.Is(err, joblog.ErrNotWritten) {
		t.Errorf("wrong key: %v, want a decryption error", err)
	}
	if err != nil && strings.Contains(err.Error(), "sig=") {
		t.Errorf("error holds the SAS signature: %v", err)
	}
	small := &joblog.Reader{MaxBytes: 16}
	if _, err := small.Read(ctx, sasURL, b64, job, 1, joblog.Full); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("over the limit: %v", err)
	}
}
