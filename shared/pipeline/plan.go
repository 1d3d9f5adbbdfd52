package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Provision (the provision queue's step) plans one page of the source: it
// applies the naming policy to each entry, records every decision as a
// per-item result, groups the eligible items into batches, stores them,
// advances the migration's planning position (the write that makes the page
// "done"), and then sends a stage-batch message per batch and a provision
// message for the next page.
//
// Pages are planned strictly in order: page must equal the migration's
// PlanPage. An earlier page (a redelivery) only re-sends what that page
// should have sent; a later one is ignored.
func (e *Engine) Provision(ctx context.Context, migrationID string, page int) error {
	began := time.Now()
	m, _, err := e.load(ctx, migrationID, "")
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	log := e.log.With("migration", m.ID, "page", page)
	switch {
	case m.Status.Terminal():
		return nil
	case m.CancelRequested:
		return e.settle(ctx, m)
	case page < m.PlanPage:
		return e.replan(ctx, m, page)
	case page > m.PlanPage:
		log.Warn("plan message ahead of planning position; ignored", "planPage", m.PlanPage)
		return nil
	}
	src, err := e.Sources.Source(ctx, m)
	if request.IsInvalid(err) {
		// A stored request that no longer validates will not heal.
		return e.failMigration(ctx, m, fmt.Sprintf("the migration request is invalid: %v", err))
	}
	if err != nil {
		return fmt.Errorf("plan %s page %d: open source: %w", m.ID, page, err)
	}
	pg, err := src.List(ctx, m.PlanCursor, e.cfg.PageSize)
	var redirect *source.RedirectError
	if errors.As(err, &redirect) {
		// The endpoint will redirect the same way on every delivery.
		return e.failMigration(ctx, m, "the source cannot be listed: "+redirect.Error())
	}
	if err != nil {
		return fmt.Errorf("plan %s page %d: list source: %w", m.ID, page, err)
	}
	pl, err := e.planPage(ctx, m, page, pg.Entries)
	if err != nil {
		return fmt.Errorf("plan %s page %d: %w", m.ID, page, err)
	}
	m, wrote, err := e.updateMigration(ctx, m, func(x *state.Migration) (bool, error) {
		if x.PlanPage != page || x.Status.Terminal() {
			return false, nil
		}
		x.PlanPage, x.PlanCursor, x.PlanDone = page+1, pg.Next, pg.Next == ""
		addPlanned(&x.Counters, pl.counters)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("plan %s page %d: %w", migrationID, page, err)
	}
	if !wrote {
		// Another delivery planned this page first; it sent the messages.
		return nil
	}
	c := pl.counters
	log.Info("page planned", "entries", c.Entries, "items", c.Items, "skipped", c.Skipped, "unchanged", c.Unchanged,
		"renamed", c.Renamed, "batches", c.Batches, "last", m.PlanDone, "took", time.Since(began))
	next := pl.next
	if !m.PlanDone {
		next = append(next, queue.Provision(m.ID, page+1))
	}
	if err := e.send(ctx, next...); err != nil {
		return fmt.Errorf("plan %s page %d: %w", m.ID, page, err)
	}
	if m.PlanDone {
		return e.settle(ctx, m)
	}
	return nil
}

// plannedPage is what planning one page produced: its counters and the
// stage-batch messages of its batches (stored, not yet sent).
type plannedPage struct {
	counters state.MigrationCounters
	next     []queue.Message
}

// planPage names a page's entries, leaves out the skipped and unchanged
// ones, cuts the rest into batches and stores the per-item results and the
// batches.
func (e *Engine) planPage(ctx context.Context, m *state.Migration, page int, entries []source.Entry) (plannedPage, error) {
	var pl plannedPage
	items, skipped, err := e.eligible(ctx, m, entries, &pl.counters)
	if err != nil {
		return pl, err
	}
	groups, err := e.Planner.Plan(m, items)
	if err != nil {
		return pl, fmt.Errorf("batches: %w", err)
	}
	results := skipped
	batches := make([]*state.Batch, len(groups))
	for i, g := range groups {
		b := &state.Batch{
			MigrationID: m.ID, ID: BatchID(page, i), Page: page, ContainerID: m.ContainerID,
			Status: state.BatchPlanned, Attempt: 1, Items: len(g),
		}
		for _, it := range g {
			b.Bytes += it.Size()
			results = append(results, e.itemResult(m, b, it, state.OutcomePending, it.NamingReason))
		}
		batches[i] = b
		pl.next = append(pl.next, queue.StageBatch(m.ID, b.ID, 1))
	}
	// Results before batches: nothing drives a batch of this page before the
	// page is recorded, so a re-plan never overwrites an outcome.
	if err := e.Store.PutResults(ctx, results); err != nil {
		return pl, fmt.Errorf("item results: %w", err)
	}
	for i, b := range batches {
		if err := e.createBatch(ctx, b, groups[i]); err != nil {
			return pl, err
		}
	}
	pl.counters.Batches = int64(len(groups))
	return pl, nil
}

// eligible names a page's files and returns those to migrate, and the
// results of those skipped (by the naming policy, or unchanged since an
// earlier import), counting both into c.
func (e *Engine) eligible(ctx context.Context, m *state.Migration, entries []source.Entry, c *state.MigrationCounters) ([]state.Item, []state.ItemResult, error) {
	var named []state.Item
	var skipped []state.ItemResult
	vgroups := groupVersions(entries)
	// Every entry is named, unchanged or not, so the collision claims
	// (first come, first served) fall as they did in the earlier run.
	decisions, err := e.name(ctx, m, vgroups)
	if err != nil {
		return nil, nil, err
	}
	for gi, vs := range vgroups {
		c.Entries++
		it := state.Item{Path: vs[len(vs)-1].Path, Versions: vs}
		d := decisions[gi]
		if d.Skip {
			c.Skipped++
			skipped = append(skipped, state.ItemResult{MigrationID: m.ID, SourcePath: it.Path, Size: it.Size(), Outcome: state.OutcomeSkipped, Reason: d.Reason})
			continue
		}
		it.Target, it.Renamed, it.NamingReason = d.Target, d.Renamed, d.Reason
		named = append(named, it)
	}
	var unchanged map[int]string
	if e.Imports != nil && len(named) > 0 {
		if unchanged, err = e.Imports.Unchanged(ctx, m, named); err != nil {
			return nil, nil, fmt.Errorf("earlier imports: %w", err)
		}
	}
	items := named[:0:0]
	for i, it := range named {
		if prev, ok := unchanged[i]; ok {
			c.Skipped++
			c.Unchanged++
			skipped = append(skipped, state.ItemResult{MigrationID: m.ID, SourcePath: it.Path, TargetPath: it.Target, Size: it.Size(),
				Outcome: state.OutcomeSkipped, Reason: "unchanged since migration " + prev})
			continue
		}
		c.Items++
		c.BytesPlanned += it.Size()
		if it.Renamed {
			c.Renamed++
		}
		items = append(items, it)
	}
	return items, skipped, nil
}

// addPlanned adds one page's planning counters to the migration's.
func addPlanned(dst *state.MigrationCounters, c state.MigrationCounters) {
	dst.Entries += c.Entries
	dst.Items += c.Items
	dst.Skipped += c.Skipped
	dst.Unchanged += c.Unchanged
	dst.Renamed += c.Renamed
	dst.BytesPlanned += c.BytesPlanned
	dst.Batches += c.Batches
}

// groupVersions groups consecutive entries of one path (a source lists a
// file's versions together, oldest first).
func groupVersions(es []source.Entry) [][]source.Entry {
	var out [][]source.Entry
	for i := 0; i < len(es); {
		j := i + 1
		for j < len(es) && es[j].Path == es[i].Path {
			j++
		}
		out = append(out, es[i:j:j])
		i = j
	}
	return out
}

// BatchID names batch i of plan page p; deterministic so a re-planned page
// finds its batches again.
func BatchID(page, i int) string { return fmt.Sprintf("p%06d-b%03d", page, i) }

func (e *Engine) createBatch(ctx context.Context, b *state.Batch, items []state.Item) error {
	err := e.Store.CreateBatch(ctx, b, items)
	if err != nil && !errors.Is(err, state.ErrExists) {
		return fmt.Errorf("create batch %s: %w", b.ID, err)
	}
	return nil
}

// replan re-sends what planning page should have sent, for a redelivered
// plan message whose page is already recorded: stage messages for that
// page's batches still planned, and the next plan message if it is still
// the next page.
func (e *Engine) replan(ctx context.Context, m *state.Migration, page int) error {
	bs, err := e.Store.ListBatches(ctx, m.ID)
	if err != nil {
		return fmt.Errorf("plan %s page %d: list batches: %w", m.ID, page, err)
	}
	var next []queue.Message
	for _, b := range bs {
		if b.Page == page && b.Status == state.BatchPlanned {
			next = append(next, queue.Message{Step: queue.StepStageBatch, MigrationID: m.ID, BatchID: b.ID, Attempt: b.Attempt})
		}
	}
	if page+1 == m.PlanPage && !m.PlanDone {
		next = append(next, queue.Message{Step: queue.StepProvision, MigrationID: m.ID, Page: page + 1})
	}
	if err := e.send(ctx, next...); err != nil {
		return fmt.Errorf("plan %s page %d: %w", m.ID, page, err)
	}
	if m.PlanDone {
		return e.settle(ctx, m)
	}
	return nil
}

// Settle recomputes a migration's totals from its batches and completes it
// when planning is over and every batch is terminal. Steps call it when a
// batch ends; the status API may call it too. It is idempotent.
func (e *Engine) Settle(ctx context.Context, migrationID string) error {
	m, _, err := e.load(ctx, migrationID, "")
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	return e.settle(ctx, m)
}

func (e *Engine) settle(ctx context.Context, m *state.Migration) error {
	if m.Status.Terminal() {
		return nil
	}
	bs, err := e.Store.ListBatches(ctx, m.ID)
	if err != nil {
		return fmt.Errorf("settle %s: list batches: %w", m.ID, err)
	}
	var agg state.MigrationCounters
	all := true
	for _, b := range bs {
		if !b.Status.Terminal() {
			all = false
			continue
		}
		agg.BatchesDone++
		switch b.Status {
		case state.BatchFailed:
			agg.BatchesFailed++
		case state.BatchCancelled:
			agg.BatchesCancelled++
		case state.BatchCompletedWithErrors:
			agg.BatchesWithErrors++
		}
		agg.FilesMigrated += b.FilesMigrated
		agg.FilesFailed += b.FilesFailed
		agg.BytesMigrated += b.BytesMigrated
		agg.Errors += b.Progress.Errors
		agg.Warnings += b.Progress.Warnings
	}
	done := all && (m.PlanDone || m.CancelRequested)
	m2, wrote, err := e.updateMigration(ctx, m, func(x *state.Migration) (bool, error) {
		if x.Status.Terminal() {
			return false, nil
		}
		before := x.Counters
		x.Counters.BatchesDone = agg.BatchesDone
		x.Counters.BatchesFailed = agg.BatchesFailed
		x.Counters.BatchesCancelled = agg.BatchesCancelled
		x.Counters.BatchesWithErrors = agg.BatchesWithErrors
		x.Counters.FilesMigrated = agg.FilesMigrated
		x.Counters.FilesFailed = agg.FilesFailed
		x.Counters.BytesMigrated = agg.BytesMigrated
		x.Counters.Errors = agg.Errors
		x.Counters.Warnings = agg.Warnings
		// A cancel may land between our read and this write; only finish
		// when the decision still holds on the fresh entity.
		if done && (x.PlanDone || x.CancelRequested) {
			x.Status = finalStatus(x)
		}
		return x.Counters != before || x.Status.Terminal(), nil
	})
	if err != nil {
		return fmt.Errorf("settle %s: %w", m.ID, err)
	}
	if wrote && m2.Status.Terminal() {
		e.log.Info("migration finished", "migration", m2.ID, "status", m2.Status,
			"filesMigrated", m2.Counters.FilesMigrated, "filesFailed", m2.Counters.FilesFailed,
			"skipped", m2.Counters.Skipped, "batches", m2.Counters.Batches, "batchesFailed", m2.Counters.BatchesFailed)
	}
	return nil
}

func finalStatus(m *state.Migration) state.MigrationStatus {
	c := m.Counters
	switch {
	case m.CancelRequested:
		return state.MigrationCancelled
	case m.Reason != "" && c.Batches == 0:
		return state.MigrationFailed // planning failed before any batch
	case c.Batches > 0 && c.BatchesFailed == c.Batches:
		return state.MigrationFailed
	case c.BatchesFailed > 0 || c.BatchesWithErrors > 0 || c.FilesFailed > 0 || m.Reason != "":
		return state.MigrationCompletedWithErrors
	}
	return state.MigrationCompleted
}

// name decides the targets of a page's files, at once when the Namer can.
func (e *Engine) name(ctx context.Context, m *state.Migration, groups [][]source.Entry) ([]Decision, error) {
	ents := make([]NameEntry, len(groups))
	for i, vs := range groups {
		cur := vs[len(vs)-1]
		ents[i] = NameEntry{Path: cur.Path, Size: cur.Size}
	}
	if pn, ok := e.Namer.(PageNamer); ok {
		ds, err := pn.NamePage(ctx, m, ents)
		if err == nil && len(ds) != len(ents) {
			err = fmt.Errorf("%d decisions for %d entries", len(ds), len(ents))
		}
		if err != nil {
			return nil, fmt.Errorf("name page: %w", err)
		}
		return ds, nil
	}
	ds := make([]Decision, len(ents))
	for i, en := range ents {
		d, err := e.Namer.Name(ctx, m, en.Path, en.Size)
		if err != nil {
			return nil, fmt.Errorf("name %q: %w", en.Path, err)
		}
		ds[i] = d
	}
	return ds, nil
}
