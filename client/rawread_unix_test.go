//go:build unix

package client

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// hookOwner is a sessionOwner that runs onEvents inside sessionEvents (on the
// reader, inside its read) and records the events and the end.
type hookOwner struct {
	recordingOwner
	onEvents func(s *session)
}

func (o *hookOwner) sessionEvents(s *session, evs []sessionEvent) {
	o.recordingOwner.sessionEvents(s, evs)
	if o.onEvents != nil {
		o.onEvents(s)
	}
}

// startRawSession runs a session on a loopback TCP pair, reading through
// readRaw, and returns it with the server's side.
func startRawSession(t *testing.T, owner sessionOwner) (*session, net.Conn, *sync.WaitGroup) {
	t.Helper()
	cli, srv := tcpPair(t)
	var wg sync.WaitGroup
	s := newSession(owner, &wg, cli)
	if s.raw == nil {
		t.Fatal("no raw access to a TCP socket: readLoop would read through the net.Conn")
	}
	wg.Add(2)
	go s.readLoop()
	go s.writeLoop()
	t.Cleanup(func() {
		s.fail(ErrClosed)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the session's reader or writer never exited")
		}
	})
	return s, srv, &wg
}

// waitEnded waits for the owner to hear that s ended, or fails the test.
func waitEnded(t *testing.T, ended <-chan *session, s *session) {
	t.Helper()
	select {
	case got := <-ended:
		if got != s {
			t.Fatal("sessionEnded called with another session")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end: its reader is stuck")
	}
}

// expectEOF reads from the server's side until the client's close shows, or
// fails the test.
// expectEndedWith waits until s has ended with want, its goroutines have exited
// and srv has seen the socket closed.
func expectEndedWith(t *testing.T, ended <-chan *session, s *session, wg *sync.WaitGroup, srv net.Conn, want error) {
	t.Helper()
	waitEnded(t, ended, s)
	wg.Wait()
	if s.err != want {
		t.Fatalf("session ended with %v, want %v", s.err, want)
	}
	expectEOF(t, srv)
}

func expectEOF(t *testing.T, srv net.Conn) {
	t.Helper()
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, srv); err != nil {
		t.Fatalf("waiting for the client to close the socket: %v", err)
	}
}

// After a read that did not fill the buffer the reader waits for the socket
// without reading it again: a frame that arrives in pieces, each after the
// reader has consumed the one before, still reaches the owner whole, and
// frames that arrive later still come in.
func TestRawReadWaitsAfterShortRead(t *testing.T) {
	owner := &hookOwner{recordingOwner: recordingOwner{ended: make(chan *session, 1)}}
	s, srv, _ := startRawSession(t, owner)
	ack := protocol.AppendFrame(nil, protocol.TypeAck, 7, nil)
	for i := range ack { // one byte a write, each read by the client before the next
		s.lastRecv.Store(0) // set again by the reader's next read
		if _, err := srv.Write(ack[i : i+1]); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, func() bool { return s.lastRecv.Load() != 0 }, "the client reading byte %d of the ACK", i)
	}
	if _, err := srv.Write(protocol.AppendFrame(nil, protocol.TypeAck, 8, nil)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		owner.mu.Lock()
		defer owner.mu.Unlock()
		return len(owner.evs) == 2
	}, "the second ACK")
	owner.mu.Lock()
	if owner.evs[0].seq != 7 || owner.evs[1].seq != 8 {
		t.Errorf("acked %d and %d, want 7 and 8", owner.evs[0].seq, owner.evs[1].seq)
	}
	owner.mu.Unlock()
}

// What runs inside the reader's read may end the session (a retired connection
// whose last ACK arrived, the reader's own write failing): fail must not close
// the socket there, which would wait for the read it runs in. The session ends
// with that error and the socket is closed.
func TestRawReadFailFromInsideRead(t *testing.T) {
	errInside := errors.New("ended from inside the read")
	owner := &hookOwner{recordingOwner: recordingOwner{ended: make(chan *session, 1)}}
	owner.onEvents = func(s *session) { s.fail(errInside) }
	s, srv, wg := startRawSession(t, owner)
	if _, err := srv.Write(protocol.AppendFrame(nil, protocol.TypeAck, 1, nil)); err != nil {
		t.Fatal(err)
	}
	expectEndedWith(t, owner.ended, s, wg, srv, errInside)
}

// fail from another goroutine that holds a lock the reader waits for inside its
// read (the heartbeat holds the Client's mu, which sessionEvents takes) returns
// at once; the reader then gets the lock, leaves its read and closes the socket.
func TestRawReadFailWhileReaderWaitsForCallersLock(t *testing.T) {
	var mu sync.Mutex
	inside := make(chan struct{})
	owner := &hookOwner{recordingOwner: recordingOwner{ended: make(chan *session, 1)}}
	owner.onEvents = func(*session) {
		close(inside)
		mu.Lock() // held by the test while it calls fail
		mu.Unlock()
	}
	mu.Lock()
	s, srv, wg := startRawSession(t, owner)
	if _, err := srv.Write(protocol.AppendFrame(nil, protocol.TypeAck, 1, nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inside:
	case <-time.After(10 * time.Second):
		t.Fatal("the ACK never reached the owner")
	}
	failed := make(chan struct{})
	go func() {
		s.fail(errHeartbeatTimeout)
		close(failed)
	}()
	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("fail waits for the reader, which waits for fail's caller")
	}
	mu.Unlock()
	expectEndedWith(t, owner.ended, s, wg, srv, errHeartbeatTimeout)
}

// fail from another goroutine while the reader waits for bytes wakes it: the
// session ends and the socket is closed although the server sends nothing.
func TestRawReadFailWakesWaitingReader(t *testing.T) {
	owner := &hookOwner{recordingOwner: recordingOwner{ended: make(chan *session, 1)}}
	s, srv, wg := startRawSession(t, owner)
	s.fail(errHeartbeatTimeout)
	waitEnded(t, owner.ended, s)
	wg.Wait()
	expectEOF(t, srv)
}

// After fail a raw write is refused before the system call (the past deadline):
// it says nothing was written, whatever the write before it wrote.
func TestRawWriteAfterFailWritesNothing(t *testing.T) {
	cli, _ := tcpPair(t)
	s := newSession(&recordingOwner{}, &sync.WaitGroup{}, cli)
	if s.raw == nil {
		t.Fatal("no raw access to a TCP socket")
	}
	if n, err := s.raw.writeNow([]byte("0123456789")); n != 10 || err != nil {
		t.Fatalf("first write: %d, %v", n, err)
	}
	s.fail(ErrClosed)
	if n, err := s.raw.writeNow([]byte("abc")); n != 0 || err == nil {
		t.Fatalf("write after fail: %d, %v; want 0 and an error", n, err)
	}
}
