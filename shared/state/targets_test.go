package state

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestReserveIntIDsPerContainer(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	const c1, c2 = "b!container-one", "b!container-two"
	if _, err := s.GetTarget(ctx, c1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetTarget before any reservation: %v, want ErrNotFound", err)
	}
	// The floor applies to a new container, and to one whose counter is below it.
	if from, err := s.ReserveIntIDs(ctx, c1, 1000, 10); err != nil || from != 1000 {
		t.Fatalf("first reservation: %d, %v; want 1000", from, err)
	}
	if from, err := s.ReserveIntIDs(ctx, c1, 1000, 10); err != nil || from != 1010 {
		t.Fatalf("second reservation: %d, %v; want 1010", from, err)
	}
	if from, err := s.ReserveIntIDs(ctx, c1, 5000, 10); err != nil || from != 5000 {
		t.Fatalf("reservation under a higher floor: %d, %v; want 5000", from, err)
	}
	if from, err := s.ReserveIntIDs(ctx, c2, 1000, 10); err != nil || from != 1000 {
		t.Fatalf("another container has its own counter: %d, %v", from, err)
	}
	// Racing reservers (including the row's creation) get disjoint blocks.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		froms []int64
	)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, err := s.ReserveIntIDs(ctx, "b!container-race", 1, 4)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			froms = append(froms, from)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(froms, func(i, j int) bool { return froms[i] < froms[j] })
	for i, f := range froms {
		if f != int64(1+4*i) {
			t.Fatalf("racing reservations overlap or leave holes: %v", froms)
		}
	}
	tg, err := s.GetTarget(ctx, "b!container-race")
	if err != nil || tg.NextIntID != 25 {
		t.Fatalf("counter after the race: %+v, %v; want 25", tg, err)
	}
	if _, err := s.ReserveIntIDs(ctx, "bad/id", 1, 1); err == nil {
		t.Error("a container id with '/' was accepted")
	}
}

func TestClaimInContainer(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if got, err := s.ClaimInContainer(ctx, "b!c1", "intid|a/b.txt", "1000"); err != nil || got != "1000" {
		t.Fatalf("first claim: %q, %v", got, err)
	}
	if got, err := s.ClaimInContainer(ctx, "b!c1", "intid|a/b.txt", "1001"); err != nil || got != "1000" {
		t.Fatalf("second claimant must learn the holder: %q, %v", got, err)
	}
	if got, err := s.ClaimInContainer(ctx, "b!c2", "intid|a/b.txt", "1001"); err != nil || got != "1001" {
		t.Fatalf("claims are per container: %q, %v", got, err)
	}
	// A migration named like the container does not share its claims.
	if got, err := s.Claim(ctx, "b!c1", "intid|a/b.txt", "7"); err != nil || got != "7" {
		t.Fatalf("migration claims and container claims met: %q, %v", got, err)
	}
}

func TestImports(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mod := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := s.GetImport(ctx, "b!c1", "Docs/a.txt"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before any import: %v", err)
	}
	err := s.PutImports(ctx, []Import{
		{ContainerID: "b!c1", LibraryPath: "Docs/a.txt", Source: "src", SourcePath: "docs/a.txt", ETag: "e1", Size: 3, Modified: mod, Versions: 1, MigrationID: "m1", BatchID: "b1"},
		{ContainerID: "b!c2", LibraryPath: "Docs/a.txt", Source: "src", SourcePath: "docs/a.txt", ETag: "other", Size: 3, MigrationID: "m1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Library paths match case-insensitively; a later import replaces.
	got, err := s.GetImport(ctx, "b!c1", "/docs/A.TXT")
	if err != nil || got.ETag != "e1" || got.Size != 3 || !got.Modified.Equal(mod) || got.Versions != 1 || got.MigrationID != "m1" || got.BatchID != "b1" || got.ImportedAt.IsZero() {
		t.Fatalf("GetImport: %+v, %v", got, err)
	}
	if err := s.PutImports(ctx, []Import{{ContainerID: "b!c1", LibraryPath: "docs/a.txt", ETag: "e2", MigrationID: "m2"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetImport(ctx, "b!c1", "Docs/a.txt"); err != nil || got.ETag != "e2" || got.MigrationID != "m2" {
		t.Fatalf("after the re-import: %+v, %v", got, err)
	}
	if got, err := s.GetImport(ctx, "b!c2", "Docs/a.txt"); err != nil || got.ETag != "other" {
		t.Fatalf("imports are per container: %+v, %v", got, err)
	}
	if err := s.PutImports(ctx, []Import{{ContainerID: "b!c1"}}); err == nil {
		t.Error("an import without a library path was accepted")
	}
}
