package verify

import (
	"encoding/base64"
	"encoding/binary"
	"hash"
)

// QuickXorSize is the length of a QuickXorHash digest in bytes.
const QuickXorSize = 20

// quickXor is OneDrive's QuickXorHash, the content hash Graph reports for
// SharePoint and OneDrive files (file.hashes.quickXorHash): every byte is
// XORed into a 160-bit state at a bit offset that advances by 11 per byte,
// wrapping around, and at the end the 64-bit little-endian length is XORed
// into the last 8 bytes. The state is kept as 20 bytes, byte k holding bits
// 8k to 8k+7, which is the little-endian layout of the reference's three
// 64-bit cells, so the digest bytes come out in the published order.
type quickXor struct {
	state [QuickXorSize]byte
	off   uint // bit offset of the next byte, 0 ≤ off < 160
	n     uint64
}

// NewQuickXor returns a QuickXorHash; Sum appends the 20-byte digest, and
// Graph shows it base64-encoded ([QuickXorString]).
func NewQuickXor() hash.Hash { return &quickXor{} }

func (h *quickXor) Write(p []byte) (int, error) {
	off := h.off
	for _, b := range p {
		i, shift := off>>3, off&7
		h.state[i] ^= b << shift
		if shift != 0 {
			j := i + 1
			if j == QuickXorSize {
				j = 0
			}
			h.state[j] ^= b >> (8 - shift)
		}
		if off += 11; off >= 8*QuickXorSize {
			off -= 8 * QuickXorSize
		}
	}
	h.off = off
	h.n += uint64(len(p))
	return len(p), nil
}

func (h *quickXor) Sum(b []byte) []byte {
	out := h.state
	var l [8]byte
	binary.LittleEndian.PutUint64(l[:], h.n)
	for i := range l {
		out[QuickXorSize-8+i] ^= l[i]
	}
	return append(b, out[:]...)
}

func (h *quickXor) Reset()         { *h = quickXor{} }
func (h *quickXor) Size() int      { return QuickXorSize }
func (h *quickXor) BlockSize() int { return 64 }

// QuickXorString is a digest as Graph shows it: standard base64.
func QuickXorString(sum []byte) string { return base64.StdEncoding.EncodeToString(sum) }
