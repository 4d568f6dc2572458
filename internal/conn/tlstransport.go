package conn

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"unsafe"
)

// tlsTransport is the TCP connection under a TLS connection's crypto/tls. It gives
// the connection what tls.Conn alone cannot:
//
//   - A read of only what crypto/tls already holds. Waiting in tls.Conn.Read lends
//     crypto/tls the caller's buffer for as long as the agent is quiet, which for a
//     heartbeating agent is forever: 16 KiB per idle connection. With this, the
//     reader first takes what is buffered, then waits for the socket to be readable
//     holding no buffer (readTLS), as the plaintext path does.
//   - Writes that record their progress for the reaper (c.writeRaw), so a client
//     that reads a large write slowly is not taken for one that does not read.
//
// Only the reader sets onlyBuffered, and crypto/tls reads only on the goroutine that
// calls its Read or Handshake, which is the reader's. crypto/tls serialises writes
// (its output lock), so the write fields of Conn have one writer at a time.
type tlsTransport struct {
	net.Conn
	c            *Conn
	rc           syscall.RawConn
	onlyBuffered bool
	peekFn       func(fd uintptr) bool // t.peek, bound once
	peekByte     [1]byte
	wbuf         []byte // what c.wbuf points at during a write
}

// errNotBuffered is what the transport's Read returns in onlyBuffered mode. It is a
// temporary net.Error, so crypto/tls keeps its state (and any partial record) and
// does not make the error sticky.
var errNotBuffered error = notBufferedError{}

type notBufferedError struct{}

func (notBufferedError) Error() string   { return "nothing buffered" }
func (notBufferedError) Timeout() bool   { return true }
func (notBufferedError) Temporary() bool { return true }

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
	t.peekFn = t.peek
	return tls.Server(t, cfg)
}

func (t *tlsTransport) Read(p []byte) (int, error) {
	if t.onlyBuffered {
		return 0, errNotBuffered
	}
	return t.Conn.Read(p)
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

// isNotBuffered reports whether err is the transport's "nothing buffered".
func isNotBuffered(err error) bool { return errors.Is(err, errNotBuffered) }
