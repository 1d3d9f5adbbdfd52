package schedule

import (
	"strings"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestCronNext(t *testing.T) {
	tests := []struct {
		expr, after, want string
	}{
		{"0 */1 * * * *", "2026-11-26T23:40:10Z", "2026-11-26T23:41:00Z"},
		{"0 */1 * * * *", "2026-11-26T23:41:00Z", "2026-11-26T23:42:00Z"}, // strictly after
		{"*/5 * * * *", "2026-11-26T23:41:00Z", "2026-11-26T23:45:00Z"},   // 5 fields: second 0
		{"0 0 2 * * *", "2026-11-26T23:41:00Z", "2026-11-27T02:00:00Z"},
		{"0 30 9 * * mon-fri", "2026-11-27T10:00:00Z", "2026-11-30T09:30:00Z"}, // Fri after 09:30 → Mon
		{"0 0 0 1 jan *", "2026-11-26T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"0 0 0 13 * 5", "2026-01-01T00:00:00Z", "2026-02-13T00:00:00Z"}, // Friday the 13th: AND, not OR
		{"0 0 12 * * Sunday", "2026-11-26T00:00:00Z", "2026-11-29T12:00:00Z"},
		{"15,45 10 8-9 * * *", "2026-11-26T08:10:20Z", "2026-11-26T08:10:45Z"},
		{"0 5/20 * * * *", "2026-11-26T08:06:00Z", "2026-11-26T08:25:00Z"},
		{"0 0 0 30 2 *", "2026-01-01T00:00:00Z", ""}, // never
	}
	for _, tt := range tests {
		c, err := ParseCron(tt.expr)
		if err != nil {
			t.Fatalf("ParseCron(%q): %v", tt.expr, err)
		}
		got := c.Next(at(tt.after))
		if tt.want == "" {
			if !got.IsZero() {
				t.Errorf("%q after %s = %v, want none", tt.expr, tt.after, got)
			}
			continue
		}
		if !got.Equal(at(tt.want)) {
			t.Errorf("%q after %s = %v, want %s", tt.expr, tt.after, got, tt.want)
		}
	}
}

func TestCronErrors(t *testing.T) {
	for expr, want := range map[string]string{
		"":               "expected 6 fields",
		"* * *":          "got 3",
		"0 60 * * * *":   "minute field",
		"0 0 24 * * *":   "hour field",
		"0 0 0 0 * *":    "day field",
		"0 0 0 * 13 *":   "month field",
		"0 0 0 * * 7":    "day-of-week field",
		"0 0 0 * foo *":  "month field",
		"0 */0 * * * *":  "step",
		"0 10-5 * * * *": "backwards",
		"0 1,,2 * * * *": "empty list",
	} {
		_, err := ParseCron(expr)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCron(%q) = %v, want an error containing %q", expr, err, want)
		}
	}
}

func TestCronLatest(t *testing.T) {
	c, _ := ParseCron("0 0 * * * *")
	got := c.Latest(at("2026-11-26T10:00:00Z"), at("2026-11-26T13:30:00Z"))
	if !got.Equal(at("2026-11-26T13:00:00Z")) {
		t.Errorf("Latest = %v", got)
	}
	if got := c.Latest(at("2026-11-26T13:00:00Z"), at("2026-11-26T13:30:00Z")); !got.IsZero() {
		t.Errorf("Latest with no slot in the window = %v", got)
	}
}

func BenchmarkCronLatestDay(b *testing.B) {
	c, _ := ParseCron("0 * * * * *")
	from := at("2026-11-26T00:00:00Z")
	for b.Loop() {
		c.Latest(from, from.Add(24*time.Hour))
	}
}
