package tlsrecord

import "sync"

const (
	rbufSize    = 2 * maxRecord // room for a whole record after any partial one
	recordSpace = headerLen + maxPlaintext + 1 + 16
	wbufSize    = 4 * recordSpace // what one write of the connection carries at most
)

var (
	readBufs  = sync.Pool{New: func() any { b := make([]byte, rbufSize); return &b }}
	writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, wbufSize); return &b }}
)

func getReadBuf() *[]byte   { return readBufs.Get().(*[]byte) }
func putReadBuf(b *[]byte)  { readBufs.Put(b) }
func getWriteBuf() *[]byte  { return writeBufs.Get().(*[]byte) }
func putWriteBuf(b *[]byte) { writeBufs.Put(b) }
