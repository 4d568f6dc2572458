package ingest

import (
	"encoding/binary"
	"math/bits"
)

// A payload is mostly string bytes, and scanString's time is mostly plainRun's:
// the bytes that stand for themselves are tested in one pass, for the quote, the
// backslash, control characters and non-ASCII bytes together, 16 bytes an
// instruction sequence on amd64 (plain_amd64.s) and two words at a time elsewhere
// or with -tags purego (plainRunWords, which the tests hold to the same answers).

// special has the high bit set of each byte of x that does not stand for itself
// inside a JSON string: a quote, a backslash, a control character (< 0x20) or a
// byte of a multi-byte UTF-8 sequence (>= 0x80); maybe of bytes above such a byte
// too, never below the first. A borrow taken from a byte, by the subtractions of
// 0x20 and of 1 from the bytes equal to '"' or '\\' once xor-ed to 0, reaches only
// the bytes above one that is itself special, so the lowest bit set is exact
// (TestSpecial): bits.TrailingZeros64(special(x))/8 is the first such byte's index.
func special(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ ones*'"'
	b := x ^ ones*'\\'
	return ((x - ones*0x20) | x | (q-ones)&^q | (b-ones)&^b) & highs
}

// plainRunWords is plainRun two words at a time, for any architecture. The last
// bytes of p, fewer than a word, are tested as the end of the word that ends p,
// shifted down: the zero bytes shifted in are special and say len(p) or more,
// which is what the end of p means.
func plainRunWords(p []byte, i int) int {
	// s is p from i on: resliced rather than indexed, which spares the loop a
	// bounds check and a pointer mask per word.
	s := p[i:]
	for len(s) >= 16 {
		m0 := special(binary.LittleEndian.Uint64(s))
		m1 := special(binary.LittleEndian.Uint64(s[8:16]))
		if m0|m1 != 0 {
			if m0 != 0 {
				return len(p) - len(s) + bits.TrailingZeros64(m0)/8
			}
			return len(p) - len(s) + 8 + bits.TrailingZeros64(m1)/8
		}
		s = s[16:]
	}
	if len(s) >= 8 {
		if m := special(binary.LittleEndian.Uint64(s)); m != 0 {
			return len(p) - len(s) + bits.TrailingZeros64(m)/8
		}
		s = s[8:]
	}
	if len(s) > 0 && len(p) >= 8 {
		m := special(binary.LittleEndian.Uint64(p[len(p)-8:]) >> (8 * (8 - len(s))))
		return min(len(p)-len(s)+bits.TrailingZeros64(m)/8, len(p))
	}
	for len(s) > 0 && strSafe[s[0]] {
		s = s[1:]
	}
	return len(p) - len(s)
}
