package main

import (
	"context"
)

// figEndToEnd is figures 4 and 5: a local end-to-end run of small files.
func (d *driver) figEndToEnd(ctx context.Context) []Row {
	const reason = "pipeline integration and Functions app not landed yet"
	var rows []Row
	if d.want("4") {
		rows = append(rows,
			naRow("4a", "Graph calls per 1,000 files (end-to-end, small files)", "≤ 0.05 × file-by-file floor (1,000)", reason),
		)
	}
	if d.want("5") {
		rows = append(rows,
			naRow("5a", "end-to-end: 2,000 files of 64 KiB through the local stack, wall time", "–", reason),
		)
	}
	return rows
}
