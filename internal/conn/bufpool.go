package conn

import "sync"

// Buffers belong to a connection only while it is reading or writing: an idle
// connection holds none, which is what keeps 15,000 idle agents within a few KiB each.
// Pools hold *[]byte so Put does not allocate a slice header each time.
const (
	readBufSize   = 16 << 10
	writeBufSize  = 4 << 10
	maxPooledSize = 64 << 10 // larger buffers (one-off big frames) go to the GC
)

var (
	readPool  = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}
	writePool = sync.Pool{New: func() any { b := make([]byte, 0, writeBufSize); return &b }}
)

func getReadBuf() *[]byte { return readPool.Get().(*[]byte) }

func putReadBuf(b *[]byte) {
	if b == nil || cap(*b) != readBufSize {
		return
	}
	*b = (*b)[:readBufSize]
	readPool.Put(b)
}

func getWriteBuf() *[]byte {
	b := writePool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

func putWriteBuf(b *[]byte) {
	if b == nil || cap(*b) > maxPooledSize {
		return
	}
	*b = (*b)[:0]
	writePool.Put(b)
}
