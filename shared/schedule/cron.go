package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cron is a parsed NCRONTAB expression, the format Azure Functions timers
// use: "{second} {minute} {hour} {day} {month} {day-of-week}", or five fields
// meaning second 0. Day of month and day of week must both match (NCrontab
// semantics, unlike Vixie cron's OR). Times are UTC.
type Cron struct {
	expr             string
	sec, min, hour   uint64 // bit i set: value i allowed
	dom, month, dow  uint64
	domStar, dowStar bool
	singleSecond     bool
}

var (
	monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
)

// maxCronLength bounds an expression; the longest sensible one (every
// field a short list) is far below it.
const maxCronLength = 256

// ParseCron parses an NCRONTAB expression. Errors say which field is wrong
// and what it accepts.
func ParseCron(expr string) (Cron, error) {
	// Every schedule is parsed each minute; a list of thousands of values
	// expresses nothing a range or step cannot.
	if len(expr) > maxCronLength {
		return Cron{}, fmt.Errorf("is %d characters; at most %d (use ranges a-b and steps */n instead of long lists)", len(expr), maxCronLength)
	}
	fields := strings.Fields(expr)
	switch len(fields) {
	case 5:
		fields = append([]string{"0"}, fields...)
	case 6:
	default:
		return Cron{}, fmt.Errorf("expected 6 fields (second minute hour day month day-of-week) or 5 (minute hour day month day-of-week), got %d", len(fields))
	}
	c := Cron{expr: expr}
	specs := []struct {
		name     string
		min, max int
		names    []string
		nameBase int
		dst      *uint64
	}{
		{"second", 0, 59, nil, 0, &c.sec},
		{"minute", 0, 59, nil, 0, &c.min},
		{"hour", 0, 23, nil, 0, &c.hour},
		{"day", 1, 31, nil, 0, &c.dom},
		{"month", 1, 12, monthNames, 1, &c.month},
		{"day-of-week", 0, 6, dayNames, 0, &c.dow},
	}
	for i, s := range specs {
		bits, err := parseField(fields[i], s.min, s.max, s.names, s.nameBase)
		if err != nil {
			return Cron{}, fmt.Errorf("%s field %q: %w", s.name, fields[i], err)
		}
		*s.dst = bits
	}
	c.domStar = fields[3] == "*" || fields[3] == "?"
	c.dowStar = fields[5] == "*" || fields[5] == "?"
	c.singleSecond = c.sec&(c.sec-1) == 0
	return c, nil
}

func (c Cron) String() string { return c.expr }

// AtMostOncePerMinute reports whether the expression names one second of
// each minute, so it cannot fire more than once a minute.
func (c Cron) AtMostOncePerMinute() bool { return c.singleSecond }

func parseField(f string, lo, hi int, names []string, nameBase int) (uint64, error) {
	var bits uint64
	for _, part := range strings.Split(f, ",") {
		if part == "" {
			return 0, fmt.Errorf("empty list element")
		}
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("step %q must be a positive number", stepStr)
			}
			step = n
		}
		var from, to int
		switch {
		case rng == "*" || rng == "?":
			from, to = lo, hi
		default:
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if from, err = value(a, lo, hi, names, nameBase); err != nil {
				return 0, err
			}
			to = from
			if isRange {
				if to, err = value(b, lo, hi, names, nameBase); err != nil {
					return 0, err
				}
				if to < from {
					return 0, fmt.Errorf("range %s runs backwards", rng)
				}
			} else if hasStep {
				to = hi // "5/15" means from 5 every 15
			}
		}
		for v := from; v <= to; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func value(s string, lo, hi int, names []string, nameBase int) (int, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) || (len(s) > 3 && strings.HasPrefix(strings.ToLower(s), n) && isFullName(s)) {
			return i + nameBase, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		if names != nil {
			return 0, fmt.Errorf("%q is not a number from %d to %d or a name like %s", s, lo, hi, names[0])
		}
		return 0, fmt.Errorf("%q is not a number from %d to %d", s, lo, hi)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is outside %d-%d", n, lo, hi)
	}
	return n, nil
}

var fullNames = []string{"january", "february", "march", "april", "june", "july", "august", "september", "october", "november", "december",
	"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

func isFullName(s string) bool {
	for _, n := range fullNames {
		if strings.EqualFold(s, n) {
			return true
		}
	}
	return false
}

func has(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }

func (c Cron) dayMatches(t time.Time) bool {
	return has(c.month, int(t.Month())) && has(c.dom, t.Day()) && has(c.dow, int(t.Weekday()))
}

// Next returns the first occurrence strictly after t (UTC), or the zero time
// if there is none within five years (e.g. "0 0 0 30 2 *").
func (c Cron) Next(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Second).Add(time.Second)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	first := true // on t's own day, start at t's hour, minute and second
	for range 5 * 366 {
		if c.dayMatches(day) {
			if at, ok := c.firstInDay(day, t, first); ok {
				return at
			}
		}
		first = false
		day = day.AddDate(0, 0, 1)
	}
	return time.Time{}
}

func (c Cron) firstInDay(day, t time.Time, bounded bool) (time.Time, bool) {
	h0 := 0
	if bounded {
		h0 = t.Hour()
	}
	for h := h0; h < 24; h++ {
		if !has(c.hour, h) {
			continue
		}
		m0 := 0
		if bounded && h == t.Hour() {
			m0 = t.Minute()
		}
		for m := m0; m < 60; m++ {
			if !has(c.min, m) {
				continue
			}
			s0 := 0
			if bounded && h == t.Hour() && m == t.Minute() {
				s0 = t.Second()
			}
			for s := s0; s < 60; s++ {
				if has(c.sec, s) {
					return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second), true
				}
			}
		}
	}
	return time.Time{}, false
}

// Latest returns the last occurrence in (after, until], or the zero time if
// none. It walks forward from after, so callers bound the window.
func (c Cron) Latest(after, until time.Time) time.Time {
	var last time.Time
	for t := c.Next(after); !t.IsZero() && !t.After(until); t = c.Next(t) {
		last = t
	}
	return last
}
