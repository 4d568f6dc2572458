package conn

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// TestParkArmsWithOneCall: a connection's first park registers its socket with one
// epoll_ctl (ADD), every later park re-arms it with one (MOD), and a park whose
// guess is wrong still parks, with the other call.
func TestParkArmsWithOneCall(t *testing.T) {
	respawnAfterIs(t, 0)
	ts := startServer(t, testSettings())
	var ops []int
	p := ts.m.idle
	p.regMu.Lock()
	p.ctl = func(ep, op, fd int, ev *unix.EpollEvent) error {
		ops = append(ops, op)
		return unix.EpollCtl(ep, op, fd, ev)
	}
	p.regMu.Unlock()
	calls := func() []int {
		p.regMu.Lock()
		defer p.regMu.Unlock()
		o := ops
		ops = nil
		return o
	}
	same := func(what string, got []int, want ...int) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: epoll_ctl ops %v, want %v", what, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: epoll_ctl ops %v, want %v", what, got, want)
			}
		}
	}
	c := testutil.Dial(t, ts.addr)
	c.Hello("agent-1", "")
	parkedIs(t, ts, 1, "after the handshake")
	same("first park", calls(), unix.EPOLL_CTL_ADD)
	conn := ts.m.reg.Snapshot(nil)[0]
	for i := range 2 {
		if p.unpark(conn.id) == nil || !p.park(conn) {
			t.Fatalf("park %d: not parked again", i)
		}
		same("a park again", calls(), unix.EPOLL_CTL_MOD)
	}
	// Told wrong: registered, yet taken for new. ADD fails (EEXIST), MOD arms it.
	p.unpark(conn.id)
	p.regMu.Lock()
	conn.polled = false
	p.regMu.Unlock()
	if !p.park(conn) {
		t.Fatal("not parked after a wrong guess")
	}
	same("a wrong guess", calls(), unix.EPOLL_CTL_ADD, unix.EPOLL_CTL_MOD)
	// Still served: a heartbeat wakes it, is answered, and it parks again.
	pinger(t, c)()
	parkedIs(t, ts, 1, "after a heartbeat")
	same("the park after a heartbeat", calls(), unix.EPOLL_CTL_MOD)
}
