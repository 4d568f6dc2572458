package upload

import (
	"encoding"
	"sync"
)

// minHashBeside is the least chunk hashed on a goroutine of its own: below it,
// starting one costs about what the overlap saves.
const minHashBeside = 64 << 10

// beside runs the sha256 of a chunk on another goroutine while the chunk is
// written, so that the upload's two costs on the server, the copy into the page
// cache and the hash, take the time of the larger, not of both, when a core is
// free. Write joins it before answering: the hash state always matches the
// durable offset when the entry's lock is free (Commit, Handover).
type beside struct {
	wg    sync.WaitGroup
	saved []byte // the state before the chunk, for a write that fails
}

// start hashes data into h beside the caller, having saved h's state; it
// reports false (nothing started) when data is small or h cannot be saved.
func (b *beside) start(h interface {
	Write([]byte) (int, error)
}, data []byte) bool {
	a, ok := h.(encoding.BinaryAppender)
	if !ok || len(data) < minHashBeside {
		return false
	}
	saved, err := a.AppendBinary(b.saved[:0])
	if err != nil {
		return false
	}
	b.saved = saved
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		h.Write(data)
	}()
	return true
}

// undo, after wait, puts h back in the state before the chunk.
func (b *beside) undo(h encoding.BinaryUnmarshaler) error {
	return h.UnmarshalBinary(b.saved)
}
