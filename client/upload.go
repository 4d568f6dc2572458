package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// ErrUploadsDisabled is returned by Upload when the server announces no
// max_upload_in_flight: it takes no uploads.
var ErrUploadsDisabled = errors.New("hawk: the server takes no uploads")

// UploadError is an upload refused for good (PROTOCOL.md 4.3).
type UploadError struct{ State protocol.UploadState }

func (e *UploadError) Error() string {
	return fmt.Sprintf("hawk: upload %s: %s: %s", e.State.UploadID, e.State.Code, e.State.Message)
}

// Upload is one file to send.
type Upload struct {
	ID   string      // the upload id (protocol.ValidUploadID); the same id resumes
	Name string      // the file's name, metadata for the server
	File io.ReaderAt // the bytes
	Size int64       // the file's size
	// Progress, when set, is called with the durable offset whenever it moves.
	Progress func(durable, size int64)
	// Sent, when set, is called for each chunk as it is queued (its offset and
	// length): what the lengths add up to beyond Size is what interruptions cost.
	Sent func(offset, n int64)
	// ChunkSize bounds a chunk's data; 0: 1 MiB. Always within max_frame_size and
	// half of max_upload_in_flight, so that two chunks at least are in flight.
	ChunkSize int
	// SHA256, when the caller already knows the file's sha256 (64 lower-case hex
	// digits), is sent in the open and the commit and the client does not hash
	// the file itself: a pass over the file and its CPU saved. The server hashes
	// the bytes it receives either way and publishes only when they match.
	SHA256 string
}

// UploadFile sends the file at path as upload id, resuming it if the server
// holds part of it.
func (c *Client) UploadFile(ctx context.Context, id, path string, progress func(durable, size int64)) error {
	return c.UploadPath(ctx, path, Upload{ID: id, Progress: progress})
}

// UploadPath sends the file at path as Upload u: the file gives u's File, Size
// and, if u has none, its Name; the rest (ID, Progress, a known SHA256) is u's.
func (c *Client) UploadPath(ctx context.Context, path string, u Upload) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	u.File, u.Size = f, st.Size()
	if u.Name == "" {
		u.Name = filepath.Base(path)
	}
	return c.Upload(ctx, u)
}

// uploadRouter hands UPLOAD_STATE answers to the Upload waiting for them.
type uploadRouter struct {
	mu sync.Mutex
	m  map[string]chan uploadAnswer
}

type uploadAnswer struct {
	s  *session
	st protocol.UploadState
}

func (r *uploadRouter) deliver(s *session, st protocol.UploadState) {
	r.mu.Lock()
	ch := r.m[st.UploadID]
	r.mu.Unlock()
	if ch != nil {
		select {
		case ch <- uploadAnswer{s, st}:
		default: // nobody waits for that many: a stale answer
		}
	}
}

// Upload sends u on the client's connections, interleaved with its reports,
// and returns once the server has published it (size and sha256 checked). A
// lost connection, a GOAWAY or a server restart resumes from the server's
// durable offset; at most max_upload_in_flight bytes are sent twice per
// interruption.
func (c *Client) Upload(ctx context.Context, u Upload) error {
	if err := protocol.ValidUploadID([]byte(u.ID)); err != nil {
		return fmt.Errorf("hawk: %w", err)
	}
	if u.File == nil && u.Size > 0 {
		return fmt.Errorf("hawk: upload %s: no File for its %d bytes", u.ID, u.Size)
	}
	if u.SHA256 != "" && !protocol.ValidSHA256(u.SHA256) {
		return fmt.Errorf("hawk: upload %s: sha256 %q is not 64 lower-case hex digits", u.ID, u.SHA256)
	}
	ch := make(chan uploadAnswer, 1024)
	c.ups.mu.Lock()
	if c.ups.m == nil {
		c.ups.m = map[string]chan uploadAnswer{}
	}
	if c.ups.m[u.ID] != nil {
		c.ups.mu.Unlock()
		return fmt.Errorf("hawk: upload %s is already in progress", u.ID)
	}
	c.ups.m[u.ID] = ch
	c.ups.mu.Unlock()
	defer func() { c.ups.mu.Lock(); delete(c.ups.m, u.ID); c.ups.mu.Unlock() }()

	var fh *fileHash
	if u.SHA256 != "" {
		fh = knownHash(u.SHA256)
	} else {
		fh = hashFile(u.File, u.Size)
	}
	up := &uploader{c: c, u: u, fh: fh, ch: ch}
	defer up.fh.close()
	backoff := 50 * time.Millisecond
	for {
		done, err := up.attempt(ctx)
		if done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// uploader is one Upload in progress. The whole file's sha256, unless the
// caller gave it, is computed beside the transfer (fileHash), so neither waits
// for the other.
type uploader struct {
	c  *Client
	u  Upload
	fh *fileHash
	ch chan uploadAnswer
}

// current waits for a connection and returns it.
func (up *uploader) current(ctx context.Context) (*session, error) {
	for {
		up.c.mu.Lock()
		s := up.c.conns.cur
		stopped := up.c.life.state == stateStopped
		up.c.mu.Unlock()
		if stopped {
			return nil, ErrClosed
		}
		if s != nil {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// wait returns the next answer from s, or done false when s ended first.
func (up *uploader) wait(ctx context.Context, s *session) (protocol.UploadState, bool, error) {
	for {
		select {
		case a := <-up.ch:
			if a.s != s {
				continue // an answer from a connection left behind
			}
			return a.st, true, nil
		case <-s.done:
			return protocol.UploadState{}, false, nil
		case <-ctx.Done():
			return protocol.UploadState{}, false, ctx.Err()
		}
	}
}

// attempt runs the upload on one connection: open, chunks, commit. done is
// true once the file is published; false with a nil error means try again.
func (up *uploader) attempt(ctx context.Context) (done bool, err error) {
	s, err := up.current(ctx)
	if err != nil {
		return false, err
	}
	window := int64(s.welcome.MaxUploadInFlight)
	if window <= 0 {
		return false, ErrUploadsDisabled
	}
	for len(up.ch) > 0 {
		<-up.ch
	}
	open, _ := json.Marshal(&protocol.UploadOpen{UploadID: up.u.ID, Name: up.u.Name, Size: up.u.Size, SHA256: up.u.SHA256})
	s.queueFrame(protocol.TypeUploadOpen, 0, open)
	st, ok, err := up.wait(ctx, s)
	if !ok || err != nil {
		return false, err
	}
	if retry, err := up.judge(st); retry || err != nil {
		return false, err
	}
	if st.Done {
		up.progress(st.Offset)
		return true, nil
	}
	chunk := int64(up.u.ChunkSize)
	if chunk <= 0 {
		chunk = 1 << 20
	}
	chunk = max(1, min(chunk, int64(s.welcome.MaxFrameSize-1-len(up.u.ID)), window/2))
	durable, next := st.Offset, st.Offset
	up.progress(durable)
	bufs := chunkBufs{size: chunk}
	defer bufs.release(s)
	resync := false
	for durable < up.u.Size {
		for !resync && next < up.u.Size && next-durable+chunk <= window || next == durable && next < up.u.Size {
			n := min(chunk, up.u.Size-next)
			buf := bufs.get(s)
			if _, err := up.u.File.ReadAt(buf[:n], next); err != nil && !errors.Is(err, io.EOF) {
				return false, err
			}
			bufs.lend(buf, s.queueChunk(up.u.ID, uint64(next), buf[:n]))
			if up.u.Sent != nil {
				up.u.Sent(next, n)
			}
			next += n
		}
		st, ok, err := up.wait(ctx, s)
		if !ok || err != nil {
			return false, err
		}
		if st.Code == protocol.CodeUploadOffset {
			// Every chunk after the refused one is refused too: wait for them,
			// then go on from the server's durable offset.
			resync, durable = true, st.Offset
			if int64(st.Offset) >= next || up.inFlightAnswered(ctx, s, &next, &durable) {
				next, resync = durable, false
			}
			continue
		}
		if retry, err := up.judge(st); retry || err != nil {
			return false, err
		}
		durable = st.Offset
		up.progress(durable)
	}
	sum, err := up.fh.wait(ctx.Done(), ctx.Err)
	if err != nil {
		return false, err
	}
	commit, _ := json.Marshal(&protocol.UploadCommit{UploadID: up.u.ID, Size: up.u.Size, SHA256: sum})
	s.queueFrame(protocol.TypeUploadCommit, 0, commit)
	for {
		st, ok, err = up.wait(ctx, s)
		if !ok || err != nil {
			return false, err
		}
		if st.Done || st.Code != "" {
			break
		}
	}
	if retry, err := up.judge(st); retry || err != nil {
		return false, err
	}
	return st.Done, nil
}

// inFlightAnswered drains the answers to the chunks still in flight after an
// upload_offset refusal; it returns true once none is left.
func (up *uploader) inFlightAnswered(ctx context.Context, s *session, next, durable *int64) bool {
	for {
		select {
		case a := <-up.ch:
			if a.s != s {
				continue
			}
			if a.st.Offset > *durable {
				*durable = a.st.Offset
			}
		case <-time.After(200 * time.Millisecond):
			// Answers come in order: none for this long means none is left.
			return true
		case <-s.done:
			return true
		case <-ctx.Done():
			return true
		}
	}
}

// judge says whether st asks to try again (retryable) or fails the upload.
func (up *uploader) judge(st protocol.UploadState) (retry bool, err error) {
	if st.Code == "" {
		return false, nil
	}
	if st.Code.Retryable() {
		return true, nil
	}
	return false, &UploadError{State: st}
}

func (up *uploader) progress(durable int64) {
	if up.u.Progress != nil {
		up.u.Progress(durable, up.u.Size)
	}
}
