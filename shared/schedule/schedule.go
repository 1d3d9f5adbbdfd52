// Package schedule keeps scheduled migrations and runs them: a schedule is an
// NCRONTAB expression plus a migration request template, stored in Table
// Storage. Every run (the "schedules" timer function) starts, for each
// schedule, the latest slot that came due since the last one, under a
// migration id derived from the schedule and the slot, so a second run for
// the same slot (a retry, an overlapping instance) starts nothing new.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/spemigrate/spemigrate/shared/request"
)

// Errors; test with errors.Is.
var (
	ErrNotFound = errors.New("schedule not found")
	ErrExists   = errors.New("schedule already exists")
	ErrConflict = errors.New("schedule changed concurrently")
)

// Schedule is one scheduled migration.
type Schedule struct {
	ID   string `json:"id"`
	Cron string `json:"cron"`
	// Request is the template each run starts; its id is set per run.
	Request request.Request `json:"request"`
	Created time.Time       `json:"created"`
	// LastSlot is the latest slot started, LastMigrationID its migration.
	LastSlot        time.Time `json:"lastSlot,omitzero"`
	LastMigrationID string    `json:"lastMigrationId,omitempty"`
	ETag            string    `json:"-"`
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$`)

// Validate checks a schedule as submitted: id, expression and template.
// Problems are returned as a *request.Error naming the field.
func (s *Schedule) Validate() error {
	var fe []request.FieldError
	add := func(field, msg string) { fe = append(fe, request.FieldError{Field: field, Message: msg}) }
	if s.ID != "" && !idPattern.MatchString(s.ID) {
		add("id", "must be 1-40 characters: letters, digits, '_' or '-', starting with a letter or digit")
	}
	switch c, err := ParseCron(s.Cron); {
	case s.Cron == "":
		add("cron", `required: an NCRONTAB expression such as "0 0 2 * * *" (02:00 UTC daily)`)
	case err != nil:
		add("cron", "invalid NCRONTAB expression: "+err.Error())
	case !c.AtMostOncePerMinute():
		add("cron", "must fire at most once a minute: give the second field a single value (e.g. 0)")
	case c.Next(time.Now()).IsZero():
		add("cron", "never fires")
	}
	if s.Request.ID != "" {
		add("request.id", "not allowed in a schedule template: each run gets its own id, s-<schedule>-<slot>")
	}
	if err := s.Request.Validate(); err != nil {
		var re *request.Error
		if errors.As(err, &re) {
			for _, f := range re.Fields {
				add("request."+f.Field, f.Message)
			}
		} else {
			return err
		}
	}
	if len(fe) > 0 {
		return &request.Error{Fields: fe}
	}
	return nil
}

// Store keeps schedules. *TableStore implements it.
type Store interface {
	List(ctx context.Context) ([]*Schedule, error)
	// MarkSlot records that slot was started, conditionally on s.ETag;
	// ErrConflict when the schedule changed since it was read.
	MarkSlot(ctx context.Context, s *Schedule, slot time.Time, migrationID string) error
}

// Starter starts a migration under the given id; starting an id that exists
// already is not an error and starts nothing (created is then false).
type Starter interface {
	StartMigration(ctx context.Context, id string, req request.Request) (created bool, err error)
}

// Runner is the timer's work.
type Runner struct {
	Store   Store
	Starter Starter
	Log     *slog.Logger
	// Lookback bounds how far back a missed slot is still started (default
	// 24 h): after a long outage only the latest missed slot runs, as the
	// Functions timer itself does with IsPastDue.
	Lookback time.Duration
}

// Run starts every schedule's latest due slot. A failure of one schedule does
// not stop the others; the errors are joined (the timer run then fails and is
// logged; the next run picks the slot up again).
func (r *Runner) Run(ctx context.Context, now time.Time) error {
	list, err := r.Store.List(ctx)
	if err != nil {
		return fmt.Errorf("list schedules: %w", err)
	}
	lookback := r.Lookback
	if lookback <= 0 {
		lookback = 24 * time.Hour
	}
	var errs []error
	for _, s := range list {
		if err := r.runOne(ctx, s, now, lookback); err != nil {
			errs = append(errs, fmt.Errorf("schedule %s: %w", s.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) runOne(ctx context.Context, s *Schedule, now time.Time, lookback time.Duration) error {
	c, err := ParseCron(s.Cron)
	if err != nil {
		return fmt.Errorf("cron: %w", err)
	}
	after := now.Add(-lookback)
	// Slots before the schedule existed, and slots already started, are not
	// due.
	for _, t := range []time.Time{s.Created, s.LastSlot} {
		if t.After(after) {
			after = t
		}
	}
	slot := c.Latest(after, now)
	if slot.IsZero() {
		return nil
	}
	id := request.IDForSchedule(s.ID, slot)
	req := s.Request
	req.ID = id
	created, err := r.Starter.StartMigration(ctx, id, req)
	if err != nil {
		return fmt.Errorf("start slot %s: %w", slot.Format(time.RFC3339), err)
	}
	if r.Log != nil {
		r.Log.Info("scheduled migration due", "schedule", s.ID, "slot", slot, "migration", id, "started", created)
	}
	if err := r.Store.MarkSlot(ctx, s, slot, id); err != nil && !errors.Is(err, ErrConflict) {
		// The migration id is deterministic: failing to record the slot only
		// means the next run tries the same id again and starts nothing.
		return fmt.Errorf("record slot: %w", err)
	}
	return nil
}
