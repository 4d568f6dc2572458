//go:build !purego

package ingest

// plainRun returns the index of the first byte at or after p[i] that does not
// stand for itself in a JSON string (special), or len(p) when there is none.
func plainRun(p []byte, i int) int {
	if len(p) >= 16 {
		return plainRunSSE2(p, i)
	}
	return plainRunWords(p, i)
}

// plainRunSSE2 is plainRun for len(p) >= 16, 16 bytes at a time with SSE2 (which
// every amd64 has). The last bytes of p, fewer than 16, are tested as the end of
// the 16 bytes that end p.
//
//go:noescape
func plainRunSSE2(p []byte, i int) int
