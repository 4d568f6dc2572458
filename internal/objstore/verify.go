package objstore

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"
)

// errMismatch is a local file that is not what its record says.
var errMismatch = errors.New("objstore: the local file does not match its record")

// errStopped ends a put when Run is stopped.
var errStopped = errors.New("objstore: stopping")

// verifier reads a file for a put, hashing what it reads: at the end it returns
// EOF only if size bytes of SHA-256 sum were read, and an error otherwise, so the
// put fails before the object is complete.
type verifier struct {
	r       io.Reader
	h       hash.Hash
	n, size int64
	sum     []byte
	stop    <-chan struct{}
	readErr error // the file's own read error, if any
}

func (v *verifier) Read(p []byte) (int, error) {
	select {
	case <-v.stop:
		return 0, errStopped
	default:
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.size {
		return 0, fmt.Errorf("%w: more than its %d bytes", errMismatch, v.size)
	}
	if err == io.EOF {
		if got := v.h.Sum(nil); v.n != v.size || !bytes.Equal(got, v.sum) {
			return n, fmt.Errorf("%w: %d bytes of sha256 %x, the record says %d bytes of %x", errMismatch, v.n, got, v.size, v.sum)
		}
		return n, io.EOF
	}
	if err != nil {
		v.readErr = err
	}
	return n, err
}
