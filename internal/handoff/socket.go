package handoff

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// socket is a received TCP socket as a net.Conn, on the very *os.File the batch
// brought. net.FileConn would cost a dozen system calls per connection: a
// duplicate of the descriptor and the close of the original, each registered
// with and removed from the poller, the socket's type, both addresses, and
// TCP_NODELAY and keepalive set again, although socket options travel with the
// socket. Here the received descriptor, already non-blocking (the flag belongs
// to the socket, which the old process's runtime set) and registered with the
// poller by os.NewFile, is the connection: adopting one costs the two calls
// os.NewFile made. Its addresses are read when asked, once.
//
// Errors are those of a net.Conn: a *net.OpError around the system's, and
// net.ErrClosed once closed; a deadline met is os.ErrDeadlineExceeded (a
// net.Error whose Timeout is true) either way.
type socket struct {
	f     *os.File
	addrs sync.Once
	local net.Addr
	peer  net.Addr
}

// openSocket makes f a socket, or returns nil when f is not pollable (a
// descriptor that came blocking): net.FileConn then makes it one.
func openSocket(f *os.File) *socket {
	if f.SetReadDeadline(time.Time{}) != nil {
		return nil // not in the poller: no deadlines, reads would block a thread
	}
	return &socket{f: f}
}

func (s *socket) Read(p []byte) (int, error) {
	n, err := s.f.Read(p)
	return n, s.opError("read", err)
}

func (s *socket) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	return n, s.opError("write", err)
}

func (s *socket) Close() error { return s.opError("close", s.f.Close()) }

// CloseWrite shuts the sending side down (FIN after what was written), as
// (*net.TCPConn).CloseWrite.
func (s *socket) CloseWrite() error {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return s.opError("close", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Shutdown(int(fd), syscall.SHUT_WR) }); err != nil {
		return s.opError("close", err)
	}
	return s.opError("close", serr)
}

// SyscallConn is the socket's raw connection: the reader's and writer's callbacks,
// and the descriptor a later handoff sends.
func (s *socket) SyscallConn() (syscall.RawConn, error) { return s.f.SyscallConn() }

func (s *socket) SetDeadline(t time.Time) error     { return s.opError("set", s.f.SetDeadline(t)) }
func (s *socket) SetReadDeadline(t time.Time) error { return s.opError("set", s.f.SetReadDeadline(t)) }
func (s *socket) SetWriteDeadline(t time.Time) error {
	return s.opError("set", s.f.SetWriteDeadline(t))
}

func (s *socket) LocalAddr() net.Addr {
	s.readAddrs()
	return s.local
}

func (s *socket) RemoteAddr() net.Addr {
	s.readAddrs()
	return s.peer
}

// readAddrs reads both addresses from the socket, once; an address that cannot
// be read (the socket is closed) stays nil, as net's would.
func (s *socket) readAddrs() {
	s.addrs.Do(func() {
		rc, err := s.f.SyscallConn()
		if err != nil {
			return
		}
		rc.Control(func(fd uintptr) {
			if sa, err := syscall.Getsockname(int(fd)); err == nil {
				s.local = tcpAddr(sa)
			}
			if sa, err := syscall.Getpeername(int(fd)); err == nil {
				s.peer = tcpAddr(sa)
			}
		})
	})
}

func tcpAddr(sa syscall.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
	case *syscall.SockaddrInet6:
		a := &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	}
	return nil
}

// opError is err as net reports it: the system's error in a *net.OpError,
// net.ErrClosed for a closed socket (os says os.ErrClosed), io.EOF unwrapped.
func (s *socket) opError(op string, err error) error {
	if err == nil || err == io.EOF {
		return err // end-of-stream is io.EOF itself, as net returns it
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, os.ErrClosed) {
		err = net.ErrClosed
	}
	return &net.OpError{Op: op, Net: "tcp", Err: err}
}
