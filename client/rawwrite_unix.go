//go:build unix

package client

import (
	"net"
	"syscall"
)

// rawWriter writes to a socket without waiting for it: what its buffer takes now.
type rawWriter struct {
	rc  syscall.RawConn
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // w.write, bound once: a method value per call would allocate
}

// newRawWriter is nil unless nc is a socket of its own (TCP or Unix, not TLS).
func newRawWriter(nc net.Conn) *rawWriter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &rawWriter{rc: rc}
	w.fn = w.write
	return w
}

func (w *rawWriter) write(fd uintptr) bool {
	w.n, w.err = syscall.Write(int(fd), w.p)
	return true // done whatever the socket took: never wait for it to take more
}

// writeNow writes what of p the socket takes at once. A full socket buffer is
// n < len(p) and no error; an error means the connection failed.
func (w *rawWriter) writeNow(p []byte) (int, error) {
	w.p, w.n, w.err = p, 0, nil // not the last call's, if fn is not called (fail's deadline)
	err := w.rc.Write(w.fn)
	w.p = nil
	n, werr := max(w.n, 0), w.err
	if werr == syscall.EAGAIN || werr == syscall.EINTR {
		werr = nil
	}
	if err == nil {
		err = werr
	}
	return n, err
}
