package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// countingTransport counts the requests that reach Table Storage.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func newCountingStore(t *testing.T) (*Store, *countingTransport) {
	t.Helper()
	ct := &countingTransport{}
	svc, err := aztables.NewServiceClientFromConnectionString(storageConn, &aztables.ClientOptions{ClientOptions: policy.ClientOptions{Transport: ct}})
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	s, err := New(svc, Options{TablePrefix: "t" + hex.EncodeToString(b), SealKey: randomKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range s.TableNames() {
			s.svc.DeleteTable(context.Background(), n, nil)
		}
	})
	return s, ct
}

func TestClaimMany(t *testing.T) {
	s, ct := newCountingStore(t)
	ctx := context.Background()
	const n = 250
	keys := make([]string, n)
	owners := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("folder #%d/file?%d.txt", i%7, i)
		owners[i] = "file:" + keys[i]
	}
	before := ct.n.Load()
	got, err := s.ClaimMany(ctx, "m1", keys, owners)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != owners[i] {
			t.Fatalf("key %d: holder %q, want %q", i, got[i], owners[i])
		}
	}
	if calls := ct.n.Load() - before; calls != 3 {
		t.Errorf("first claim of %d keys took %d requests, want 3 transactions", n, calls)
	}

	// The same keys again (a redelivery), one of them repeated, plus
	// new keys and keys held by someone else: every answer is what one-by-one
	// claims would give.
	if _, err := s.Claim(ctx, "m1", "held elsewhere", "file:other"); err != nil {
		t.Fatal(err)
	}
	keys2 := append([]string{"new 1", "held elsewhere", keys[5], "new 2", "new 1"}, keys[10:120]...)
	owners2 := append([]string{"file:new 1", "file:me", owners[5], "file:new 2", "file:second"}, owners[10:120]...)
	owners2[6] = "file:thief" // keys[11], held by owners[11]
	got, err = s.ClaimMany(ctx, "m1", keys2, owners2)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"file:new 1", "file:other", owners[5], "file:new 2", "file:new 1"}, owners[10:120]...)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("second claim, key %q: holder %q, want %q", keys2[i], got[i], want[i])
		}
	}
	for _, k := range []string{"new 1", "new 2"} {
		if o, err := s.Claim(ctx, "m1", k, "x"); err != nil || o != "file:"+k {
			t.Fatalf("%s after ClaimMany: %q, %v", k, o, err)
		}
	}

	// Racing batch claimants over overlapping keys agree on every holder.
	var wg sync.WaitGroup
	res := make([][]string, 4)
	for w := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ks := make([]string, 150)
			os := make([]string, 150)
			for i := range ks {
				ks[i] = fmt.Sprintf("race %d", (i+w*20)%200)
				os[i] = fmt.Sprintf("owner-%d", w)
			}
			r, err := s.ClaimMany(ctx, "m2", ks, os)
			if err != nil {
				t.Error(err)
				return
			}
			res[w] = make([]string, 200)
			for i, k := range ks {
				var j int
				fmt.Sscanf(k, "race %d", &j)
				res[w][j] = r[i]
			}
		}()
	}
	wg.Wait()
	for j := 0; j < 200; j++ {
		var holder string
		for w := range res {
			if res[w] == nil || res[w][j] == "" {
				continue
			}
			if holder == "" {
				holder = res[w][j]
			} else if res[w][j] != holder {
				t.Fatalf("race %d: claimants disagree: %q and %q", j, holder, res[w][j])
			}
		}
		if holder != "" {
			if o, err := s.Claim(ctx, "m2", fmt.Sprintf("race %d", j), "late"); err != nil || o != holder {
				t.Fatalf("race %d: stored holder %q, claimants saw %q (%v)", j, o, holder, err)
			}
		}
	}
}

func TestGetImports(t *testing.T) {
	s, ct := newCountingStore(t)
	ctx := context.Background()
	long := strings.Repeat("deep folder/", 90) + "x.txt" // over the row key limit encoded
	paths := []string{"Docs/a.txt", "Docs/b #1?.txt", "Docs/sub/c%20~.txt", "Other/d.txt", long, `odd\name.txt`}
	before := ct.n.Load()
	got, err := s.GetImports(ctx, "b!c1", paths)
	if err != nil || len(got) != 0 {
		t.Fatalf("before any import: %v, %v", got, err)
	}
	if calls := ct.n.Load() - before; calls != 1 {
		t.Errorf("lookups in a container without imports took %d requests, want 1", calls)
	}
	var ims []Import
	for i, p := range paths {
		ims = append(ims, Import{ContainerID: "b!c1", LibraryPath: p, ETag: fmt.Sprint("e", i), MigrationID: "m1"})
	}
	// Neighbours in key order that are not asked for.
	for i := 0; i < 30; i++ {
		ims = append(ims, Import{ContainerID: "b!c1", LibraryPath: fmt.Sprintf("Docs/n%02d.txt", i), ETag: "n", MigrationID: "m1"})
	}
	if err := s.PutImports(ctx, ims); err != nil {
		t.Fatal(err)
	}
	ask := append([]string{"DOCS/A.TXT", "docs/missing.txt"}, paths[1:]...)
	before = ct.n.Load()
	got, err = s.GetImports(ctx, "b!c1", ask)
	if err != nil {
		t.Fatal(err)
	}
	if calls := ct.n.Load() - before; calls != 3 {
		t.Errorf("lookups of %d paths took %d requests, want 3 (flag, one range, one over-long path)", len(ask), calls)
	}
	if _, ok := got[1]; ok || len(got) != len(paths) {
		t.Fatalf("got %d imports (%v), want %d", len(got), got, len(paths))
	}
	for i, p := range ask {
		if i == 1 {
			continue
		}
		if !strings.EqualFold(got[i].LibraryPath, p) {
			t.Errorf("%q: got the import of %q", p, got[i].LibraryPath)
		}
	}
	if got[0].ETag != "e0" {
		t.Errorf("case-insensitive lookup: %+v", got[0])
	}
	// A range crowded with rows not asked for: the scan stops after 4
	// rows per path, and the paths beyond are read one by one.
	s.importScan = 0
	before = ct.n.Load()
	crowded, err := s.GetImports(ctx, "b!c1", ask)
	if err != nil {
		t.Fatal(err)
	}
	if calls := ct.n.Load() - before; calls < 4 {
		t.Errorf("a crowded range took %d requests; the scan should have stopped early", calls)
	}
	if fmt.Sprint(crowded) != fmt.Sprint(got) {
		t.Errorf("crowded range answered\n%v\nwant\n%v", crowded, got)
	}
	if tg, err := s.GetTarget(ctx, "b!c1"); err != nil || !tg.HasImports {
		t.Errorf("target after imports: %+v, %v", tg, err)
	}
}
