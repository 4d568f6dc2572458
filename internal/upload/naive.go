package upload

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// naiveSeq keeps the upload ids of naive files apart within a nanosecond.
var naiveSeq atomic.Uint64

// naiveChunk is how much of a naive sender's stream one write stores.
const naiveChunk = 256 << 10

// Receive stores a naive sender's file (internal/legacy's format file): its name
// checked as an upload's (ValidName), its bytes read from r until EOF under the
// same limits and fsync policy, then published with Complete Unknown and
// announced once. The upload id is the server's ("naive-<unix nanos>-<n>"). read
// is called with the bytes of each read. A read error other than EOF (the
// connection cut) publishes nothing: the partial stays until it expires.
func (s *Store) Receive(client, name string, r io.Reader, read func(n int)) (FileRecord, error) {
	id := "naive-" + strconv.FormatInt(time.Now().UnixNano(), 10) + "-" + strconv.FormatUint(naiveSeq.Add(1), 10)
	u, st := s.Begin(client, protocol.UploadOpen{UploadID: id, Name: name, Size: -1})
	if u == nil {
		return FileRecord{}, errors.New(st.Message)
	}
	defer u.Close()
	buf := make([]byte, naiveChunk)
	var off int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if read != nil {
				read(n)
			}
			if st := u.Write(uint64(off), buf[:n]); st.Code != "" {
				return FileRecord{}, fmt.Errorf("%s: %s", st.Code, st.Message)
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return FileRecord{}, fmt.Errorf("upload %s cut at %d bytes, not published: %w", id, off, err)
		}
	}
	return u.publishUnknown()
}

// publishUnknown publishes what u holds as it is, Complete Unknown, and announces it.
func (u *Upload) publishUnknown() (FileRecord, error) {
	e := u.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := u.publishLocked(hex.EncodeToString(e.hash.Sum(nil)), Unknown); err != nil {
		return FileRecord{}, err
	}
	if st := u.announceLocked(protocol.UploadState{}); st.Code != "" {
		return e.rec, errors.New(st.Message)
	}
	return e.rec, nil
}
