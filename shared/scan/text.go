package scan

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteText prints the report for people: totals first, then what the
// naming policy changes, the biggest and deepest files, the extension
// histogram, the plan and the estimate.
func (r *Report) WriteText(w io.Writer, list int) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("Readiness scan (dry run: nothing was created or enqueued)\n")
	p("  source:\t%s\n  target:\t%s\n", r.Source, r.Target)
	p("  files:\t%d (%d versions), %s\n", r.Files, r.Versions, Size(r.Bytes))
	p("  would import:\t%d (%d under their own names, %d renamed), %s\n", r.Kept+r.Renamed, r.Kept, r.Renamed, Size(r.ImportBytes))
	p("  skipped:\t%d\n", r.Skipped)
	p("  packages:\t%d (one migration job each; at most %d items or %s per package)\n", r.Packages, r.Limits.MaxItems, Size(r.Limits.MaxBytes))
	e := r.Estimate
	gb := func(n int64) string { return fmt.Sprintf("%g", float64(n)/1e9) }
	p("  estimate:\t%s (light %d files %s, medium %d files %s, heavy %d files %s, at %s/%s/%s GB a day)\n", e.DurationText,
		e.Light.Files, Size(e.Light.Bytes), e.Medium.Files, Size(e.Medium.Bytes), e.Heavy.Files, Size(e.Heavy.Bytes),
		gb(e.Rates.Light), gb(e.Rates.Medium), gb(e.Rates.Heavy))
	p("  scan time:\t%s\n", roundDuration(r.Elapsed))
	if len(r.Rules) > 0 {
		p("\nNaming rules applied (files):\n")
		for _, k := range slices.Sorted(maps.Keys(r.Rules)) {
			p("  %s\t%d\n", k, r.Rules[k])
		}
	}
	writeChanges(p, "Renamed", r.Renames, r.Renamed, list)
	writeChanges(p, "Skipped", r.Skips, r.Skipped, list)
	p("\nLargest files:\n")
	for _, f := range r.Largest {
		p("  %s\t%s\n", Size(f.Size), f.Source)
	}
	p("\nLongest paths (characters SharePoint counts, limit 400):\n")
	for _, f := range r.LongestPaths {
		p("  %d\t%s\n", f.PathLength, f.Source)
	}
	p("\nExtensions:\n")
	for i, x := range r.Extensions {
		if i == list {
			p("  … %d more\n", len(r.Extensions)-list)
			break
		}
		p("  %s\t%d files\t%s\n", cmpOr(x.Ext, "(none)"), x.Files, Size(x.Bytes))
	}
	p("\nNotes:\n")
	for _, n := range r.Notes {
		p("  - %s\n", n)
	}
	return tw.Flush()
}

func writeChanges(p func(string, ...any), what string, cs []Change, total, list int) {
	if total == 0 {
		return
	}
	p("\n%s (%d):\n", what, total)
	for i, c := range cs {
		if i == list {
			p("  … %d more (the JSON report, -json, lists up to its limit)\n", total-list)
			return
		}
		if c.Target != "" {
			p("  %s → %s: %s\n", c.Source, c.Target, c.Reason)
		} else {
			p("  %s: %s\n", c.Source, c.Reason)
		}
	}
	if len(cs) < total {
		p("  … %d more not listed\n", total-len(cs))
	}
}

func cmpOr(s, alt string) string {
	if strings.TrimSpace(s) == "" {
		return alt
	}
	return s
}

// Size formats a byte count in binary units, as the CLI does elsewhere.
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
