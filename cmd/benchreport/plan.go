package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spemigrate/spemigrate/shared/naming"
	"github.com/spemigrate/spemigrate/shared/source"
	"github.com/spemigrate/spemigrate/shared/spepackage"
	"github.com/spemigrate/spemigrate/shared/staging"
)

// listing is a source of n generated entries, listed in pages like a real
// one: a folder tree of 20 areas × 50 teams, 64 KiB files, 50 authors, and
// one name in a hundred that the naming policy must repair. Entries are made
// on demand, so the source holds nothing.
type listing struct{ n int }

var epoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func (l listing) entry(i int) source.Entry {
	name := fmt.Sprintf("report %06d.docx", i)
	if i%100 == 0 {
		name = fmt.Sprintf("notes: %06d?.txt", i) // refused characters
	}
	return source.Entry{
		Path:     fmt.Sprintf("Projects/area-%02d/team %03d/%s", i%20, (i/20)%50, name),
		Size:     64 << 10,
		Created:  epoch.Add(time.Duration(i) * time.Second),
		Modified: epoch.Add(time.Duration(i)*time.Second + time.Hour),
		ETag:     `"0x` + strconv.FormatInt(int64(i), 16) + `"`,
		Metadata: map[string]string{"author": "user" + strconv.Itoa(i%50) + "@contoso.com"},
	}
}

func (l listing) List(_ context.Context, cursor string, max int) (source.Page, error) {
	from := 0
	if cursor != "" {
		var err error
		if from, err = strconv.Atoi(cursor); err != nil {
			return source.Page{}, fmt.Errorf("bad cursor %q", cursor)
		}
	}
	to := min(from+max, l.n)
	p := source.Page{Entries: make([]source.Entry, 0, to-from)}
	for i := from; i < to; i++ {
		p.Entries = append(p.Entries, l.entry(i))
	}
	if to < l.n {
		p.Next = strconv.Itoa(to)
	}
	return p, nil
}

func (listing) Open(context.Context, source.Entry) (io.ReadCloser, error) {
	return nil, fmt.Errorf("listing has no content")
}

// encryptingDiscard is a manifest file as staging writes it: encrypted
// (AES-256-CBC + MD5) as it is written, the ciphertext thrown away.
type encryptingDiscard struct {
	pw   *io.PipeWriter
	done chan error
}

func newEncryptingDiscard() (*encryptingDiscard, error) {
	pr, pw := io.Pipe()
	iv, err := spepackage.NewIV()
	if err != nil {
		return nil, err
	}
	er, err := spepackage.NewEncryptReader(pr, benchKey, iv)
	if err != nil {
		return nil, err
	}
	e := &encryptingDiscard{pw: pw, done: make(chan error, 1)}
	go func() {
		_, err := io.Copy(io.Discard, er)
		er.Close()
		pr.CloseWithError(err)
		e.done <- err
	}()
	return e, nil
}

func (e *encryptingDiscard) Write(p []byte) (int, error) { return e.pw.Write(p) }
func (e *encryptingDiscard) Close() error {
	e.pw.Close()
	return <-e.done
}

const pageSize = 1000 // the engine's default plan page

// scenarioPlan plans arg source entries page by page as the engine does
// (naming policy, then batches within the package limits) and builds every
// batch's manifests, encrypted. It reports the time taken and the counts.
func scenarioPlan(ctx context.Context, arg string) (map[string]float64, error) {
	n, err := strconv.Atoi(arg)
	if err != nil {
		return nil, fmt.Errorf("plan argument %q: want an entry count", arg)
	}
	src := listing{n}
	var batches, items, renamed, manifests int
	wall, cpu, err := measure(func() error {
		mapper, err := naming.NewMapper("bench", naming.Policy{}, naming.NewMemoryClaims())
		if err != nil {
			return err
		}
		ids := spepackage.NewMemoryIntIDs(1)
		idf := staging.MetadataIdentities(nil)
		cursor := ""
		for {
			pg, err := src.List(ctx, cursor, pageSize)
			if err != nil {
				return err
			}
			// A page at a time, as the engine plans: MapPage claims each
			// folder level of the page in one call.
			ne := make([]naming.Entry, len(pg.Entries))
			for i, e := range pg.Entries {
				ne[i] = naming.Entry{Path: e.Path, Size: e.Size}
			}
			decs, err := mapper.MapPage(ctx, ne)
			if err != nil {
				return err
			}
			var page []staging.Item
			for i, dec := range decs {
				if dec.Action == naming.Skip {
					continue
				}
				if dec.Action != naming.Keep {
					renamed++
				}
				page = append(page, staging.Item{Path: dec.Target, Versions: []source.Entry{pg.Entries[i]}})
			}
			bs, err := staging.Plan(page, staging.DefaultLimits)
			if err != nil {
				return err
			}
			for _, b := range bs {
				batches++
				items += len(b.Items)
				if err := buildManifests(ctx, b, ids, idf, &manifests); err != nil {
					return err
				}
			}
			if pg.Next == "" {
				return nil
			}
			cursor = pg.Next
		}
	})
	if err != nil {
		return nil, err
	}
	if items+0 == 0 {
		return nil, fmt.Errorf("planned no items")
	}
	return map[string]float64{
		"entries": float64(n), "items": float64(items), "batches": float64(batches),
		"renamed": float64(renamed), "manifests": float64(manifests),
		"wall": wall.Seconds(), "cpu": cpu.Seconds(),
	}, nil
}

func buildManifests(ctx context.Context, b staging.Batch, ids spepackage.IntIDs, idf func(source.Entry) (spepackage.Identity, spepackage.Identity), files *int) error {
	items := make([]spepackage.Item, 0, len(b.Items))
	for _, it := range b.Items {
		e := it.Versions[0]
		lib := benchTarget.LibraryPath(it.Path)
		author, editor := idf(e)
		items = append(items, spepackage.Item{
			Path: it.Path, Created: e.Created, Author: author,
			Versions: []spepackage.Version{{
				BlobName: staging.BlobName(benchNamespace, lib, 0),
				Size:     e.Size, Modified: e.Modified, ModifiedBy: editor,
			}},
		})
	}
	_, err := spepackage.Build(ctx, spepackage.Package{
		Target: benchTarget, Namespace: benchNamespace, SourceType: spepackage.SourceAzureStorage,
		IDs: ids, Items: items,
	}, func(string) (io.WriteCloser, error) {
		*files++
		return newEncryptingDiscard()
	})
	return err
}

// scenarioPlanFloor is the baseline for planning: list the same entries and
// write one JSON record per entry, the least any planner that records what
// it planned must do.
func scenarioPlanFloor(ctx context.Context, arg string) (map[string]float64, error) {
	n, err := strconv.Atoi(arg)
	if err != nil {
		return nil, fmt.Errorf("planfloor argument %q: want an entry count", arg)
	}
	src := listing{n}
	wall, cpu, err := measure(func() error {
		enc := json.NewEncoder(io.Discard)
		cursor := ""
		for {
			pg, err := src.List(ctx, cursor, pageSize)
			if err != nil {
				return err
			}
			for i := range pg.Entries {
				if err := enc.Encode(&pg.Entries[i]); err != nil {
					return err
				}
			}
			if pg.Next == "" {
				return nil
			}
			cursor = pg.Next
		}
	})
	if err != nil {
		return nil, err
	}
	return map[string]float64{"wall": wall.Seconds(), "cpu": cpu.Seconds()}, nil
}

// figMemory is figure 2; it keeps the planning child's timings for figure 3.
func (d *driver) figMemory(ctx context.Context) []Row {
	const stageName = "peak RSS while staging one 2 GiB file (child process, VmHWM)"
	const planName = "peak RSS while planning a 100,000-file source into batches and writing their manifests (child process, VmHWM)"
	size, n := int64(2<<30), 100_000
	if d.short {
		size, n = 256<<20, 10_000
	}
	idle, err := spawn(ctx, "idle", "")
	if err != nil {
		return []Row{naRow("2a", stageName, "< 64 MiB", err.Error()), naRow("2b", planName, "< 128 MiB", err.Error())}
	}
	base := "idle child " + mibs(idle.VmHWM)
	var rows []Row
	if r, err := spawn(ctx, "stagebig", strconv.FormatInt(size, 10)); err != nil {
		rows = append(rows, naRow("2a", stageName, "< 64 MiB", err.Error()))
	} else {
		peak := max(r.VmHWM, r.MaxRSS)
		rows = append(rows, Row{
			Figure: "2a", Name: fmt.Sprintf("%s; %.0f MB/s wall", stageName, mbps(r.Values["bytes"], r.Values["wall"])),
			Value: mibs(peak), Baseline: base, Ratio: ratio(float64(peak), float64(idle.VmHWM)),
			Target: "< 64 MiB", Result: verdict(peak < 64*mib),
		})
		if size != 2<<30 {
			rows[len(rows)-1].Name += fmt.Sprintf(" (-short: %s)", mibs(size))
		}
	}
	r, err := spawn(ctx, "plan", strconv.Itoa(n))
	if err != nil {
		d.planErr = err
		rows = append(rows, naRow("2b", planName, "< 128 MiB", err.Error()))
		return rows
	}
	d.plan = &r
	peak := max(r.VmHWM, r.MaxRSS)
	rows = append(rows, Row{
		Figure: "2b", Name: fmt.Sprintf("%s; %d entries", planName, n),
		Value: mibs(peak), Baseline: base, Ratio: ratio(float64(peak), float64(idle.VmHWM)),
		Target: "< 128 MiB", Result: verdict(peak < 128*mib),
	})
	return rows
}

// figPlanning is figure 3.
func (d *driver) figPlanning(ctx context.Context) []Row {
	const name = "planning: source entries → naming policy → batches (≤ 250 items/250 MB) → manifests built and encrypted, per 1,000 entries"
	n := 100_000
	if d.short {
		n = 10_000
	}
	if d.plan == nil && d.planErr == nil {
		r, err := spawn(ctx, "plan", strconv.Itoa(n))
		if err != nil {
			d.planErr = err
		} else {
			d.plan = &r
		}
	}
	if d.planErr != nil {
		return []Row{naRow("3", name, "–", d.planErr.Error())}
	}
	floor, err := spawn(ctx, "planfloor", strconv.Itoa(n))
	if err != nil {
		return []Row{naRow("3", name, "–", err.Error())}
	}
	v := d.plan.Values
	per := v["wall"] / v["entries"] * 1000
	fper := floor.Values["wall"] / v["entries"] * 1000
	// The engine plans one page of 1,000 entries per message; at 250 GB/day
	// of 64 KiB files (SharePoint's small-file guidance) about 45 files
	// arrive per second, so a page must be planned in well under 22 s.
	return []Row{{
		Figure: "3", Name: fmt.Sprintf("%s; %.0f entries, %.0f batches, %.0f manifest files, %.0f renamed; CPU %.2f s", name, v["entries"], v["batches"], v["manifests"], v["renamed"], v["cpu"]),
		Value:    fmt.Sprintf("%.1f ms", per*1000),
		Baseline: fmt.Sprintf("list + one JSON record per entry %.1f ms", fper*1000),
		Ratio:    ratio(per, fper),
		Target:   "< 22 s (keeps pace with 250 GB/day of 64 KiB files)",
		Result:   verdict(per < 22),
	}}
}
