package stack

import (
	"context"
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
