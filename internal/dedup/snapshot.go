package dedup

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"time"

	"github.com/hawk-agents/hawk/internal/spool"
)

// Mark is a point in the spool of the process that writes a snapshot
// (spool.Mark): its segment being written and that segment's size, taken before
// the snapshot, so that every line before it is in the snapshot's windows and the
// new process follows the segment from there (FollowFrom).
type Mark struct {
	Segment string // a segment name, without directory
	Offset  int64
}

// The snapshot, big endian:
//
//	magic "HWKD", version (u8), the writer's window (u32),
//	the mark: segment name length (u8), name, offset (u64),
//	per client with a seq seen: id length (u16, 1..maxIDLen), id, hi (u64),
//	  word count (u16, at most window/64), the words (u64 each): Durable's
//	  bits, relative to hi, trailing zero words left out;
//	an id length of 0, the count of clients (u64), and the CRC-32 (IEEE, u32)
//	of every byte before it.
//
// The reader applies nothing until the checksum matched: a short or damaged
// snapshot changes nothing in the table.
var snapMagic = [4]byte{'H', 'W', 'K', 'D'}

const (
	snapVersion = 1
	maxIDLen    = 4096 // far above a client_id's bound; a larger length is damage
	maxSnapOff  = 1 << 62
)

// SnapshotStats says what a snapshot held.
type SnapshotStats struct {
	Clients int
	Bytes   int64
	Took    time.Duration
}

type crcWriter struct {
	w   io.Writer
	crc hash.Hash32
	n   int64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.crc.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// WriteSnapshot writes every remembered client's durable window to w, after m
// (see Mark: take m first). The table keeps serving: each client's lock is held
// while its window is copied, the table's while the clients are listed.
func (t *Table) WriteSnapshot(w io.Writer, m Mark) (SnapshotStats, error) {
	began := time.Now()
	var st SnapshotStats
	if len(m.Segment) == 0 || len(m.Segment) > 255 || m.Offset < 0 || m.Offset > maxSnapOff {
		return st, fmt.Errorf("dedup: snapshot: bad mark %q at %d", m.Segment, m.Offset)
	}
	t.mu.Lock()
	clients := make([]*Client, 0, len(t.clients))
	for _, c := range t.clients {
		clients = append(clients, c)
	}
	t.mu.Unlock()

	cw := &crcWriter{w: w, crc: crc32.NewIEEE()}
	bw := bufio.NewWriterSize(cw, 64<<10)
	var b []byte
	b = append(b, snapMagic[:]...)
	b = append(b, snapVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(t.window))
	b = append(b, byte(len(m.Segment)))
	b = append(b, m.Segment...)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Offset))
	if _, err := bw.Write(b); err != nil {
		return st, fmt.Errorf("dedup: snapshot: %w", err)
	}
	win := make([]uint64, t.words())
	for _, c := range clients {
		if len(c.id) == 0 || len(c.id) > maxIDLen {
			continue // not a client_id a connection can have
		}
		c.mu.Lock()
		if !c.has {
			c.mu.Unlock()
			continue
		}
		clear(win)
		c.durableIntoLocked(win)
		hi := c.hi
		c.mu.Unlock()
		n := len(win)
		for n > 0 && win[n-1] == 0 {
			n--
		}
		b = b[:0]
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.id)))
		b = append(b, c.id...)
		b = binary.BigEndian.AppendUint64(b, hi)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		for _, x := range win[:n] {
			b = binary.BigEndian.AppendUint64(b, x)
		}
		if _, err := bw.Write(b); err != nil {
			return st, fmt.Errorf("dedup: snapshot: %w", err)
		}
		st.Clients++
	}
	b = binary.BigEndian.AppendUint16(b[:0], 0)
	b = binary.BigEndian.AppendUint64(b, uint64(st.Clients))
	if _, err := bw.Write(b); err != nil {
		return st, fmt.Errorf("dedup: snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("dedup: snapshot: %w", err)
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], cw.crc.Sum32())
	if _, err := w.Write(sum[:]); err != nil {
		return st, fmt.Errorf("dedup: snapshot: %w", err)
	}
	st.Bytes = cw.n + 4
	st.Took = time.Since(began)
	return st, nil
}

// Snapshot is a snapshot read and checked (ReadSnapshot), not yet applied.
type Snapshot struct {
	Window int  // the writer's
	Mark   Mark // where the writer's spool stood
	Bytes  int64

	ids   []string
	his   []uint64
	ends  []int // client i's words are words[ends[i-1]:ends[i]]
	words []uint64
}

// Clients is the number of clients in s.
func (s *Snapshot) Clients() int { return len(s.ids) }

type crcReader struct {
	r   *bufio.Reader
	crc hash.Hash32
	n   int64
	b   [8]byte
}

func (c *crcReader) full(n int) ([]byte, error) {
	p := c.b[:n]
	if _, err := io.ReadFull(c.r, p); err != nil {
		return nil, err
	}
	c.crc.Write(p)
	c.n += int64(n)
	return p, nil
}

func (c *crcReader) u8() (uint8, error) {
	p, err := c.full(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (c *crcReader) u16() (uint16, error) {
	p, err := c.full(2)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(p), nil
}

func (c *crcReader) u32() (uint32, error) {
	p, err := c.full(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(p), nil
}

func (c *crcReader) u64() (uint64, error) {
	p, err := c.full(8)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(p), nil
}

// str reads n bytes as a string, growing only as the bytes arrive.
func (c *crcReader) str(n int) (string, error) {
	p := make([]byte, n)
	if _, err := io.ReadFull(c.r, p); err != nil {
		return "", err
	}
	c.crc.Write(p)
	c.n += int64(n)
	return string(p), nil
}

// ReadSnapshot reads a snapshot another process wrote (WriteSnapshot) from r, to
// its checksum, and checks it. It reads no further than the snapshot's end, and
// allocates in proportion to the bytes it read, whatever the lengths claim.
func ReadSnapshot(r io.Reader) (*Snapshot, error) {
	s, err := readSnapshot(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("dedup: snapshot: %w", err)
	}
	return s, nil
}

var errSnapshot = errors.New("not a dedup snapshot")

func readSnapshot(r io.Reader) (*Snapshot, error) {
	c := &crcReader{r: bufio.NewReaderSize(r, 64<<10), crc: crc32.NewIEEE()}
	p, err := c.full(4)
	if err != nil {
		return nil, err
	}
	if [4]byte(p) != snapMagic {
		return nil, errSnapshot
	}
	v, err := c.u8()
	if err != nil {
		return nil, err
	}
	if v != snapVersion {
		return nil, fmt.Errorf("version %d, not %d", v, snapVersion)
	}
	w, err := c.u32()
	if err != nil {
		return nil, err
	}
	if err := ValidWindow(int(w)); err != nil {
		return nil, fmt.Errorf("window %w", err)
	}
	s := &Snapshot{Window: int(w)}
	nl, err := c.u8()
	if err != nil {
		return nil, err
	}
	if s.Mark.Segment, err = c.str(int(nl)); err != nil {
		return nil, err
	}
	if _, ok := spool.SegmentPID(s.Mark.Segment); !ok {
		return nil, fmt.Errorf("mark %q is not a segment name", s.Mark.Segment)
	}
	off, err := c.u64()
	if err != nil {
		return nil, err
	}
	if off > maxSnapOff {
		return nil, fmt.Errorf("mark offset %d", off)
	}
	s.Mark.Offset = int64(off)
	maxWords := int(w / 64)
	for {
		n, err := c.u16()
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		if n > maxIDLen {
			return nil, fmt.Errorf("client id of %d bytes", n)
		}
		id, err := c.str(int(n))
		if err != nil {
			return nil, err
		}
		hi, err := c.u64()
		if err != nil {
			return nil, err
		}
		nw, err := c.u16()
		if err != nil {
			return nil, err
		}
		if int(nw) > maxWords {
			return nil, fmt.Errorf("client %q: %d words in a window of %d", id, nw, w)
		}
		for range nw {
			x, err := c.u64()
			if err != nil {
				return nil, err
			}
			s.words = append(s.words, x)
		}
		s.ids = append(s.ids, id)
		s.his = append(s.his, hi)
		s.ends = append(s.ends, len(s.words))
	}
	count, err := c.u64()
	if err != nil {
		return nil, err
	}
	if count != uint64(len(s.ids)) {
		return nil, fmt.Errorf("%d clients, the trailer says %d", len(s.ids), count)
	}
	want := c.crc.Sum32()
	got, err := c.u32()
	if err != nil {
		return nil, err
	}
	if got != want {
		return nil, fmt.Errorf("checksum %08x, computed %08x", got, want)
	}
	s.Bytes = c.n
	return s, nil
}

// ApplySnapshot marks durable what s holds, as MergeDurable does for a connection
// handed over. The caller checked that s.Window is at least the table's: a window
// from a smaller one leaves seqs between the two unknown, which the spool's
// rebuild would know.
func (t *Table) ApplySnapshot(s *Snapshot) {
	start := 0
	for i, id := range s.ids {
		end := s.ends[i]
		t.mu.Lock()
		c := t.getLocked(id) // under t.mu: not evicted before its merge
		c.MergeDurable(s.his[i], s.words[start:end])
		t.mu.Unlock()
		start = end
	}
}

// FollowFrom is, for Follow, the segments of process pid in dir up to m's (the
// older ones at their end, m's at m.Offset), as Rebuild would have left them had
// it read the spool when m was taken. Segments pid created after m's are found by
// Follow's first pass.
func FollowFrom(dir string, pid int, m Mark) ([]SegmentFile, error) {
	if p, ok := spool.SegmentPID(m.Segment); !ok || p != pid {
		return nil, fmt.Errorf("dedup: the snapshot's mark %q is not a segment of pid %d", m.Segment, pid)
	}
	all, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	var out []SegmentFile
	found := false
	for _, f := range all {
		if f.pid != pid || f.name > m.Segment {
			continue
		}
		if f.name == m.Segment {
			f.off, found = m.Offset, true
		} else if fi, err := os.Stat(dirJoin(dir, f.name)); err == nil {
			f.off = fi.Size() // closed before the mark: its lines are in the snapshot
		} else {
			continue
		}
		out = append(out, f)
	}
	if !found && m.Offset > 0 {
		// Only an empty segment goes (its process's exit removes it).
		return nil, fmt.Errorf("dedup: the snapshot's mark %q is not in %s", m.Segment, dir)
	}
	return out, nil
}
