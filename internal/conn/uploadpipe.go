package conn

import (
	"sync"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// uploadJob is one upload frame the reader parsed, for the upload writer.
type uploadJob struct {
	t      protocol.Type
	seq    uint64 // the frame's seq: a chunk's offset
	id     string // a chunk's upload id
	data   []byte // a chunk's bytes, owned by the job
	buf    *[]byte
	open   protocol.UploadOpen
	commit protocol.UploadCommit
}

// uploadPipe splits an upload's work between the connection's reader, which
// only parses upload frames and hands them on, and the upload writer, a
// goroutine that exists while jobs are queued (as the flusher does while output
// is) and runs them in order: the store's checks, the pwrite, the sha256, the
// answer. A report read after a chunk then waits for the chunk's bytes to be
// read, not written and hashed. The reader stops reading while the chunk bytes
// queued reach the announced in-flight bound, so TCP pushes back on the client.
type uploadPipe struct {
	mu      sync.Mutex
	cond    sync.Cond // on mu: a job finished, or the writer stopped
	queue   []uploadJob
	head    int  // queue[head:] is waiting
	queued  int  // chunk bytes queued or being written
	running bool // the writer goroutine exists
}

// push queues j for the writer, first waiting while the chunk bytes queued
// would go past bound; the reader calls it.
func (p *uploadPipe) push(c *Conn, j uploadJob, bound int) {
	p.mu.Lock()
	if p.cond.L == nil {
		p.cond.L = &p.mu
	}
	for p.queued > 0 && p.queued+len(j.data) > bound {
		p.cond.Wait()
	}
	p.queue = append(p.queue, j)
	p.queued += len(j.data)
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		go c.writeUploads()
	}
}

// next returns the job to run, or false after marking the writer gone when
// none is left.
func (p *uploadPipe) next() (uploadJob, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head == len(p.queue) {
		p.queue, p.head, p.running = p.queue[:0], 0, false
		p.cond.Broadcast()
		return uploadJob{}, false
	}
	j := p.queue[p.head]
	p.queue[p.head] = uploadJob{}
	p.head++
	return j, true
}

// done accounts for a job the writer finished.
func (p *uploadPipe) done(j uploadJob) {
	p.mu.Lock()
	p.queued -= len(j.data)
	p.cond.Broadcast()
	p.mu.Unlock()
}

// settle waits until every queued job has been run and answered: after it, the
// reader may touch the uploads (handoff, teardown) until it queues again.
func (p *uploadPipe) settle() {
	p.mu.Lock()
	for p.running {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

// busy says whether the writer has jobs left (a handoff's quiet point waits).
func (p *uploadPipe) busy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// writeUploads is the upload writer: it runs the queued jobs in order and
// answers each, then exits when none is left.
func (c *Conn) writeUploads() {
	p := &c.up.pipe
	for {
		j, ok := p.next()
		if !ok {
			return
		}
		st := c.runUpload(j)
		c.send(protocol.TypeUploadState, j.seq, &st)
		if j.buf != nil {
			putChunkBuf(j.buf)
		}
		p.done(j)
	}
}

// chunkPool holds the buffers a large UPLOAD_CHUNK frame is read into whole:
// its payload is then written from there, without a copy, and the buffer comes
// back once the write is done. An idle connection holds none.
var chunkPool sync.Pool

func getChunkBuf(n int) *[]byte {
	if b, _ := chunkPool.Get().(*[]byte); b != nil && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

func putChunkBuf(b *[]byte) { chunkPool.Put(b) }

// readChunkDirect, when the reader's buffer is full with the start of an
// UPLOAD_CHUNK frame of need bytes, moves it into a chunk buffer of exactly that
// size, so that the reads that follow bring the rest of the frame in place and
// stop at its end. Like the buffer growth it replaces, it happens only once the
// frame's bytes have filled the read buffer, never on a header alone.
func (c *Conn) readChunkDirect(need int) bool {
	buf := (*c.rbuf)[:c.rlen]
	if c.m.uploads == nil || c.state.Load() != stateActive || protocol.Type(buf[3]) != protocol.TypeUploadChunk {
		return false
	}
	b := getChunkBuf(need)
	copy(*b, buf)
	putReadBuf(c.rbuf)
	c.rbuf = b
	c.uploads().direct = true
	return true
}

// takeChunk returns data, a chunk's bytes in the read buffer, as the job's own:
// the chunk buffer itself when the frame was read into one (the reader goes on
// with a fresh read buffer), a copy otherwise.
func (c *Conn) takeChunk(data []byte) ([]byte, *[]byte) {
	up := c.uploads()
	if !up.direct {
		return append([]byte(nil), data...), nil
	}
	up.direct = false
	b := c.rbuf
	// The frame fills the chunk buffer exactly: nothing after it is lost.
	c.rbuf, c.rlen = getReadBuf(), 0
	return data, b
}
