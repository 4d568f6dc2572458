//go:build !amd64 || purego

package ingest

// plainRun returns the index of the first byte at or after p[i] that does not
// stand for itself in a JSON string (special), or len(p) when there is none.
func plainRun(p []byte, i int) int { return plainRunWords(p, i) }
