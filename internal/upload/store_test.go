package upload

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// records collects announced records; fail makes the next announce fail.
type records struct {
	mu   sync.Mutex
	got  []FileRecord
	fail error
}

func (r *records) announce(rec FileRecord) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		err := r.fail
		r.fail = nil
		return err
	}
	r.got = append(r.got, rec)
	return nil
}

func (r *records) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func openStore(t testing.TB, dir string, rec *records, mod func(*Options)) *Store {
	t.Helper()
	o := Options{Dir: dir, Announce: rec.announce, Fsync: func() bool { return true }}
	if mod != nil {
		mod(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func wantOK(t *testing.T, st protocol.UploadState, offset int64) {
	t.Helper()
	if st.Code != "" || st.Offset != offset {
		t.Fatalf("state %+v, want success at offset %d", st, offset)
	}
}

func wantCode(t *testing.T, st protocol.UploadState, code protocol.Code, msg string) {
	t.Helper()
	if st.Code != code || !strings.Contains(st.Message, msg) {
		t.Fatalf("state %+v, want %s with %q", st, code, msg)
	}
}

func TestUploadPublishesOnceAndResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	rec := &records{}
	file := bytes.Repeat([]byte("0123456789"), 1000)
	s := openStore(t, dir, rec, nil)
	u, st := s.Begin("agent/../1", protocol.UploadOpen{UploadID: "u-1", Name: "../../etc/passwd.log"[6:], Size: int64(len(file)), SHA256: sum(file)})
	if u != nil || st.Code != protocol.CodeUploadBadName {
		// "/etc/passwd.log" is a path, refused
		t.Fatalf("a path as name: %+v", st)
	}
	u, st = s.Begin("agent/../1", protocol.UploadOpen{UploadID: "u-1", Name: "passwd.log", Size: int64(len(file)), SHA256: sum(file)})
	wantOK(t, st, 0)
	wantOK(t, u.Write(0, file[:4000]), 4000)
	wantCode(t, u.Write(5000, file[5000:6000]), protocol.CodeUploadOffset, "the durable offset is 4000: send from 4000")
	wantCode(t, u.Write(3000, file[3000:6000]), protocol.CodeUploadOffset, "send from 4000")
	u.Close()

	// A new process: the partial is resumed from its durable offset.
	s = openStore(t, dir, rec, nil)
	if p, total := s.Usage(); p != 4000 || total != 4000 {
		t.Fatalf("usage after restart: partial %d total %d, want 4000 4000", p, total)
	}
	u, st = s.Begin("agent/../1", protocol.UploadOpen{UploadID: "u-1", Name: "passwd.log", Size: -1})
	wantOK(t, st, 4000)
	wantOK(t, u.Write(4000, file[4000:]), int64(len(file)))
	wantCode(t, u.Commit(protocol.UploadCommit{UploadID: "u-1", Size: int64(len(file)), SHA256: sum(file[:1])}), protocol.CodeUploadMismatch, "the bytes held have "+sum(file))
	wantCode(t, u.Commit(protocol.UploadCommit{UploadID: "u-1", Size: 1, SHA256: sum(file)}), protocol.CodeUploadMismatch, "but 10000 bytes are held")
	if rec.len() != 0 {
		t.Fatal("a refused commit announced a record")
	}
	for range 2 {
		st = u.Commit(protocol.UploadCommit{UploadID: "u-1", Size: int64(len(file)), SHA256: sum(file)})
		if st.Code != "" || !st.Done || st.Offset != int64(len(file)) {
			t.Fatalf("commit: %+v", st)
		}
	}
	u.Close()
	if rec.len() != 1 {
		t.Fatalf("%d records for one file committed twice, want 1", rec.len())
	}
	r := rec.got[0]
	if r.ClientID != "agent/../1" || r.Name != "passwd.log" || r.Size != int64(len(file)) || r.SHA256 != sum(file) || r.Complete != Checked || r.Announced {
		t.Fatalf("record %+v", r)
	}
	if !strings.HasPrefix(r.Path, filepath.Join(dir, "files")+"/") || strings.Contains(r.Path, "passwd") {
		t.Fatalf("file stored at %s: outside files/ or named after the client's name", r.Path)
	}
	got, err := os.ReadFile(r.Path)
	if err != nil || !bytes.Equal(got, file) {
		t.Fatalf("published file: %v, %d bytes", err, len(got))
	}
	if p, total := s.Usage(); p != 0 || total != int64(len(file)) {
		t.Fatalf("usage after publish: partial %d total %d", p, total)
	}

	// Opening it again, in yet another process, says it is done; no new record.
	s = openStore(t, dir, rec, nil)
	u, st = s.Begin("agent/../1", protocol.UploadOpen{UploadID: "u-1", Name: "passwd.log", Size: -1})
	if !st.Done || st.Offset != int64(len(file)) {
		t.Fatalf("open of a published upload: %+v", st)
	}
	u.Commit(protocol.UploadCommit{UploadID: "u-1", Size: int64(len(file)), SHA256: sum(file)})
	u.Close()
	if err := s.AnnouncePending(); err != nil || rec.len() != 1 {
		t.Fatalf("AnnouncePending %v, %d records", err, rec.len())
	}
}

func TestUploadAnnounceFailureRetriedByCommit(t *testing.T) {
	rec := &records{fail: errors.New("spool: no space left on device")}
	s := openStore(t, t.TempDir(), rec, nil)
	u, _ := s.Begin("c", protocol.UploadOpen{UploadID: "a", Name: "a", Size: 3})
	u.Write(0, []byte("abc"))
	c := protocol.UploadCommit{UploadID: "a", Size: 3, SHA256: sum([]byte("abc"))}
	wantCode(t, u.Commit(c), protocol.CodeUploadWriteFailed, "commit again")
	if st := u.Commit(c); st.Code != "" || !st.Done {
		t.Fatalf("retried commit: %+v", st)
	}
	u.Commit(c)
	if rec.len() != 1 {
		t.Fatalf("%d records, want 1", rec.len())
	}
}

func TestUploadPendingAnnouncedAtStart(t *testing.T) {
	dir := t.TempDir()
	rec := &records{fail: errors.New("down")}
	s := openStore(t, dir, rec, nil)
	u, _ := s.Begin("c", protocol.UploadOpen{UploadID: "a", Name: "a", Size: -1})
	u.Write(0, []byte("abc"))
	u.Commit(protocol.UploadCommit{UploadID: "a", Size: 3, SHA256: sum([]byte("abc"))})
	u.Close()
	s = openStore(t, dir, rec, nil)
	if err := s.AnnouncePending(); err != nil || rec.len() != 1 {
		t.Fatalf("AnnouncePending: %v, %d records", err, rec.len())
	}
	s = openStore(t, dir, rec, nil)
	if err := s.AnnouncePending(); err != nil || rec.len() != 1 {
		t.Fatalf("second start: %v, %d records", err, rec.len())
	}
}

// A death between writing the published record and the rename is completed at start.
func TestUploadPublishRolledForward(t *testing.T) {
	dir := t.TempDir()
	rec := &records{}
	s := openStore(t, dir, rec, nil)
	u, _ := s.Begin("c", protocol.UploadOpen{UploadID: "a", Name: "a", Size: -1})
	u.Write(0, []byte("abc"))
	u.Close()
	cdir := clientDir("c")
	path := filepath.Join(dir, "files", cdir, "a")
	os.MkdirAll(filepath.Dir(path), 0o750)
	if err := writeJSON(path+".json", FileRecord{ClientID: "c", UploadID: "a", Name: "a", Size: 3, SHA256: sum([]byte("abc")), Path: path, Complete: Checked}, false); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, rec, nil)
	if b, err := os.ReadFile(path); err != nil || string(b) != "abc" {
		t.Fatalf("rolled-forward file: %q, %v", b, err)
	}
	if err := s.AnnouncePending(); err != nil || rec.len() != 1 {
		t.Fatalf("%v, %d records", err, rec.len())
	}
}

func TestUploadRefusals(t *testing.T) {
	s := openStore(t, t.TempDir(), &records{}, func(o *Options) { o.MaxFileSize = 10; o.ClientQuota = 15; o.TotalQuota = 25 })
	for _, tc := range []struct {
		o    protocol.UploadOpen
		code protocol.Code
	}{
		{protocol.UploadOpen{UploadID: "../x", Name: "a", Size: -1}, protocol.CodeUploadBadID},
		{protocol.UploadOpen{UploadID: "x", Name: "a\x00b", Size: -1}, protocol.CodeUploadBadName},
		{protocol.UploadOpen{UploadID: "x", Name: "a", Size: 11}, protocol.CodeUploadTooLarge},
		{protocol.UploadOpen{UploadID: "x", Name: "a", Size: -1, SHA256: "XYZ"}, protocol.CodeUploadMismatch},
	} {
		if u, st := s.Begin("c", tc.o); u != nil || st.Code != tc.code {
			t.Errorf("Begin(%+v) = %+v, want %s", tc.o, st, tc.code)
		}
	}
	u, _ := s.Begin("c", protocol.UploadOpen{UploadID: "x", Name: "a", Size: -1})
	if _, st := s.Begin("c", protocol.UploadOpen{UploadID: "x", Name: "b", Size: -1}); st.Code != protocol.CodeUploadConflict {
		t.Fatalf("same id, another name: %+v", st)
	}
	wantCode(t, u.Write(0, make([]byte, 11)), protocol.CodeUploadTooLarge, "largest file")
	wantOK(t, u.Write(0, make([]byte, 10)), 10)
	v, _ := s.Begin("c", protocol.UploadOpen{UploadID: "y", Name: "a", Size: -1})
	wantOK(t, v.Write(0, make([]byte, 5)), 5)
	wantCode(t, v.Write(5, make([]byte, 1)), protocol.CodeUploadQuota, "quota of 15")
	w, _ := s.Begin("d", protocol.UploadOpen{UploadID: "y", Name: "a", Size: -1})
	wantOK(t, w.Write(0, make([]byte, 10)), 10)
	w2, _ := s.Begin("d", protocol.UploadOpen{UploadID: "y2", Name: "a", Size: -1})
	wantCode(t, w2.Write(0, make([]byte, 1)), protocol.CodeUploadQuota, "total quota of 25")
	k, _ := s.Begin("d", protocol.UploadOpen{UploadID: "z", Name: "a", Size: 2})
	wantCode(t, k.Write(0, make([]byte, 3)), protocol.CodeUploadMismatch, "announced size 2")
}

func TestUploadExpire(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	s := openStore(t, dir, &records{}, func(o *Options) { o.Expiry = time.Hour; o.Now = func() time.Time { return now } })
	u, _ := s.Begin("c", protocol.UploadOpen{UploadID: "old", Name: "a", Size: -1})
	u.Write(0, []byte("abc"))
	held, _ := s.Begin("c", protocol.UploadOpen{UploadID: "held", Name: "a", Size: -1})
	held.Write(0, []byte("abc"))
	if n := s.Expire(); n != 0 {
		t.Fatalf("expired %d fresh uploads", n)
	}
	u.Close()
	now = now.Add(2 * time.Hour)
	if n := s.Expire(); n != 1 {
		t.Fatalf("expired %d, want 1 (the one still open stays)", n)
	}
	if p, total := s.Usage(); p != 3 || total != 3 {
		t.Fatalf("usage %d %d after expiry, want 3 3", p, total)
	}
	u, st := s.Begin("c", protocol.UploadOpen{UploadID: "old", Name: "a", Size: -1})
	wantOK(t, st, 0)
	u.Close()
	held.Close()
}

// Two processes on one directory (an upgrade's old and new) never write one
// upload at the same time: the second open waits for the first to let go.
func TestUploadHeldByOneProcessAtATime(t *testing.T) {
	dir := t.TempDir()
	old := openStore(t, dir, &records{}, nil)
	successor := openStore(t, dir, &records{}, nil)
	o := protocol.UploadOpen{UploadID: "a", Name: "a", Size: -1}
	u, _ := old.Begin("c", o)
	wantOK(t, u.Write(0, []byte("abc")), 3)
	if v, st := successor.Begin("c", o); v != nil || st.Code != protocol.CodeUploadWriteFailed || !strings.Contains(st.Message, "another hawk process") {
		t.Fatalf("open while the old process holds it: %+v", st)
	}
	u.Close()
	v, st := successor.Begin("c", o)
	wantOK(t, st, 3)
	v.Close()
}

// TestUploadFailedWriteLeavesHash: a chunk hashed beside its write that fails
// leaves the whole file's hash as it was, so the chunk sent again is hashed once.
func TestUploadFailedWriteLeavesHash(t *testing.T) {
	s := openStore(t, t.TempDir(), &records{}, nil)
	a, b := bytes.Repeat([]byte("a"), 2*minHashBeside), bytes.Repeat([]byte("b"), 2*minHashBeside)
	file := append(append([]byte(nil), a...), b...)
	u, st := s.Begin("c", protocol.UploadOpen{UploadID: "x", Name: "f", Size: int64(len(file))})
	wantOK(t, st, 0)
	defer u.Close()
	wantOK(t, u.Write(0, a), int64(len(a)))
	good := u.e.f
	ro, err := os.Open(good.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	u.e.f = ro // the write fails as on a full disk
	wantCode(t, u.Write(uint64(len(a)), b), protocol.CodeUploadWriteFailed, "writing")
	u.e.f = good
	wantOK(t, u.Write(uint64(len(a)), b), int64(len(file)))
	if st := u.Commit(protocol.UploadCommit{UploadID: "x", Size: int64(len(file)), SHA256: sum(file)}); st.Code != "" || !st.Done {
		t.Fatalf("commit: %+v", st)
	}
}
