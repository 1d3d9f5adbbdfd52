package graph

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/infra/local/stack/stacktest"
)

// strictEmu starts a dedicated emulator with knobs on the stack's Azurite
// and a client for it presenting token.
func strictEmu(t *testing.T, k graphemu.Knobs, token string, mod func(*Options)) (*graphemu.Server, *Client) {
	t.Helper()
	if emu == nil {
		t.Skip("-short: no Graph emulator")
	}
	srv, err := graphemu.New(graphemu.Config{
		Containers: []graphemu.Container{graphemu.DefaultContainer()},
		Storage:    graphemu.Storage{BlobEndpoint: emu.BlobEndpoint, Account: stack.AzuriteAccount, Key: stack.AzuriteKey},
		DataDir:    t.TempDir(),
		Knobs:      k,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	o := Options{BaseURL: srv.URL(), Transport: srv.HTTPClient()}
	if mod != nil {
		mod(&o)
	}
	c, err := New(StaticToken(token), o)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

// drainToCompletion polls Events from "" until a completion event, with a
// deadline, and returns every event read.
func drainToCompletion(t *testing.T, c *Client, cid, jobID string) ([]Event, string) {
	t.Helper()
	var all []Event
	cursor, done := "", false
	stacktest.Eventually(t, 60*time.Second, func() bool {
		b, err := c.Events(context.Background(), cid, jobID, cursor)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b.Events...)
		cursor, done = b.Cursor, b.Completed
		return done
	}, func() string { return fmt.Sprintf("job not completed; %d events, cursor %q", len(all), cursor) })
	return all, cursor
}

// TestStrictEmulatorSkipPagingWithEmptyPages drains a job whose events come
// in $skip-style pages with an empty page before each page of events.
func TestStrictEmulatorSkipPagingWithEmptyPages(t *testing.T) {
	k := graphemu.Knobs{Paging: "skip", EmptyPages: true, PageSize: 2, ProgressEvery: 1}
	_, c := strictEmu(t, k, "local", func(o *Options) { o.PageLimit = 3 })
	cid := graphemu.DefaultContainer().ID
	ctx := context.Background()
	info, err := c.ProvisionContainers(ctx, cid)
	if err != nil {
		t.Fatal(err)
	}
	jobID, err := c.CreateJob(ctx, cid, info)
	if err != nil {
		t.Fatal(err)
	}
	all, cursor := drainToCompletion(t, c, cid, jobID)
	seen := map[string]bool{}
	for _, e := range all {
		if seen[e.ID] {
			t.Errorf("event %s read twice", e.ID)
		}
		seen[e.ID] = true
	}
	if all[0].Kind != KindQueued || !all[len(all)-1].Completed() {
		t.Errorf("first %v, last %v", all[0].Kind, all[len(all)-1])
	}
	if !strings.Contains(cursor, "$skip=") {
		t.Errorf("cursor %q is not the emulator's $skip next link", cursor)
	}
	// Resuming from the stored cursor reads nothing new and keeps it.
	b, err := c.Events(ctx, cid, jobID, cursor)
	if err != nil || len(b.Events) != 0 || b.Cursor != cursor {
		t.Errorf("resume: %d events, cursor %q, err %v", len(b.Events), b.Cursor, err)
	}
}

// TestStrictEmulatorJobGoneAndStaleCursor: 404s that carry only
// migrationNotFound still mean the job is gone, and a cursor the service
// refuses is ErrStaleCursor.
func TestStrictEmulatorJobGoneAndStaleCursor(t *testing.T) {
	srv, c := strictEmu(t, graphemu.Knobs{NotFoundCodes: "topOnly"}, "local", nil)
	cid := graphemu.DefaultContainer().ID
	ctx := context.Background()
	const unknown = "00000000-0000-0000-0000-000000000000"
	if err := c.DeleteJob(ctx, cid, unknown); !errors.Is(err, ErrJobNotFound) || errors.Is(err, ErrNotFound) {
		t.Errorf("delete unknown job: %v", err)
	}
	if _, err := c.Events(ctx, cid, unknown, ""); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("events of unknown job: %v", err)
	}
	info, err := c.ProvisionContainers(ctx, cid)
	if err != nil {
		t.Fatal(err)
	}
	jobID, err := c.CreateJob(ctx, cid, info)
	if err != nil {
		t.Fatal(err)
	}
	for _, cursor := range []string{"!not-a-token!", srv.URL() + "/v1.0/storage/fileStorage/containers/" + cid + "/migrationJobs/" + jobID + "/progressEvents?$skiptoken=%2A%2A"} {
		if _, err := c.Events(ctx, cid, jobID, cursor); !errors.Is(err, ErrStaleCursor) {
			t.Errorf("cursor %q: %v, want ErrStaleCursor", cursor, err)
		}
	}
	drainToCompletion(t, c, cid, jobID)
	if err := c.DeleteJob(ctx, cid, jobID); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("delete finished job: %v", err)
	}
}

// TestStrictEmulatorAccessDenied: a token without FileStorageContainer.Selected
// gets 403, reported as ErrAccessDenied with a message that says what to grant.
func TestStrictEmulatorAccessDenied(t *testing.T) {
	k := graphemu.Knobs{RequirePermission: true, RegisteredApps: []string{"app-1"}}
	cid := graphemu.DefaultContainer().ID
	for _, tok := range []string{"local", graphemu.Token("app-1"), graphemu.Token("app-2", graphemu.Permission)} {
		_, c := strictEmu(t, k, tok, nil)
		_, err := c.ProvisionContainers(context.Background(), cid)
		if !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "FileStorageContainer.Selected") ||
			!strings.Contains(err.Error(), "container-type registration") {
			t.Errorf("token %.20s…: %v", tok, err)
		}
	}
	_, c := strictEmu(t, k, graphemu.Token("app-1", graphemu.Permission), nil)
	if _, err := c.ProvisionContainers(context.Background(), cid); err != nil {
		t.Errorf("granted token: %v", err)
	}
}
