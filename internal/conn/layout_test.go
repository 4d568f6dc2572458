package conn

import (
	"testing"
	"unsafe"
)

// The reaper reads these fields of every connection on every pass: they share one
// cache line (a Conn of 384 bytes, a multiple of 64, is 64-byte aligned).
func TestReaperFieldsShareACacheLine(t *testing.T) {
	var c Conn
	first, last := unsafe.Offsetof(c.state), unsafe.Offsetof(c.accepted)+8
	for _, off := range []uintptr{unsafe.Offsetof(c.lastSeen), unsafe.Offsetof(c.writeAt), unsafe.Offsetof(c.frameStart)} {
		first, last = min(first, off), max(last, off+8)
	}
	if first/64 != (last-1)/64 {
		t.Errorf("the reaper's fields span offsets %d..%d, across a cache line", first, last)
	}
	// Only a size that is a multiple of 64 keeps every Conn of its size class
	// 64-byte aligned, and with it the offsets above.
	if size := unsafe.Sizeof(c); size%64 != 0 {
		t.Errorf("a Conn is %d bytes, not a multiple of 64", size)
	}
}
