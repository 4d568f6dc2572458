package upload

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// commitFile uploads file as upload id of client c in one chunk (unless it is
// published already) and commits it.
func commitFile(t *testing.T, s *Store, c, id string, file []byte) protocol.UploadState {
	t.Helper()
	u, st := s.Begin(c, protocol.UploadOpen{UploadID: id, Name: id + ".log", Size: int64(len(file)), SHA256: sum(file)})
	if st.Code != "" {
		t.Fatalf("open %+v", st)
	}
	defer u.Close()
	if !st.Done {
		wantOK(t, u.Write(0, file), int64(len(file)))
	}
	return u.Commit(protocol.UploadCommit{UploadID: id, Size: int64(len(file)), SHA256: sum(file)})
}

// With Queue, a commit answers done without a record; the file waits in the
// Backlog (across a restart) until Placed announces it once, with the bucket and
// object instead of a path, and removes the copy here, which then no longer
// counts against the quota. A commit retried after that answers done, no record.
func TestQueuedFileAnnouncedOnceWhenPlaced(t *testing.T) {
	dir := t.TempDir()
	rec := &records{}
	queued := 0
	queue := func(o *Options) { o.Queue, o.Queued = true, func() { queued++ } }
	s := openStore(t, dir, rec, queue)
	file := bytes.Repeat([]byte("q"), 5000)
	if st := commitFile(t, s, "c", "u1", file); !st.Done || st.Code != "" {
		t.Fatalf("commit %+v", st)
	}
	if rec.len() != 0 || queued != 1 {
		t.Fatalf("%d records, %d queued; want 0 and 1", rec.len(), queued)
	}
	if st := commitFile(t, s, "c", "u1", file); !st.Done || rec.len() != 0 {
		t.Fatalf("retried commit %+v, %d records", st, rec.len())
	}
	if err := s.AnnouncePending(); err != nil || rec.len() != 0 {
		t.Fatalf("AnnouncePending with Queue: %v, %d records", err, rec.len())
	}
	s = openStore(t, dir, rec, queue) // a restart
	b := s.Backlog(false)
	if len(b) != 1 || b[0].UploadID != "u1" || b[0].Seq == 0 {
		t.Fatalf("backlog after a restart %+v", b)
	}
	if got := s.Backlog(true); len(got) != 1 || got[0].Seq != b[0].Seq {
		t.Fatalf("rescanned backlog %+v", got)
	}
	if _, total := s.Usage(); total != int64(len(file)) {
		t.Fatalf("usage %d before Placed", total)
	}
	rec.fail = errors.New("stream down")
	if err := s.Placed(b[0], "FILES", "x/u1"); err == nil || len(s.Backlog(false)) != 1 {
		t.Fatalf("Placed with the record failing: %v, backlog %d", err, len(s.Backlog(false)))
	}
	if err := s.Placed(b[0], "FILES", "x/u1"); err != nil {
		t.Fatal(err)
	}
	if rec.len() != 1 {
		t.Fatalf("%d records, want 1", rec.len())
	}
	got := rec.got[0]
	if got.Bucket != "FILES" || got.Object != "x/u1" || got.Path != "" || got.Seq != b[0].Seq || got.SHA256 != sum(file) {
		t.Fatalf("record %+v", got)
	}
	if _, err := os.Stat(b[0].Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the local copy is still there: %v", err)
	}
	if _, total := s.Usage(); total != 0 {
		t.Fatalf("usage %d after Placed, want 0", total)
	}
	if len(s.Backlog(false)) != 0 || len(s.Backlog(true)) != 0 {
		t.Fatal("a placed file is still in the backlog")
	}
	s = openStore(t, dir, rec, queue)
	if st := commitFile(t, s, "c", "u1", file); !st.Done || rec.len() != 1 {
		t.Fatalf("commit after Placed: %+v, %d records", st, rec.len())
	}
	if len(s.Backlog(true)) != 0 {
		t.Fatal("backlog after a restart")
	}
}

// A death after the record of a placed file was durable and before the copy
// here was removed: the next start removes it and does not count it.
func TestPlacedCopyRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	rec := &records{}
	queue := func(o *Options) { o.Queue = true }
	s := openStore(t, dir, rec, queue)
	file := bytes.Repeat([]byte("p"), 3000)
	commitFile(t, s, "c", "u1", file)
	r := s.Backlog(false)[0]
	r.Bucket, r.Object, r.Announced = "FILES", "x/u1", true
	if err := writeJSON(r.Path+".json", r, false); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, rec, queue)
	if _, err := os.Stat(r.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the copy of a placed file survived the start: %v", err)
	}
	if _, total := s.Usage(); total != 0 || len(s.Backlog(false)) != 0 {
		t.Fatalf("usage %d, backlog %d", total, len(s.Backlog(false)))
	}
}

// Seqs are chosen at publish and increase, so a record announced again after a
// death is the same line.
func TestPublishChoosesIncreasingSeqs(t *testing.T) {
	rec := &records{}
	s := openStore(t, t.TempDir(), rec, func(o *Options) { o.Queue = true })
	commitFile(t, s, "c", "a", []byte("a"))
	commitFile(t, s, "c", "b", []byte("b"))
	b := s.Backlog(false)
	if len(b) != 2 || b[0].Seq == 0 || b[1].Seq <= b[0].Seq {
		t.Fatalf("backlog %+v", b)
	}
}

// lineDest keeps the lines submitted to it.
type lineDest struct{ lines [][]byte }

func (d *lineDest) Submit(b *ingest.Batch, w ingest.Waiter) {
	d.lines = append(d.lines, bytes.Clone(b.Lines()))
	w.Committed(b.Seqs(), nil)
}

// The Announcer's line carries the seq chosen at publish, and the payload keeps
// neither it nor what only the .json says.
func TestAnnouncerUsesTheRecordsSeq(t *testing.T) {
	d := &lineDest{}
	a := &Announcer{Dest: d}
	r := FileRecord{ClientID: "c", UploadID: "u", Name: "f", Bucket: "FILES", Object: "x/u", Seq: 42}
	for range 2 {
		if err := a.Announce(r); err != nil {
			t.Fatal(err)
		}
	}
	if len(d.lines) != 2 || !bytes.Equal(d.lines[0], d.lines[1]) {
		t.Fatalf("two announcements of one record differ: %q", d.lines)
	}
	id, seq, ok := ingest.ParseKey(d.lines[0], nil)
	if !ok || string(id) != "upload:c" || seq != 42 {
		t.Fatalf("line key %q %d %v", id, seq, ok)
	}
	_, file, _ := bytes.Cut(d.lines[0], []byte(`"file":`))
	if bytes.Contains(file, []byte(`"seq"`)) || bytes.Contains(file, []byte(`"path"`)) || !bytes.Contains(file, []byte(`"object":"x/u"`)) {
		t.Fatalf("payload keeps the seq or a path: %s", d.lines[0])
	}
}
