package stack

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
)

func TestAzuriteServesBlobAndTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{Azurite: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir
	defer s.Close()

	bc, err := azblob.NewClientFromConnectionString(s.StorageConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bc.CreateContainer(ctx, "probe", nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
	if _, err := bc.UploadBuffer(ctx, "probe", "a.txt", []byte("hello"), nil); err != nil {
		t.Fatalf("upload: %v", err)
	}
	tc, err := aztables.NewServiceClientFromConnectionString(s.StorageConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.CreateTable(ctx, "probe", nil); err != nil {
		t.Fatalf("create table: %v", err)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := bc.CreateContainer(ctx, "after", nil); err == nil {
		t.Fatal("Azurite still answers after Close")
	}
	if !strings.HasPrefix(dir, "/") {
		t.Fatalf("data dir %q is not absolute", dir)
	}
}

// TestRestartAzuriteKeepsData: after RestartAzurite the same endpoints serve
// the blobs and table rows written before it.
func TestRestartAzuriteKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{Azurite: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bc, err := azblob.NewClientFromConnectionString(s.StorageConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bc.CreateContainer(ctx, "kept", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.UploadBuffer(ctx, "kept", "a.txt", []byte("hello"), nil); err != nil {
		t.Fatal(err)
	}
	svc, err := aztables.NewServiceClientFromConnectionString(s.StorageConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateTable(ctx, "kept", nil); err != nil {
		t.Fatal(err)
	}
	tc := svc.NewClient("kept")
	if _, err := tc.AddEntity(ctx, []byte(`{"PartitionKey":"p","RowKey":"r","V":"before"}`), nil); err != nil {
		t.Fatal(err)
	}
	endpoint := s.BlobEndpoint
	if err := s.RestartAzurite(ctx); err != nil {
		t.Fatal(err)
	}
	if s.BlobEndpoint != endpoint {
		t.Fatalf("endpoint changed from %s to %s", endpoint, s.BlobEndpoint)
	}
	resp, err := bc.DownloadStream(ctx, "kept", "a.txt", nil)
	if err != nil {
		t.Fatalf("blob after restart: %v", err)
	}
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if b.String() != "hello" {
		t.Errorf("blob after restart: %q", b.String())
	}
	ent, err := tc.GetEntity(ctx, "p", "r", nil)
	if err != nil {
		t.Fatalf("table row after restart: %v", err)
	}
	if !strings.Contains(string(ent.Value), `"before"`) {
		t.Errorf("table row after restart: %s", ent.Value)
	}
}
