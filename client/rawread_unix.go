//go:build unix

package client

import (
	"io"
	"net"
	"os"
	"syscall"

	"github.com/hawk-agents/hawk/internal/mono"
)

// readRaw is readLoop's loop on a socket of its own: the reads are served inside
// one RawRead, in its callback (serveRaw). After a read that did not fill the
// buffer the socket was empty, so the reader waits for the next bytes without the
// read that would only say EAGAIN: two system calls per ACK batch (a read, and
// the write of the reports its callbacks made) instead of three. That is
// sound only inside one RawRead: it resets the poller's readiness on entry, which
// could sleep through bytes that arrived since the last read, while between two
// calls of its callback readiness is kept, and bytes that arrive after a read
// make the poller ready again (edge-triggered, as every arrival is).
//
// What runs inside holds the descriptor's read lock — the owner's events, the
// done callbacks of Go reports, the reader's writes — so nothing there may close
// the socket (Close waits for that lock): fail leaves the close to readLoop.
func (s *session) readRaw() error {
	if err := s.process(); err != nil { // what arrived with the WELCOME
		return err
	}
	s.rerr = nil
	if err := s.raw.rc.Read(s.serve); err != nil {
		return err // fail's deadline, or the socket closed under us
	}
	return s.rerr
}

// serveRaw is readRaw's callback (bound once as s.serve): it reads and handles
// frames until the socket is empty (false: wait for it to be readable) or the
// session must end (true, with s.rerr saying why).
func (s *session) serveRaw(fd uintptr) bool {
	for {
		s.fitReadBuf()
		space := len(s.rbuf) - s.rlen
		n, err := syscall.Read(int(fd), s.rbuf[s.rlen:])
		switch {
		case err == syscall.EAGAIN:
			return false
		case err == syscall.EINTR:
			continue
		case err != nil:
			s.rerr = &net.OpError{Op: "read", Net: s.nc.LocalAddr().Network(), Source: s.nc.LocalAddr(), Addr: s.nc.RemoteAddr(), Err: os.NewSyscallError("read", err)}
			return true
		case n == 0:
			s.rerr = io.EOF
			return true
		}
		s.rlen += n
		s.lastRecv.Store(mono.Now())
		if err := s.process(); err != nil {
			s.rerr = err
			return true
		}
		if n < space {
			// Also after fail, whose deadline ends the wait at once: no check of
			// done per read (a select on it was 1 % of hawkc load's CPU).
			return false
		}
		if s.isDone() { // more to read, but the session has ended
			s.rerr = net.ErrClosed // fail has set the reason already
			return true
		}
	}
}
