package client

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"sync"
)

// fileHash computes a file's sha256 on a goroutine of its own, reading the file
// apart from the chunks (io.ReaderAt allows parallel reads): the hashing
// overlaps the transfer instead of delaying each chunk, at the cost of reading
// the file twice (the second time from the page cache, for a file on disk).
type fileHash struct {
	stop chan struct{}
	done chan struct{}
	sum  string
	err  error
}

var errHashStopped = errors.New("hawk: the upload ended before its hash")

func hashFile(r io.ReaderAt, size int64) *fileHash {
	h := &fileHash{stop: make(chan struct{}), done: make(chan struct{})}
	go h.run(r, size)
	return h
}

func (h *fileHash) run(r io.ReaderAt, size int64) {
	defer close(h.done)
	d := sha256.New()
	buf := make([]byte, 256<<10)
	for off := int64(0); off < size; {
		select {
		case <-h.stop:
			h.err = errHashStopped
			return
		default:
		}
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		d.Write(buf[:n])
		off += int64(n)
		if errors.Is(err, io.EOF) || n == 0 && err == nil {
			break // a file shorter than its Size: the commit's sha256 says so
		}
		if err != nil {
			h.err = err
			return
		}
	}
	h.sum = hex.EncodeToString(d.Sum(nil))
}

// knownHash is the fileHash of a file whose sha256 the caller gave.
func knownHash(sum string) *fileHash {
	h := &fileHash{stop: make(chan struct{}), done: make(chan struct{}), sum: sum}
	close(h.done)
	return h
}

// wait returns the file's sha256 once computed, or done's error first.
func (h *fileHash) wait(done <-chan struct{}, err func() error) (string, error) {
	select {
	case <-h.done:
		return h.sum, h.err
	case <-done:
		return "", err()
	}
}

// close stops the hashing if it is still running and waits for its goroutine.
func (h *fileHash) close() {
	close(h.stop)
	<-h.done
}

// chunkBufs are the buffers an attempt reads chunks into. A chunk's bytes are
// written from its buffer (session.queueChunk), so a buffer is reused only once
// the session has written it; one attempt's buffers are never another's, whose
// session may still be writing the old ones. At the attempt's end the buffers
// written go to chunkPool, for the next upload: a fresh megabyte costs its page
// faults and zeroing every time.
type chunkBufs struct {
	size int64
	lent []lentBuf
}

type lentBuf struct {
	b       []byte
	written uint64 // the session's written count once b is written
}

// get returns a buffer of the chunk size that s no longer writes from.
func (c *chunkBufs) get(s *session) []byte {
	w := s.written.Load()
	for i, l := range c.lent {
		if l.written <= w {
			c.lent[i] = c.lent[len(c.lent)-1]
			c.lent = c.lent[:len(c.lent)-1]
			return l.b
		}
	}
	if b, _ := chunkPool.Get().(*[]byte); b != nil && int64(cap(*b)) >= c.size {
		return (*b)[:c.size]
	}
	return make([]byte, c.size)
}

var chunkPool sync.Pool

// release puts the buffers s has written into chunkPool; those it may still be
// writing from are left to the garbage collector.
func (c *chunkBufs) release(s *session) {
	w := s.written.Load()
	for _, l := range c.lent {
		if l.written <= w {
			chunkPool.Put(&l.b)
		}
	}
	c.lent = nil
}

// lend records that b is written from until s's written count reaches written.
func (c *chunkBufs) lend(b []byte, written uint64) {
	c.lent = append(c.lent, lentBuf{b[:cap(b)], written})
}
