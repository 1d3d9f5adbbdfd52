package verify

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// reference is the algorithm as published, with the three 64-bit cells
// (64, 64 and 32 bits wide) of the reference implementation.
func reference(data []byte) string {
	var cells [3]uint64
	widths := [3]uint{64, 64, 32}
	bit := uint(0)
	for _, b := range data {
		c, pos := bit/64, bit%64
		cells[c] ^= uint64(b) << pos
		if pos+8 > widths[c] { // the byte spills into the next cell
			cells[(c+1)%3] ^= uint64(b) >> (widths[c] - pos)
		}
		bit = (bit + 11) % 160
	}
	var out [20]byte
	binary.LittleEndian.PutUint64(out[0:], cells[0])
	binary.LittleEndian.PutUint64(out[8:], cells[1])
	binary.LittleEndian.PutUint32(out[16:], uint32(cells[2]))
	var l [8]byte
	binary.LittleEndian.PutUint64(l[:], uint64(len(data)))
	for i := range l {
		out[12+i] ^= l[i]
	}
	return QuickXorString(out[:])
}

func TestQuickXor(t *testing.T) {
	if got := QuickXorString(NewQuickXor().Sum(nil)); got != "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" {
		t.Errorf("empty input: %s", got)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 20, 159, 160, 161, 1000, 100_003} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		h := NewQuickXor()
		// Uneven writes: the offset must carry across calls.
		for rest := data; len(rest) > 0; {
			k := min(len(rest), 1+r.IntN(97))
			h.Write(rest[:k])
			rest = rest[k:]
		}
		if got, want := QuickXorString(h.Sum(nil)), reference(data); got != want {
			t.Errorf("%d bytes: %s, reference %s", n, got, want)
		}
	}
	a, b := NewQuickXor(), NewQuickXor()
	a.Write(bytes.Repeat([]byte{1}, 100))
	b.Write(bytes.Repeat([]byte{1}, 101))
	if bytes.Equal(a.Sum(nil), b.Sum(nil)) {
		t.Error("length is not part of the digest")
	}
}
