//go:build linux

package conn

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// idlePoller holds idle plaintext connections without a goroutine each: their
// sockets are watched by an epoll instance of its own, and a reader is started only
// when one has bytes (or ends), or when the server needs its reader (wake). The
// epoll instance is itself waited on through the runtime's poller, so no thread
// blocks in epoll_wait; Close ends the actor.
//
// Each socket is registered level-triggered and one-shot: an event disarms it, and
// the next park arms it again, so a registration made while bytes are already
// waiting fires at once and none is missed between the reader's last read and the
// park. The runtime's own poller keeps its registration of the same socket; the
// two do not interfere.
type idlePoller struct {
	f   *os.File // the epoll instance
	rc  syscall.RawConn
	mu  sync.Mutex
	idx map[uint64]*Conn // the parked connections, by id (an event's data)

	// register's arguments and result, under regMu (see register)
	regMu                   sync.Mutex
	ev                      unix.EpollEvent
	sock                    int
	add                     bool // the socket is not registered yet
	err                     error
	ctl                     func(ep, op, fd int, ev *unix.EpollEvent) error // unix.EpollCtl; tests count the calls
	withSockFn, withEpollFn func(uintptr)
	// done is closed when the actor has returned.
	done chan struct{}
}

// idleEvents is what an epoll_wait returns at most at once: enough that a
// heartbeat round of a large fleet takes few calls, small enough to sit in one
// allocation for the actor's life.
const idleEvents = 256

func newIdlePoller() (*idlePoller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("idle poller: epoll_create1: %w", err)
	}
	// Non-blocking, so that os.NewFile gives it to the runtime's poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("idle poller: %w", err)
	}
	f := os.NewFile(uintptr(fd), "idle-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("idle poller: %w", err)
	}
	p := &idlePoller{f: f, rc: rc, idx: make(map[uint64]*Conn), done: make(chan struct{}), ctl: unix.EpollCtl}
	p.withSockFn, p.withEpollFn = p.withSock, p.withEpoll
	go p.run()
	return p, nil
}

// run is the actor: it waits for the epoll instance to be readable and starts the
// reader of every connection whose socket is, until Close.
func (p *idlePoller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, idleEvents)
	for {
		err := p.rc.Read(func(fd uintptr) bool {
			for {
				n, err := unix.EpollWait(int(fd), events, 0)
				if err == unix.EINTR {
					continue
				}
				if err != nil || n <= 0 {
					return false // wait until the instance is readable again
				}
				for i := range events[:n] {
					e := &events[i]
					if c := p.unpark(uint64(uint32(e.Fd)) | uint64(uint32(e.Pad))<<32); c != nil {
						spawn(c, (*Conn).serveWoken)
					}
				}
				if n < len(events) {
					return false
				}
			}
		})
		if err != nil {
			return // closed
		}
	}
}

// park registers c's socket and forgets c's reader: it reports whether the calling
// goroutine, c's reader, must now end. On the reader, with no input held. When c
// cannot be parked (its socket is closed, or the connection must be read now:
// closing, handoff asked), the caller reads on, unless a wake already started a
// reader for c, which then serves it instead.
func (p *idlePoller) park(c *Conn) bool {
	p.mu.Lock()
	p.idx[c.id] = c
	p.mu.Unlock()
	// Registered after c is in the index, so that a wake which follows a close of
	// the socket finds it; checked after it is, so that a wake which came first has
	// left its mark (handoffAsked, closing) for the check below.
	err := p.register(c)
	if err == nil && !c.mustRead() {
		return true
	}
	return p.unpark(c.id) == nil // gone already: a wake took it, and its reader serves on
}

// register arms c's socket in the epoll instance. One park at a time: the
// callbacks are bound once and take their arguments from p, so that a park, once
// per heartbeat of every idle agent, allocates nothing.
func (p *idlePoller) register(c *Conn) error {
	p.regMu.Lock()
	defer p.regMu.Unlock()
	p.ev = unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(uint32(c.id)), Pad: int32(uint32(c.id >> 32))}
	p.err = nil
	p.add = !c.polled
	if err := c.rc.Control(p.withSockFn); err != nil {
		return err
	}
	if p.err == nil {
		c.polled = true
	}
	return p.err
}

// withSock is register's callback holding the socket's descriptor.
func (p *idlePoller) withSock(sock uintptr) {
	p.sock = int(sock)
	if err := p.rc.Control(p.withEpollFn); err != nil {
		p.err = err
	}
}

// withEpoll is register's callback holding the epoll instance's descriptor.
func (p *idlePoller) withEpoll(ep uintptr) {
	// A socket parked before stays registered, disarmed, until it is closed: it is
	// armed again with MOD. One call either way; the other is the fallback.
	first, then := unix.EPOLL_CTL_MOD, unix.EPOLL_CTL_ADD
	miss := unix.ENOENT
	if p.add {
		first, then, miss = then, first, unix.EEXIST
	}
	p.err = p.ctl(int(ep), first, p.sock, &p.ev)
	if errors.Is(p.err, miss) {
		p.err = p.ctl(int(ep), then, p.sock, &p.ev)
	}
}

// unpark takes the connection with this id off the index and returns it, nil if
// it is not parked: whoever takes it starts its reader.
func (p *idlePoller) unpark(id uint64) *Conn {
	p.mu.Lock()
	c := p.idx[id]
	if c != nil {
		delete(p.idx, id)
	}
	p.mu.Unlock()
	return c
}

// parked reports how many connections are parked.
func (p *idlePoller) parked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idx)
}

// Close ends the actor and waits for it. Call it once no connection can park:
// after every connection's teardown.
func (p *idlePoller) Close() {
	p.f.Close()
	<-p.done
}
