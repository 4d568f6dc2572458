package conn

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// tlsTransport is the TCP connection under a TLS connection's crypto/tls. It gives
// the connection what tls.Conn alone cannot:
//
//   - A read of only what crypto/tls already holds (readNoWait), and a small
//     buffer to wait with. Waiting in tls.Conn.Read with the reader's buffer lends
//     it to crypto/tls for as long as the agent is quiet, which for a heartbeating
//     agent is forever: 16 KiB per idle connection. readTLS takes what crypto/tls
//     holds, then waits with first, and fills a read buffer only once bytes came.
//   - Writes that record their progress for the reaper (c.writeRaw), so a client
//     that reads a large write slowly is not taken for one that does not read.
//
// Only the reader sets noWait and uses first, and crypto/tls reads only on the
// goroutine that calls its Read or Handshake, which is the reader's. crypto/tls
// serialises writes (its output lock), so the write fields of Conn have one writer
// at a time.
type tlsTransport struct {
	net.Conn
	c      *Conn
	rc     syscall.RawConn
	noWait bool
	first  [64]byte // what the reader waits with; a heartbeat fits whole
	wbuf   []byte   // what c.wbuf points at during a write
}

// errWouldBlock is what the transport's Read returns in noWait mode, without
// reading the socket. It is a temporary net.Error, so crypto/tls keeps its state
// (and any partial record) and does not make the error sticky.
var errWouldBlock error = wouldBlockError{}

type wouldBlockError struct{}

func (wouldBlockError) Error() string   { return "would block" }
func (wouldBlockError) Timeout() bool   { return true }
func (wouldBlockError) Temporary() bool { return true }

// Read is crypto/tls's read of the socket; in noWait mode it does not read it.
func (t *tlsTransport) Read(p []byte) (int, error) {
	if t.noWait {
		return 0, errWouldBlock
	}
	return t.Conn.Read(p)
}

// readNoWait reads from tc what crypto/tls holds already (decrypted, or whole
// records received), into p; errWouldBlock when it holds nothing.
func (t *tlsTransport) readNoWait(tc *tls.Conn, p []byte) (int, error) {
	t.noWait = true
	n, err := tc.Read(p)
	t.noWait = false
	return n, err
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

// wouldBlock reports whether err is the transport's "would block".
func wouldBlock(err error) bool { return errors.Is(err, errWouldBlock) }
