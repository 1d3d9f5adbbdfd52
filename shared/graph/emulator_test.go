package graph

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
)

// emu is the local stack with the Graph SPE emulator; nil in -short runs,
// where the emulator tests skip (the httptest-based tests still run).
var emu *stack.Stack

func TestMain(m *testing.M) {
	stacktest.Main(m, stack.Options{Graph: true}, stacktest.NotShort, func(s *stack.Stack) { emu = s })
}

// emuClient trusts the emulator's generated certificate through a RootCAs
// pool, as a local configuration would; nothing else differs from
// production.
func emuClient(t *testing.T) *Client {
	t.Helper()
	if emu == nil {
		t.Skip("-short: no Graph emulator")
	}
	emu.Graph.ClearFaults()
	pem, err := os.ReadFile(emu.GraphCAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in", emu.GraphCAFile)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	c, err := New(StaticToken(stack.GraphToken), Options{
		BaseURL:   emu.GraphURL,
		Transport: hc,
		UserAgent: UserAgent("spemigrate", "spemigrate", "test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEmulatorTarget(t *testing.T) {
	c := emuClient(t)
	got, err := c.Target(context.Background(), emu.SPEContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if got.WebID != trimGUID(emu.SPEWebID) || got.ListID != trimGUID(emu.SPEListID) ||
		got.RootFolderID != trimGUID(emu.SPERootFolderID) || got.LibraryFolder != emu.SPELibraryFolder {
		t.Errorf("Target = %+v\nstack: web %s list %s root %s library %q site %s",
			got, emu.SPEWebID, emu.SPEListID, emu.SPERootFolderID, emu.SPELibraryFolder, emu.SPESiteURL)
	}
	if _, err := c.Target(context.Background(), "b!no-such-container"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown container: %v", err)
	}
}

// TestEmulatorJobLifecycle submits a job over empty containers: the
// service accepts it and fails it asynchronously, which exercises paging
// to completion on the real event stream.
func TestEmulatorJobLifecycle(t *testing.T) {
	c := emuClient(t)
	ctx := context.Background()
	info, err := c.ProvisionContainers(ctx, emu.SPEContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if exp, err := info.Expiry(); err != nil || time.Until(exp) < 12*time.Hour {
		t.Fatalf("SAS expiry %v, %v", exp, err)
	}
	jobID, err := c.CreateJob(ctx, emu.SPEContainerID, info)
	if err != nil {
		t.Fatal(err)
	}
	var all []Event
	cursor := ""
	deadline := time.Now().Add(60 * time.Second)
	for done := false; !done; {
		if time.Now().After(deadline) {
			t.Fatalf("job not completed before the deadline; %d events", len(all))
		}
		b, err := c.Events(ctx, emu.SPEContainerID, jobID, cursor)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b.Events...)
		cursor, done = b.Cursor, b.Completed
		if !done && !b.More {
			time.Sleep(100 * time.Millisecond) // poll interval, not synchronisation
		}
	}
	seen := map[string]bool{}
	fatal := false
	for _, e := range all {
		if seen[e.ID] {
			t.Errorf("event %s returned twice", e.ID)
		}
		seen[e.ID] = true
		if e.JobID != jobID {
			t.Errorf("event %s has job %s", e.ID, e.JobID)
		}
		if e.Kind == KindError && e.Error.Level == LevelFatalError {
			fatal = true
		}
	}
	if !fatal {
		t.Errorf("no fatal error event for a job over empty containers: %+v", all)
	}
	// Nothing new: no events, cursor unchanged.
	b, err := c.Events(ctx, emu.SPEContainerID, jobID, cursor)
	if err != nil || len(b.Events) != 0 || b.Cursor != cursor {
		t.Errorf("re-poll: %d events, cursor %q→%q, %v", len(b.Events), cursor, b.Cursor, err)
	}
	if err := c.DeleteJob(ctx, emu.SPEContainerID, jobID); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("delete of a finished job: %v, want ErrJobNotFound", err)
	}
	if _, err := c.Events(ctx, emu.SPEContainerID, "00000000-0000-0000-0000-000000000000", ""); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("events of an unknown job: %v, want ErrJobNotFound", err)
	}
}

// With WrongKey=sync (the lenient choice; the strict profile fails the
// job asynchronously instead) a wrong key is refused at creation.
func TestEmulatorWrongKeyNeedsReprovision(t *testing.T) {
	_, c := strictEmu(t, graphemu.Knobs{WrongKey: "sync"}, "t", nil)
	ctx := context.Background()
	info, err := c.ProvisionContainers(ctx, emu.SPEContainerID)
	if err != nil {
		t.Fatal(err)
	}
	k := make([]byte, 32)
	rand.Read(k)
	info.EncryptionKey = base64.StdEncoding.EncodeToString(k)
	_, err = c.CreateJob(ctx, emu.SPEContainerID, info)
	if !errors.Is(err, ErrReprovisionNeeded) {
		t.Fatalf("create with the wrong key: %v, want ErrReprovisionNeeded", err)
	}
}

func TestEmulatorThrottling(t *testing.T) {
	c := emuClient(t)
	ctx := context.Background()
	counts := func() int64 { return emu.Graph.Counts()[graphemu.RouteProvision] }

	// A short Retry-After is waited out in-process; no error surfaces.
	before := counts()
	if err := emu.Graph.AddFault(graphemu.FaultRule{Route: graphemu.RouteProvision, Status: 429, RetryAfter: 1, Count: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.ProvisionContainers(ctx, emu.SPEContainerID); err != nil {
		t.Fatalf("throttled provision surfaced: %v", err)
	}
	if n := counts() - before; n != 2 {
		t.Errorf("%d provision calls, want 2", n)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %v, before the 1s Retry-After", waited)
	}

	// A long one comes back as ErrThrottled carrying the wait.
	before = counts()
	if err := emu.Graph.AddFault(graphemu.FaultRule{Route: graphemu.RouteProvision, Status: 503, RetryAfter: 300, Count: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := c.ProvisionContainers(ctx, emu.SPEContainerID)
	if d, ok := RetryAfter(err); !errors.Is(err, ErrThrottled) || !ok || d != 300*time.Second {
		t.Errorf("long throttle: %v (retry after %v)", err, d)
	}
	if n := counts() - before; n != 1 {
		t.Errorf("%d provision calls for a 300s Retry-After, want 1", n)
	}

	// A 500 on job creation is not retried (it might have created a job).
	info, err := c.ProvisionContainers(ctx, emu.SPEContainerID)
	if err != nil {
		t.Fatal(err)
	}
	createdBefore := emu.Graph.Counts()[graphemu.RouteCreateJob]
	if err := emu.Graph.AddFault(graphemu.FaultRule{Route: graphemu.RouteCreateJob, Status: 500, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateJob(ctx, emu.SPEContainerID, info); err == nil {
		t.Error("create job over a 500 succeeded")
	}
	if n := emu.Graph.Counts()[graphemu.RouteCreateJob] - createdBefore; n != 1 {
		t.Errorf("create job sent %d times after a 500", n)
	}
}
