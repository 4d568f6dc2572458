package upload

import (
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/spool"
)

// errBusy is a partial upload another process holds.
var errBusy = errors.New("the upload is open in another hawk process (an upgrade's old one, draining): open it again shortly")

// entry is one upload, shared by every connection that has it open.
type entry struct {
	mu     sync.Mutex
	loaded bool
	refs   int // Uploads open on it; guarded by Store.mu
	cdir   string
	meta   partialMeta
	f      *os.File // the .part file; nil once published or expired
	offset int64    // the durable offset: the .part file's size
	hash   hash.Hash
	beside beside // the hash of the chunk being written
	done   bool
	rec    FileRecord
}

// Upload is one connection's handle on an upload; Close it when the connection ends.
type Upload struct {
	s *Store
	k key
	e *entry
}

// Begin opens (or resumes) upload o of client and answers with the durable
// offset. On a refusal the Upload is nil.
func (s *Store) Begin(client string, o protocol.UploadOpen) (*Upload, protocol.UploadState) {
	st := protocol.UploadState{UploadID: o.UploadID}
	refuse := func(code protocol.Code, msg string) (*Upload, protocol.UploadState) {
		s.failed(code)
		st.Code, st.Message = code, msg
		return nil, st
	}
	if err := protocol.ValidUploadID([]byte(o.UploadID)); err != nil {
		return refuse(protocol.CodeUploadBadID, err.Error())
	}
	if err := ValidName(o.Name); err != nil {
		return refuse(protocol.CodeUploadBadName, err.Error())
	}
	if o.SHA256 != "" && !protocol.ValidSHA256(o.SHA256) {
		return refuse(protocol.CodeUploadMismatch, fmt.Sprintf("sha256 %q is not 64 lower-case hex digits", o.SHA256))
	}
	if o.Size < -1 {
		return refuse(protocol.CodeUploadMismatch, fmt.Sprintf("size %d: want the size in bytes, or -1 when not known", o.Size))
	}
	if m := s.opts.MaxFileSize; m > 0 && o.Size > m {
		return refuse(protocol.CodeUploadTooLarge, fmt.Sprintf("size %d exceeds the largest file, %d bytes", o.Size, m))
	}
	u := s.ref(key{clientDir(client), o.UploadID})
	e := u.e
	e.mu.Lock()
	defer e.mu.Unlock()
	resumed, err := u.loadLocked(client, o)
	if err != nil {
		e.mu.Unlock()
		u.Close()
		e.mu.Lock()
		return refuse(protocol.CodeUploadWriteFailed, err.Error())
	}
	if msg := e.conflict(o); msg != "" {
		e.mu.Unlock()
		u.Close()
		e.mu.Lock()
		return refuse(protocol.CodeUploadConflict, msg)
	}
	if s.opts.Observer != nil && !e.done {
		s.opts.Observer.UploadStarted(resumed)
	}
	st.Offset, st.Done = e.offset, e.done
	return u, st
}

// ref returns a handle on the entry of k, made if this process has none.
func (s *Store) ref(k key) *Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[k]
	if e == nil {
		e = &entry{cdir: k.client}
		s.entries[k] = e
	}
	e.refs++
	return &Upload{s: s, k: k, e: e}
}

// loadLocked brings e from disk (published, partial, or new); resumed says a
// partial upload was found.
func (u *Upload) loadLocked(client string, o protocol.UploadOpen) (resumed bool, err error) {
	e, s := u.e, u.s
	if e.loaded {
		return !e.done && e.offset > 0, nil
	}
	pub := filepath.Join(s.files, e.cdir, o.UploadID)
	if rec, err := readJSON[FileRecord](pub + ".json"); err == nil {
		e.loaded, e.done, e.rec, e.offset = true, true, rec, rec.Size
		e.meta = partialMeta{ClientID: rec.ClientID, UploadID: rec.UploadID, Name: rec.Name, Size: rec.Size, SHA256: rec.SHA256}
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	dir := filepath.Join(s.partial, e.cdir)
	base := filepath.Join(dir, o.UploadID)
	meta, err := readJSON[partialMeta](base + ".json")
	switch {
	case err == nil:
		resumed = true
	case errors.Is(err, os.ErrNotExist):
		meta = partialMeta{ClientID: client, UploadID: o.UploadID, Name: o.Name, Size: o.Size, SHA256: o.SHA256, Created: s.opts.Now().UTC()}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return false, err
		}
		if err := writeJSON(base+".json", meta, s.opts.Fsync()); err != nil {
			return false, err
		}
	default:
		return false, err
	}
	f, err := openPart(base + ".part")
	if err != nil {
		return false, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f) // the hash of what a previous process made durable
	if err != nil {
		f.Close()
		return false, err
	}
	e.loaded, e.meta, e.f, e.offset, e.hash = true, meta, f, n, h
	return resumed && n > 0, nil
}

// conflict says how o differs from what e's first open announced, or "".
func (e *entry) conflict(o protocol.UploadOpen) string {
	m := e.meta
	switch {
	case o.Name != m.Name:
		return fmt.Sprintf("upload %s is open with name %q, not %q", o.UploadID, m.Name, o.Name)
	case o.Size >= 0 && m.Size >= 0 && o.Size != m.Size:
		return fmt.Sprintf("upload %s is open with size %d, not %d", o.UploadID, m.Size, o.Size)
	case o.SHA256 != "" && m.SHA256 != "" && o.SHA256 != m.SHA256:
		return fmt.Sprintf("upload %s is open with sha256 %s, not %s", o.UploadID, m.SHA256, o.SHA256)
	}
	return ""
}

// ID returns the upload id.
func (u *Upload) ID() string { return u.k.id }

// Write stores data at offset and answers with the new durable offset, once the
// bytes are written (and synced, with fsync on). A refused or failed write leaves
// the durable offset as it was.
func (u *Upload) Write(offset uint64, data []byte) protocol.UploadState {
	e, s := u.e, u.s
	e.mu.Lock()
	defer e.mu.Unlock()
	st := protocol.UploadState{UploadID: u.k.id, Offset: e.offset, Done: e.done}
	refuse := func(code protocol.Code, msg string) protocol.UploadState {
		s.failed(code)
		st.Code, st.Message = code, msg
		return st
	}
	switch {
	case e.done:
		return refuse(protocol.CodeUploadOffset, fmt.Sprintf("upload %s is published (%d bytes): nothing more is taken", u.k.id, e.offset))
	case e.f == nil:
		return refuse(protocol.CodeUploadUnknown, fmt.Sprintf("upload %s expired: open it again", u.k.id))
	case offset != uint64(e.offset):
		return refuse(protocol.CodeUploadOffset, fmt.Sprintf("chunk at offset %d; the durable offset is %d: send from %d", offset, e.offset, e.offset))
	}
	n := int64(len(data))
	if m := s.opts.MaxFileSize; m > 0 && e.offset+n > m {
		return refuse(protocol.CodeUploadTooLarge, fmt.Sprintf("%d bytes at offset %d exceed the largest file, %d bytes", n, e.offset, m))
	}
	if e.meta.Size >= 0 && e.offset+n > e.meta.Size {
		return refuse(protocol.CodeUploadMismatch, fmt.Sprintf("%d bytes at offset %d go past the announced size %d", n, e.offset, e.meta.Size))
	}
	if err := s.reserve(e.cdir, n); err != nil {
		return refuse(protocol.CodeUploadQuota, err.Error())
	}
	hashing := e.beside.start(e.hash, data)
	_, err := e.f.WriteAt(data, e.offset)
	if err == nil && s.opts.Fsync() {
		err = e.f.Sync()
	}
	if hashing {
		e.beside.wg.Wait()
	}
	if err != nil {
		// Back to the durable offset: the client resends from there.
		if terr := e.f.Truncate(e.offset); terr != nil {
			err = errors.Join(err, terr)
		}
		if hashing {
			if herr := e.beside.undo(e.hash.(encoding.BinaryUnmarshaler)); herr != nil {
				// The state cannot be put back: the next open hashes the
				// durable bytes from the file again.
				e.f.Close()
				e.f, e.loaded = nil, false
			}
		}
		s.release(e.cdir, n, false)
		return refuse(protocol.CodeUploadWriteFailed, fmt.Sprintf("writing %d bytes at offset %d: %v", n, e.offset, err))
	}
	if !hashing {
		e.hash.Write(data)
	}
	e.offset += n
	if s.opts.Observer != nil {
		s.opts.Observer.UploadBytes(len(data))
	}
	st.Offset = e.offset
	return st
}

// Commit checks c against the bytes held, publishes the file and announces it
// once. A commit of a published upload answers done again without a new record.
func (u *Upload) Commit(c protocol.UploadCommit) protocol.UploadState {
	e, s := u.e, u.s
	e.mu.Lock()
	defer e.mu.Unlock()
	st := protocol.UploadState{UploadID: u.k.id, Offset: e.offset}
	refuse := func(code protocol.Code, msg string) protocol.UploadState {
		s.failed(code)
		st.Code, st.Message = code, msg
		return st
	}
	if !e.done {
		if e.f == nil {
			return refuse(protocol.CodeUploadUnknown, fmt.Sprintf("upload %s expired: open it again", u.k.id))
		}
		sum := hex.EncodeToString(e.hash.Sum(nil))
		switch {
		case c.Size != e.offset:
			return refuse(protocol.CodeUploadMismatch, fmt.Sprintf("commit says size %d, but %d bytes are held", c.Size, e.offset))
		case e.meta.Size >= 0 && c.Size != e.meta.Size:
			return refuse(protocol.CodeUploadMismatch, fmt.Sprintf("commit says size %d, the open said %d", c.Size, e.meta.Size))
		case c.SHA256 != sum:
			return refuse(protocol.CodeUploadMismatch, fmt.Sprintf("commit says sha256 %s, the bytes held have %s", c.SHA256, sum))
		case e.meta.SHA256 != "" && e.meta.SHA256 != sum:
			return refuse(protocol.CodeUploadMismatch, fmt.Sprintf("the open said sha256 %s, the bytes held have %s", e.meta.SHA256, sum))
		}
		if err := u.publishLocked(sum, Checked); err != nil {
			return refuse(protocol.CodeUploadWriteFailed, err.Error())
		}
	}
	return u.announceLocked(st)
}

// announceLocked announces the published upload unless it was already.
func (u *Upload) announceLocked(st protocol.UploadState) protocol.UploadState {
	e, s := u.e, u.s
	st.Done = true
	if !e.rec.Announced && !s.opts.Queue { // queued: Placed announces it
		if err := s.announce(&e.rec); err != nil {
			s.failed(protocol.CodeUploadWriteFailed)
			st.Code = protocol.CodeUploadWriteFailed
			st.Message = fmt.Sprintf("upload %s is published but its record is not durable (%v): commit again", u.k.id, err)
		}
	}
	return st
}

// publishLocked moves the checked .part into files/: its record first, then the
// rename, so a death in between is completed at the next start (Store.scan).
func (u *Upload) publishLocked(sum string, complete Completeness) error {
	e, s := u.e, u.s
	sync := s.opts.Fsync()
	if sync {
		if err := e.f.Sync(); err != nil {
			return err
		}
	}
	dir := filepath.Join(s.files, e.cdir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	rec := FileRecord{ClientID: e.meta.ClientID, UploadID: u.k.id, Name: e.meta.Name, Size: e.offset, SHA256: sum,
		Path: filepath.Join(dir, u.k.id), Complete: complete, Published: s.opts.Now().UTC(), Seq: s.nextSeq()}
	if err := writeJSON(rec.Path+".json", rec, sync); err != nil {
		return err
	}
	part := filepath.Join(s.partial, e.cdir, u.k.id)
	if err := os.Rename(part+".part", rec.Path); err != nil {
		os.Remove(rec.Path + ".json")
		return err
	}
	os.Remove(part + ".json")
	if sync {
		if err := errors.Join(spool.SyncDir(dir), spool.SyncDir(filepath.Dir(part))); err != nil {
			return err
		}
	}
	e.f.Close()
	e.f, e.done, e.rec = nil, true, rec
	s.release(e.cdir, e.offset, true)
	if s.opts.Observer != nil {
		s.opts.Observer.UploadFinished(e.offset)
	}
	if s.opts.Queue {
		s.enqueue(rec)
	}
	return nil
}

// Close releases the connection's handle; the upload stays on disk to be resumed.
func (u *Upload) Close() {
	s := u.s
	s.mu.Lock()
	u.e.refs--
	last := u.e.refs == 0
	if last {
		delete(s.entries, u.k)
	}
	s.mu.Unlock()
	if last {
		u.e.mu.Lock()
		if u.e.f != nil {
			u.e.f.Close()
			u.e.f = nil
		}
		u.e.mu.Unlock()
	}
}
