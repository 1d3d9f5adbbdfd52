package devhost

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// cronSchedule is an NCRONTAB expression: {second} {minute} {hour} {day}
// {month} {day-of-week}, or five fields with second 0. Unlike Vixie cron,
// NCrontab requires day-of-month AND day-of-week to match.
type cronSchedule struct {
	expr                            string
	sec, min, hour, dom, month, dow uint64 // bit i set: value i allowed
}

var (
	monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
)

func parseCron(expr string) (*cronSchedule, error) {
	f := strings.Fields(expr)
	switch len(f) {
	case 5:
		f = append([]string{"0"}, f...)
	case 6:
	default:
		if _, err := parseTimeSpan(expr); err == nil {
			return nil, errors.New("TimeSpan schedules only run on Dedicated plans; use an NCRONTAB expression")
		}
		return nil, fmt.Errorf("want 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}) or 5, got %d", len(f))
	}
	c := &cronSchedule{expr: expr}
	specs := []struct {
		dst      *uint64
		lo, hi   int
		names    []string
		nameBase int
		what     string
	}{
		{&c.sec, 0, 59, nil, 0, "second"},
		{&c.min, 0, 59, nil, 0, "minute"},
		{&c.hour, 0, 23, nil, 0, "hour"},
		{&c.dom, 1, 31, nil, 0, "day"},
		{&c.month, 1, 12, monthNames, 1, "month"},
		{&c.dow, 0, 6, dayNames, 0, "day-of-week"},
	}
	for i, s := range specs {
		v, err := parseCronField(f[i], s.lo, s.hi, s.names, s.nameBase)
		if err != nil {
			return nil, fmt.Errorf("%s field %q: %w", s.what, f[i], err)
		}
		*s.dst = v
	}
	return c, nil
}

func parseCronField(field string, lo, hi int, names []string, nameBase int) (uint64, error) {
	var bits uint64
	value := func(s string) (int, error) {
		for i, n := range names {
			if strings.EqualFold(s, n) || (len(s) > 3 && strings.HasPrefix(strings.ToLower(s), n)) {
				return i + nameBase, nil
			}
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%q is not a value from %d to %d", s, lo, hi)
		}
		return n, nil
	}
	for _, part := range strings.Split(field, ",") {
		step := 1
		if i := strings.Index(part, "/"); i >= 0 {
			n, err := strconv.Atoi(part[i+1:])
			if err != nil || n < 1 {
				return 0, fmt.Errorf("bad step in %q", part)
			}
			step, part = n, part[:i]
		}
		first, last := lo, hi
		switch {
		case part == "*":
		case strings.Contains(part, "-"):
			a, b, _ := strings.Cut(part, "-")
			var err error
			if first, err = value(a); err != nil {
				return 0, err
			}
			if last, err = value(b); err != nil {
				return 0, err
			}
			if first > last {
				return 0, fmt.Errorf("range %q runs backwards", part)
			}
		default:
			v, err := value(part)
			if err != nil {
				return 0, err
			}
			first = v
			if step == 1 {
				last = v
			}
		}
		for v := first; v <= last; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func has(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }

// next returns the first occurrence strictly after t, in t's location. The
// zero time means none within five years (e.g. "0 0 0 31 2 *").
func (c *cronSchedule) next(t time.Time) time.Time {
	loc := t.Location()
	t = t.Truncate(time.Second).Add(time.Second)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		if !has(c.month, int(t.Month())) {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
			continue
		}
		if !has(c.dom, t.Day()) || !has(c.dow, int(t.Weekday())) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
			continue
		}
		if !has(c.hour, t.Hour()) {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, loc)
			continue
		}
		if !has(c.min, t.Minute()) {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute()+1, 0, 0, loc)
			continue
		}
		if !has(c.sec, t.Second()) {
			t = t.Add(time.Second)
			continue
		}
		return t
	}
	return time.Time{}
}

// firesMoreThanOncePerMinute decides the useMonitor default: the host turns
// the schedule monitor off for such schedules.
func (c *cronSchedule) firesMoreThanOncePerMinute(from time.Time) bool {
	a := c.next(from)
	b := c.next(a)
	return !a.IsZero() && !b.IsZero() && b.Sub(a) < time.Minute
}
