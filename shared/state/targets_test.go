package state

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
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
