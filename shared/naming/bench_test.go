package naming

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkMap maps paths in 50 folders of a fresh migration (in-memory
// claims), the cost the pipeline pays per item before any I/O.
func BenchmarkMap(b *testing.B) {
	ctx := context.Background()
	m, err := NewMapper("bench", Policy{}, NewMemoryClaims())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := m.Map(ctx, fmt.Sprintf("Projects/area %d/sub:dir/report %d.pdf", i%50, i), 1024); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
