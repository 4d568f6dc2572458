package conn

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
	"unsafe"
)

// tlsTransport is the TCP connection under a TLS connection's crypto/tls. It gives
// the connection what tls.Conn alone cannot:
//
//   - A read that does not wait: of what crypto/tls already holds and what the
//     socket has now. Waiting in tls.Conn.Read lends crypto/tls the caller's buffer
//     for as long as the agent is quiet, which for a heartbeating agent is forever:
//     16 KiB per idle connection. With this, the reader first takes what is there,
//     then waits for the socket to be readable holding no buffer (readTLS), as the
//     plaintext path does.
//   - Writes that record their progress for the reaper (c.writeRaw), so a client
//     that reads a large write slowly is not taken for one that does not read.
//
// Only the reader sets noWait, and crypto/tls reads only on the goroutine that
// calls its Read or Handshake, which is the reader's. crypto/tls serialises writes
// (its output lock), so the write fields of Conn have one writer at a time.
type tlsTransport struct {
	net.Conn
	c        *Conn
	rc       syscall.RawConn
	noWait   bool
	tryFn    func(fd uintptr) bool // t.try, bound once
	rp       []byte                // the buffer of try
	rn       int                   // try's result
	rerr     error
	peekFn   func(fd uintptr) bool // t.peek, bound once
	peekByte [1]byte
	wbuf     []byte // what c.wbuf points at during a write
}

// errWouldBlock is what the transport's Read returns in noWait mode when the socket
// has nothing. It is a temporary net.Error, so crypto/tls keeps its state (and any
// partial record) and does not make the error sticky.
var errWouldBlock error = wouldBlockError{}

type wouldBlockError struct{}

func (wouldBlockError) Error() string   { return "would block" }
func (wouldBlockError) Timeout() bool   { return true }
func (wouldBlockError) Temporary() bool { return true }

// newTLSConn wraps nc in TLS for c; without a raw socket (never, for TCP) it falls
// back to plain tls.Conn reads and writes.
func newTLSConn(c *Conn, nc net.Conn, cfg *tls.Config) net.Conn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return tls.Server(nc, cfg)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return tls.Server(nc, cfg)
	}
	t := &tlsTransport{Conn: nc, c: c, rc: rc}
	t.tryFn, t.peekFn = t.try, t.peek
	return tls.Server(t, cfg)
}

// Read is crypto/tls's read of the socket. In noWait mode it does not wait:
// it takes what the socket has now (under load the next record is usually there,
// and one read syscall gets it) and says errWouldBlock when it has nothing.
func (t *tlsTransport) Read(p []byte) (int, error) {
	if !t.noWait {
		return t.Conn.Read(p)
	}
	t.rp = p
	err := t.rc.Read(t.tryFn)
	t.rp = nil
	switch {
	case err != nil: // closed, or past the read deadline
		return 0, err
	case t.rerr == syscall.EAGAIN:
		return 0, errWouldBlock
	case t.rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: t.LocalAddr(), Addr: t.RemoteAddr(), Err: t.rerr}
	case t.rn == 0:
		return 0, io.EOF
	}
	return t.rn, nil
}

// try is the RawConn callback of a read that does not wait.
func (t *tlsTransport) try(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), t.rp)
		if err == syscall.EINTR {
			continue
		}
		t.rn, t.rerr = max(n, 0), err
		return true
	}
}

// Write writes p through the raw socket with c.writeRaw, which records every bit of
// progress in c.writeAt while a flush is timed (writeTLS).
func (t *tlsTransport) Write(p []byte) (int, error) {
	c := t.c
	t.wbuf = p
	c.wbuf, c.wsent, c.werr = &t.wbuf, 0, 0
	err := t.rc.Write(c.writeFn)
	n := c.wsent
	c.wbuf, t.wbuf = nil, nil
	if err == nil && c.werr != 0 {
		err = c.werr
	}
	if err != nil {
		return n, &net.OpError{Op: "write", Net: "tcp", Source: t.LocalAddr(), Addr: t.RemoteAddr(), Err: err}
	}
	return n, nil
}

// waitReadable returns once the socket has bytes (or end of stream, or an error) to
// read, or the read deadline passes, without reading them.
func (t *tlsTransport) waitReadable() error { return t.rc.Read(t.peekFn) }

// peek is the RawConn callback of waitReadable: a non-blocking MSG_PEEK of one byte.
// It says ready on anything but EAGAIN, so the read that follows reports an error or
// end of stream itself. Like readRaw, it looks before the goroutine parks: RawRead
// resets the poller's readiness on entry.
func (t *tlsTransport) peek(fd uintptr) bool {
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&t.peekByte[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		return true
	}
}

// transport returns c's tlsTransport, nil if it has none.
func (c *Conn) transport() *tlsTransport {
	t, _ := c.nc.(*tls.Conn).NetConn().(*tlsTransport)
	return t
}

// wouldBlock reports whether err is the transport's "would block".
func wouldBlock(err error) bool { return errors.Is(err, errWouldBlock) }
