package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// Effectively-once ingest (internal/dedup): a report resent after a lost ACK is
// ACKed again, not stored again, across SIGKILL and restart and across upgrades.

// exactlyOnce asserts that every acked report is in the spool exactly once and
// that no (client_id, seq) is there twice; it returns the counts for the log.
func exactlyOnce(t testing.TB, spool, acked map[string]int) (inSpool, dups int) {
	t.Helper()
	missing := 0
	var examples []string
	for k := range acked {
		if spool[k] == 0 {
			missing++
			if len(examples) < 5 {
				examples = append(examples, k)
			}
		}
	}
	for k, n := range spool {
		inSpool += n
		if n > 1 {
			dups += n - 1
			if len(examples) < 10 {
				examples = append(examples, k)
			}
		}
	}
	if missing > 0 || dups > 0 {
		t.Errorf("%d acked reports missing from the spool, %d duplicate lines; e.g. %v", missing, dups, examples)
	}
	return inSpool, dups
}

// duplicatesAnswered scrapes hawk_reports_duplicate_total from the process's admin port.
func (s *server) duplicatesAnswered() float64 {
	s.t.Helper()
	_, body := get(s.t, "http://"+s.adminAddr()+"/metrics")
	return metricValue(s.t, body, "hawk_reports_duplicate_total")
}

// waitConnected waits until the process serves n connections: every client is back.
func (s *server) waitConnected(n int) {
	s.t.Helper()
	url := "http://" + s.adminAddr() + "/metrics"
	testutil.Eventually(s.t, 20*time.Second, func() bool {
		_, body := get(s.t, url)
		return metricValue(s.t, body, "hawk_connections") >= float64(n)
	}, "%d connections", n)
}

// lostAckClient is an agent whose ACKs are lost: it sends reports on a raw
// connection and never reads the answers. It resends them later, as an agent does.
type lostAckClient struct {
	t    testing.TB
	id   string
	seqs []uint64
	peer *testutil.Peer
}

func newLostAckClient(t testing.TB, id string, from uint64, n int) *lostAckClient {
	c := &lostAckClient{t: t, id: id}
	for i := range n {
		c.seqs = append(c.seqs, from+uint64(i))
	}
	return c
}

func (c *lostAckClient) stream() []byte {
	var b []byte
	for _, s := range c.seqs {
		b = protocol.AppendFrame(b, protocol.TypeReport, s, []byte(`{"lost_ack":true}`))
	}
	return b
}

// send connects to addr, sends the reports and waits until the spool in dir holds
// them; the answers are not read.
func (c *lostAckClient) send(addr, dir string) {
	c.t.Helper()
	c.peer = testutil.Dial(c.t, addr)
	c.peer.Hello(c.id, "")
	c.peer.Write(c.stream())
	testutil.Eventually(c.t, 10*time.Second, func() bool {
		keys, _ := spoolKeys(c.t, dir)
		for _, s := range c.seqs {
			if keys[fmt.Sprintf("%s %d", c.id, s)] == 0 {
				return false
			}
		}
		return true
	}, "%s's reports in the spool", c.id)
}

// resend sends the same reports on a new connection to addr and expects an ACK for
// each; it returns them as acked keys.
func (c *lostAckClient) resend(addr string, acked map[string]int) {
	c.t.Helper()
	if c.peer != nil {
		c.peer.Conn.Close()
	}
	p := testutil.Dial(c.t, addr)
	defer p.Conn.Close()
	p.Hello(c.id, "")
	p.Write(c.stream())
	left := map[uint64]bool{}
	for _, s := range c.seqs {
		left[s] = true
	}
	for len(left) > 0 {
		f, err := p.Next(10 * time.Second)
		if err != nil {
			c.t.Fatalf("%s: waiting for the ACKs of the resent reports: %v", c.id, err)
		}
		if f.Type != protocol.TypeAck || !left[f.Seq] {
			c.t.Fatalf("%s: got %s seq %d, want an ACK for one of the resent reports", c.id, f.Type, f.Seq)
		}
		delete(left, f.Seq)
		acked[fmt.Sprintf("%s %d", c.id, f.Seq)]++
	}
}

// SIGKILL under load, three times, each time restarting on the same spool; the
// clients reconnect and resend what was not acked. With fsync always, a kill
// during an fsync leaves reports written but not acked: their resends must be
// ACKed from the rebuilt windows, not written again.
func TestSigkillRestartExactlyOnce(t *testing.T) {
	const kills = 3
	s := startServer(t, bin.serverV1, "-spool.fsync=always", testutil.StableListen(t)) // started again on addr below
	addr := s.addr()
	load := startLoad(t, addr, "-c", "100", "-w", "8", "-s", "256", "-rate", "20000", "-d", "10m")
	cur := s
	var answered float64
	lost := map[string]int{} // acked to the lost-ack clients on their resend
	for i := range kills {
		cur.waitConnected(100)
		cur.waitProgress(10000)
		// Reports durable but never acked at the kill, deterministically.
		la := newLostAckClient(t, fmt.Sprintf("lost-acks-%d", i), uint64(1_000_000*(i+1)), 50)
		la.send(addr, s.spool)
		answered += cur.duplicatesAnswered()
		cur.signal(cur.cmd.Process.Pid, syscall.SIGKILL)
		err := <-cur.waitErr
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("kill %d: the server exited with %v, want killed", i+1, err)
		}
		cur.waitErr <- err
		cur = restartServer(t, s, "-listen="+addr, "-spool.fsync=always")
		rebuilt := cur.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "dedup windows rebuilt from the spool" })
		t.Logf("restart %d: rebuilt %v records of %v clients from %v bytes in %vs", i+1,
			rebuilt["records"], rebuilt["clients"], rebuilt["bytes"], rebuilt["took"])
		la.resend(addr, lost)
		if d := cur.duplicatesAnswered(); d < 50 {
			t.Fatalf("restart %d: %v duplicates answered after resending 50 reports already in the spool", i+1, d)
		}
	}
	cur.waitConnected(100)
	cur.waitProgress(10000)
	sum := load.stop()
	answered += cur.duplicatesAnswered()
	if sum.Reconnects < kills*100 || sum.Errors != 0 || sum.Acked != sum.Sent {
		t.Fatalf("load after %d kills: %+v; want every client reconnected each time and every report acked", kills, sum)
	}
	cur.stopAll()
	acked := load.acked()
	for k, n := range lost {
		acked[k] += n
	}
	keys, torn := spoolKeys(t, s.spool)
	inSpool, dups := exactlyOnce(t, keys, acked)
	t.Logf("SIGKILL ×%d under load: acked %d (%d distinct), in spool %d lines (%d distinct), duplicates %d, torn last lines %d, resends answered without a second line %.0f, reconnects %d",
		kills, sum.Acked, len(acked), inSpool, len(keys), dups, torn, answered, sum.Reconnects)
}

// Upgrades under load: the new process receives the old one's dedup windows and
// follows its segments while it drains; nothing is stored twice.
func TestUpgradesExactlyOnce(t *testing.T) {
	// The GOAWAY path: the lost-ack client stays with the old process, whose late
	// records only following its spool finds (with a handoff it would move).
	s := startServer(t, bin.serverV1, "-upgrade.handoff=false")
	addr := s.addr()
	load := startLoad(t, addr, "-c", "200", "-w", "8", "-s", "256", "-rate", "20000", "-d", "10m")
	s.waitProgress(5000)
	lost := map[string]int{}
	for i, v := range []string{bin.serverV2, bin.serverV1} {
		// Connected to the old process, which keeps serving it while it drains.
		la := newLostAckClient(t, fmt.Sprintf("lost-acks-upgrade-%d", i), 1, 50)
		la.peer = testutil.Dial(t, addr)
		la.peer.Hello(la.id, "")
		old := s.pid()
		install(t, v, s.binary)
		s.signal(old, syscall.SIGHUP)
		s.waitLog(10*time.Second, func(l logLine) bool {
			return int(l.num("pid")) == old && l.str("msg") == "upgrade succeeded: new process is ready; draining this one"
		})
		testutil.Eventually(t, 5*time.Second, func() bool { p := s.pid(); return p != old && alive(p) }, "the PID file to name the new process")
		pid := s.pid()
		got := s.waitLog(10*time.Second, func(l logLine) bool {
			return int(l.num("pid")) == pid && l.str("msg") == "dedup windows received from the previous process"
		})
		if got.num("clients") < 200 {
			t.Fatalf("upgrade %d: the windows of %v clients received, want the load's 200 at least", i+1, got["clients"])
		}
		s.waitLog(10*time.Second, func(l logLine) bool { return int(l.num("pid")) == pid && l.str("msg") == "dedup ready" })
		// Written by the old process after the new one received its windows: only
		// following finds them.
		la.peer.Write(la.stream())
		testutil.Eventually(t, 10*time.Second, func() bool {
			keys, _ := spoolKeys(t, s.spool)
			return keys[la.id+" 50"] == 1
		}, "the old process to store %s's reports", la.id)
		la.peer.Conn.Close()
		testutil.Eventually(t, 10*time.Second, func() bool { return !alive(old) }, "the old process %d to exit after its drain", old)
		l := s.waitLog(10*time.Second, func(l logLine) bool {
			return int(l.num("pid")) == pid && l.str("msg") == "stopped following the previous process's spool"
		})
		r := s.waitLog(10*time.Second, func(l logLine) bool { return int(l.num("pid")) == pid && l.str("msg") == "dedup ready" })
		if n := l.num("records"); n < 50 {
			t.Fatalf("upgrade %d: the new process followed %v records of the old one, want at least the 50 written after its rebuild", i+1, n)
		}
		t.Logf("upgrade %d: dedup ready %vs after start; followed %v records of the old process over %vs",
			i+1, r["since_start"], l["records"], l["took"])
		la.resend(addr, lost)
		s.waitProgress(3000)
	}
	sum := load.stop()
	t.Logf("load: %+v", sum)
	if sum.Errors != 0 || sum.Acked != sum.Sent {
		t.Fatalf("clients noticed the upgrades: %+v", sum)
	}
	s.stopAll()
	keys, _ := spoolKeys(t, s.spool)
	acked := load.acked()
	for k, n := range lost {
		acked[k] += n
	}
	inSpool, dups := exactlyOnce(t, keys, acked)
	t.Logf("two upgrades under load: acked %d, in spool %d, duplicates %d", sum.Acked, inSpool, dups)
}
