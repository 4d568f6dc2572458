package upload

import (
	"crypto/sha256"
	"encoding"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// Handover is an upload open on a connection that moves to another hawk process
// (a connection handoff): what that process needs to go on writing it with no new
// open, and without reading back the durable bytes to hash them again.
type Handover struct {
	UploadID string `json:"upload_id"`
	Offset   int64  `json:"offset"` // the durable offset at the quiet point
	// Hash is the sha256 state over the first Offset bytes (crypto/sha256's
	// encoding.BinaryMarshaler form).
	Hash []byte `json:"hash"`
}

// maxHashState bounds a Handover's Hash (sha256's marshaled state is 108 bytes).
const maxHashState = 256

// Check says what is wrong with h, or nil.
func (h Handover) Check() error {
	if err := protocol.ValidUploadID([]byte(h.UploadID)); err != nil {
		return err
	}
	if h.Offset < 0 || len(h.Hash) == 0 || len(h.Hash) > maxHashState {
		return fmt.Errorf("upload %s: offset %d with a hash state of %d bytes", h.UploadID, h.Offset, len(h.Hash))
	}
	return nil
}

// Handover describes u for the process it moves to and closes u, so that the
// other process can take the upload's lock. ok is false when there is nothing to
// move (published or expired): the client's next frame for it is answered
// upload_unknown and it opens the upload again.
func (u *Upload) Handover() (h Handover, ok bool) {
	e := u.e
	e.mu.Lock()
	if !e.done && e.f != nil {
		h = Handover{UploadID: u.k.id, Offset: e.offset}
		b, err := e.hash.(encoding.BinaryMarshaler).MarshalBinary()
		h.Hash, ok = b, err == nil
	}
	e.mu.Unlock()
	u.Close()
	return h, ok
}

// Resume opens, in this process, an upload of client that another process (or
// this one, when a handoff fell back) handed over at h's quiet point; the
// connection goes on with chunks from h.Offset, no open needed.
func (s *Store) Resume(client string, h Handover) (*Upload, error) {
	if err := h.Check(); err != nil {
		return nil, err
	}
	u := s.ref(key{clientDir(client), h.UploadID})
	if err := u.resumeLocked(h); err != nil {
		u.Close()
		return nil, fmt.Errorf("upload %s: %w", h.UploadID, err)
	}
	return u, nil
}

func (u *Upload) resumeLocked(h Handover) error {
	e := u.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.loaded { // open on another connection of this process already
		if e.done || e.f == nil {
			return fmt.Errorf("published or expired meanwhile")
		}
		return nil
	}
	base := filepath.Join(u.s.partial, e.cdir, h.UploadID)
	meta, err := readJSON[partialMeta](base + ".json")
	if err != nil {
		return err
	}
	d := sha256.New()
	if err := d.(encoding.BinaryUnmarshaler).UnmarshalBinary(h.Hash); err != nil {
		return fmt.Errorf("hash state: %w", err)
	}
	f, err := openPart(base + ".part")
	if err != nil {
		return err
	}
	info, err := f.Stat()
	if err == nil && info.Size() != h.Offset {
		err = fmt.Errorf("the partial file holds %d bytes, the handover says %d", info.Size(), h.Offset)
	}
	if err != nil {
		f.Close()
		return err
	}
	e.loaded, e.meta, e.f, e.offset, e.hash = true, meta, f, h.Offset, d
	return nil
}

// openPart opens (creating) a .part file and takes its lock: one process writes
// an upload at a time, and during an upgrade the old process may still hold it
// for a connection that is draining.
func openPart(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, errBusy
	}
	return f, nil
}
