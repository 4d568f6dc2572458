package upload

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// BenchmarkWrite stores 64 MiB in chunks of 1 MiB (fsync never), each chunk's
// sha256 beside its write: what one connection's upload writer costs per file.
func BenchmarkWrite(b *testing.B) {
	const size, chunk = 64 << 20, 1 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), chunk/16)
	s := openStore(b, b.TempDir(), &records{}, func(o *Options) { o.Fsync = func() bool { return false } })
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		id := "w-" + strconv.Itoa(i)
		u, st := s.Begin("c", protocol.UploadOpen{UploadID: id, Name: "f", Size: size})
		if u == nil {
			b.Fatal(st)
		}
		for off := 0; off < size; off += chunk {
			if st := u.Write(uint64(off), data); st.Code != "" {
				b.Fatal(st)
			}
		}
		u.Close()
	}
}
