package forward

import (
	"bytes"
	"io"
	"os"
	"time"
)

// lineCount counts the whole lines of one segment that are not forwarded yet, for
// the lag: each byte is read once, as the segment grows.
type lineCount struct {
	counted int64 // the end of the last whole line counted
	lines   int64 // whole lines between the forwarded offset and counted
}

// from restarts the count at the forwarded offset when that is ahead of the count
// (at start), or when the segment is now shorter than what was counted (truncated
// after a failed write).
func (c *lineCount) from(off, size int64) {
	if off > c.counted || c.counted > size {
		c.counted, c.lines = off, 0
	}
}

// sent moves the count past n lines forwarded up to off.
func (c *lineCount) sent(off, n int64) {
	c.lines = max(c.lines-n, 0)
	c.counted = max(c.counted, off)
}

// extend counts the whole lines of path between counted and size.
func (c *lineCount) extend(path string, size int64) error {
	if size <= c.counted {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, min(size-c.counted, 1<<20))
	at := c.counted
	for at < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-at)], at)
		chunk := buf[:n]
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			c.lines += int64(bytes.Count(chunk[:i+1], []byte{'\n'}))
			c.counted = at + int64(i) + 1
		}
		at += int64(n)
		if err == io.EOF || n == 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// splitLines cuts b into its whole lines, each with its '\n'; a last line without
// one is left out (still being written, or torn by a crash: never ACKed).
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return out
		}
		out = append(out, b[:i+1:i+1])
		b = b[i+1:]
	}
}

// receivedAt reads the received time of the record line at off in path.
func receivedAt(path string, off int64) (time.Time, bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	var buf [2048]byte
	n, _ := f.ReadAt(buf[:], off)
	line := buf[:n]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	const key = `"received":"`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return time.Time{}, false
	}
	v := line[i+len(key):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(v[:j]))
	return t, err == nil
}
