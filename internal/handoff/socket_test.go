package handoff

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpConn connects to ln and returns the peer and the descriptor of the server's
// end (both close with tb).
func tcpConn(tb testing.TB, ln net.Listener) (peer net.Conn, fd int) {
	tb.Helper()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { peer.Close() })
	s, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	rc, err := s.(*net.TCPConn).SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	if fd, err = RawFD(rc); err != nil {
		tb.Fatal(err)
	}
	return peer, fd
}

// receivedSocket returns a peer and, for the server's end of its connection, an
// *os.File on a duplicate of the descriptor, as a batch brings it. blocking
// clears the socket's O_NONBLOCK first, as a sender that never polled it would
// have left it.
func receivedSocket(t *testing.T, blocking bool) (peer net.Conn, f *os.File) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, fd := tcpConn(t, ln)
	dup, err := syscall.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	if blocking {
		if err := syscall.SetNonblock(dup, false); err != nil {
			t.Fatal(err)
		}
	}
	return peer, os.NewFile(uintptr(dup), "handoff-conn")
}

// A received socket opened without net.FileConn behaves as a *net.TCPConn where
// adopters rely on it: bytes both ways, its addresses, a deadline as a net.Error
// timeout, CloseWrite as a FIN the peer reads, net.ErrClosed once closed.
func TestOpenedSocketIsATCPConn(t *testing.T) {
	peer, f := receivedSocket(t, false)
	st := &State{Kind: KindNative, ConnID: 1}
	nc, err := st.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := nc.(*socket); !ok {
		t.Fatalf("Open made a %T of a pollable descriptor", nc)
	}
	if nc.RemoteAddr().String() != peer.LocalAddr().String() || nc.LocalAddr().String() != peer.RemoteAddr().String() {
		t.Fatalf("addresses %v <- %v, the peer's %v -> %v", nc.LocalAddr(), nc.RemoteAddr(), peer.LocalAddr(), peer.RemoteAddr())
	}
	if st.Remote != peer.LocalAddr().String() {
		t.Fatalf("Remote filled in as %q", st.Remote)
	}
	if _, ok := nc.RemoteAddr().(*net.TCPAddr); !ok {
		t.Fatalf("RemoteAddr is a %T", nc.RemoteAddr())
	}
	if _, err := peer.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err = nc.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	nc.SetReadDeadline(time.Time{})
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if fd, err := RawFD(rc); err != nil || fd < 0 {
		t.Fatalf("descriptor %d, %v", fd, err)
	}
	if _, err := nc.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if err := nc.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(peer)
	if err != nil || string(got) != "pong" {
		t.Fatalf("the peer read %q, %v: want pong, then end-of-stream", got, err)
	}
	peer.Close()
	if n, err := nc.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d, %v; want io.EOF itself", n, err)
	}
	if err := nc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v, want net.ErrClosed", err)
	}
	if _, err := nc.Write(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
}

// A descriptor that came blocking is not in the poller: Open falls back to
// net.FileConn, whose duplicate is.
func TestOpenBlockingSocketFallsBack(t *testing.T) {
	_, f := receivedSocket(t, true)
	nc, err := (&State{Kind: KindNative}).Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, ok := nc.(*net.TCPConn); !ok {
		t.Fatalf("Open made a %T of a blocking descriptor", nc)
	}
}
