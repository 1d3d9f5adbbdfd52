package scan

import (
	"math"
	"time"
)

// Ingest rates from Microsoft's published migration performance guidance
// for the SharePoint Migration API, which sorts content by how much
// metadata each byte carries: large files with light metadata (ISO, video)
// up to 2 TB a day, medium content (Office documents around 1.5 MB) up to
// 1 TB a day, and heavy content (small files, many list items) up to 250 GB
// a day. They are best cases for one tenant at off-peak hours, not
// promises; weekday daytime throttling of background apps makes real runs
// slower, so a scan reports them as an estimate and lets the operator set
// other rates (spemigrate scan -rate-light, -rate-medium, -rate-heavy).
const (
	LightBytesPerDay  int64 = 2_000_000_000_000
	MediumBytesPerDay int64 = 1_000_000_000_000
	HeavyBytesPerDay  int64 = 250_000_000_000
)

// The size bands that put a file in a rate class. The guidance names file
// types, not sizes; these bounds are our reading of it (a typical Office
// document is medium, a video light, anything under 100 KB heavy) and are
// assumptions.
const (
	LightMinBytes  int64 = 10 << 20
	MediumMinBytes int64 = 100 << 10
)

// Rates are the ingest rates an estimate uses, in bytes per day.
type Rates struct {
	Light, Medium, Heavy int64
}

// DefaultRates are the published rates above.
var DefaultRates = Rates{Light: LightBytesPerDay, Medium: MediumBytesPerDay, Heavy: HeavyBytesPerDay}

// Estimate is the expected ingest time of the files a migration would import.
type Estimate struct {
	// Duration is the sum of each class's bytes at its rate: the service
	// imports one tenant's packages at about the class rate however many
	// jobs run, so the classes add up rather than overlap.
	Duration time.Duration `json:"duration"`
	// DurationText is Duration rounded for people, e.g. "3h20m".
	DurationText string `json:"durationText"`
	Light        Class  `json:"light"`
	Medium       Class  `json:"medium"`
	Heavy        Class  `json:"heavy"`
	Rates        Rates  `json:"ratesBytesPerDay"`
}

// Class is the files of one rate class.
type Class struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

func (e *Estimate) add(size int64) {
	switch {
	case size >= LightMinBytes:
		e.Light.Files++
		e.Light.Bytes += size
	case size >= MediumMinBytes:
		e.Medium.Files++
		e.Medium.Bytes += size
	default:
		e.Heavy.Files++
		e.Heavy.Bytes += size
	}
}

func (e *Estimate) finish(r Rates) {
	e.Rates = r
	day := float64(24 * time.Hour)
	d := 0.0
	for _, c := range []struct {
		bytes int64
		rate  int64
	}{{e.Light.Bytes, r.Light}, {e.Medium.Bytes, r.Medium}, {e.Heavy.Bytes, r.Heavy}} {
		if c.bytes > 0 && c.rate > 0 {
			d += float64(c.bytes) / float64(c.rate) * day
		}
	}
	e.Duration = time.Duration(math.Min(d, math.MaxInt64))
	e.DurationText = roundDuration(e.Duration).String()
}

// roundDuration keeps two significant units, so a report says "3h20m0s"
// rather than "3h19m47.118s".
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute)
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
