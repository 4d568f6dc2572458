package dedup

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/spool"
)

// SegmentFile is one spool segment (internal/spool owns its name) and how far it
// has been read: what Rebuild and FollowFrom give Follow.
type SegmentFile struct {
	name string // without the directory; names sort by start time
	pid  int
	off  int64 // the next byte to read, at a line boundary
	skip bool  // off may be mid-line: drop everything up to the first '\n'
}

// listSegments returns dir's segments, sorted by name.
func listSegments(dir string) ([]SegmentFile, error) {
	segs, err := spool.Segments(dir)
	if err != nil {
		return nil, err
	}
	out := make([]SegmentFile, len(segs))
	for i, s := range segs {
		out[i] = SegmentFile{name: s.Name, pid: s.PID}
	}
	return out, nil
}

// reader applies spool lines to a table; its buffer is reused across files.
type reader struct {
	t     *Table
	buf   []byte
	idBuf []byte
	lines int64 // lines applied
	bad   int64 // complete lines that are not records
	bytes int64 // bytes read
}

const readChunk = 1 << 20

// scan reads path from f.off to its end, applies every complete line and leaves
// f.off after the last one: a last line without '\n' is not applied (torn, or still
// being written). A file shorter than f.off was truncated after a failed write:
// reading continues from its new end.
func (r *reader) scan(dir string, f *SegmentFile) error {
	fh, err := os.Open(filepath.Join(dir, f.name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // removed (an empty segment at its process's exit)
		}
		return err
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err == nil && fi.Size() < f.off {
		f.off, f.skip = fi.Size(), false
	}
	if r.buf == nil {
		r.buf = make([]byte, readChunk)
		r.idBuf = make([]byte, 0, 1024) // a client_id is at most 256 bytes
	}
	held := 0 // bytes of a partial line kept at the start of buf
	pos := f.off
	for {
		if held == len(r.buf) { // a line longer than the buffer
			r.buf = slices.Grow(r.buf, len(r.buf))[:2*len(r.buf)]
		}
		n, err := fh.ReadAt(r.buf[held:], pos)
		pos += int64(n)
		r.bytes += int64(n)
		data := r.buf[:held+n]
		consumed := 0
		for {
			nl := bytes.IndexByte(data[consumed:], '\n')
			if nl < 0 {
				break
			}
			line := data[consumed : consumed+nl]
			consumed += nl + 1
			if f.skip {
				f.skip = false
				continue
			}
			r.apply(line)
		}
		f.off += int64(consumed)
		held = copy(r.buf, data[consumed:])
		if err == io.EOF || n == 0 && err == nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (r *reader) apply(line []byte) {
	id, seq, ok := ingest.ParseKey(line, r.idBuf)
	if !ok {
		r.bad++
		return
	}
	r.t.MarkDurable(id, seq)
	r.lines++
}
