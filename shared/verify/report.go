package verify

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Row is one line of a migration's report.csv.
type Row struct {
	SourcePath, VersionID, TargetPath, Batch string
	Size                                     int64
	Outcome, Reason                          string
}

var reportColumns = []string{"source_path", "version_id", "target_path", "batch", "size", "outcome", "reason"}

// ParseReport reads report.csv (GET /api/migrations/{id}/report.csv).
func ParseReport(data []byte) ([]Row, error) {
	r := csv.NewReader(bytes.NewReader(data))
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("verify: report header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, c := range reportColumns {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("verify: report has no %q column (header %q)", c, head)
		}
	}
	var rows []Row
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("verify: report: %w", err)
		}
		size, _ := strconv.ParseInt(rec[col["size"]], 10, 64)
		rows = append(rows, Row{
			SourcePath: unformula(rec[col["source_path"]]), VersionID: rec[col["version_id"]],
			TargetPath: unformula(rec[col["target_path"]]), Batch: rec[col["batch"]], Size: size,
			Outcome: rec[col["outcome"]], Reason: rec[col["reason"]],
		})
	}
}

// unformula undoes the quote a CSV writer puts before a cell that a
// spreadsheet would run as a formula.
func unformula(s string) string {
	if len(s) > 1 && s[0] == '\'' && strings.ContainsRune("=+-@\t\r", rune(s[1])) {
		return s[1:]
	}
	return s
}

// Summary counts a report's rows.
type Summary struct {
	Items    int
	Outcomes map[string]int
	// Bytes sums the sizes of imported and renamed items.
	Bytes int64
}

// Summarise counts outcomes and imported bytes.
func Summarise(rows []Row) Summary {
	s := Summary{Outcomes: map[string]int{}}
	for _, r := range rows {
		s.Items++
		s.Outcomes[r.Outcome]++
		if r.Outcome == "imported" || r.Outcome == "renamed" {
			s.Bytes += r.Size
		}
	}
	return s
}
