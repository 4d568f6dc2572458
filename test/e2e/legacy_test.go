package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/legacy"
	"github.com/hawk-agents/hawk/internal/spool"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// ffffAgent is a metrics agent's connection: frames out, receipt lines in.
type ffffAgent struct {
	t  *testing.T
	nc net.Conn
	rd *bufio.Reader
	id string // its client id in the spool: ffff:<its address>
}

func dialFFFF(t *testing.T, addr string) *ffffAgent {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &ffffAgent{t: t, nc: nc, rd: bufio.NewReader(nc), id: "ffff:" + nc.LocalAddr().String()}
}

// report sends n reports and a heartbeat in one write and reads their n receipts
// and the heartbeat's line.
func (a *ffffAgent) report(n int, tag string) {
	a.t.Helper()
	var b []byte
	for i := range n {
		b = legacy.AppendFFFFPacket(b, legacy.FFFFReport, fmt.Appendf(nil, `{"content":"%s-%d","rand":%d,"timestamp":1700000000}`, tag, i, i))
	}
	b = legacy.AppendFFFFPacket(b, legacy.FFFFHeartbeat, []byte(`{"version":"1.0","timestamp":1700000000}`))
	if _, err := a.nc.Write(b); err != nil {
		a.t.Fatal(err)
	}
	a.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range n + 1 {
		want := legacy.FFFFReportReply
		if i == n {
			want = legacy.FFFFHeartbeatReply
		}
		line, err := a.rd.ReadString('\n')
		if err != nil || line != want {
			a.t.Fatalf("%s: line %d: %q, %v; want %q", tag, i, line, err, want)
		}
	}
}

// spoolLinesOf counts the complete records of clientID in the segments written by pid
// (0: any).
func spoolLinesOf(t *testing.T, dir string, pid int, clientID string) int {
	t.Helper()
	segs, err := spool.Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, seg := range segs {
		if pid != 0 && seg.PID != pid {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, seg.Name))
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.Lines(b[:bytes.LastIndexByte(b, '\n')+1]) {
			if id, _, ok := ingest.ParseKey(line, nil); ok && string(id) == clientID {
				n++
			}
		}
	}
	return n
}

// A legacy ffff listener on the real binary: reports are receipted after they are
// in the spool; on SIGHUP the new process inherits the listener and serves new
// agents on it. With upgrade.handoff off (and whenever a connection falls back),
// the old process keeps serving the agent it has until it leaves (legacy formats
// have no GOAWAY); handoff_legacy_test.go covers the connection moving.
func TestLegacyFFFFListenerAcrossUpgrade(t *testing.T) {
	s := startServer(t, bin.serverV1, "-upgrade.handoff=false",
		`-legacy.listeners=[{name: metrics, address: "127.0.0.1:0", format: ffff, allow: [127.0.0.0/8]}]`)
	l := s.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "legacy listening" && l.str("listener") == "metrics" })
	addr := l.str("addr")
	if l.str("format") != "ffff" || addr == "" {
		t.Fatalf("legacy listening line: %v", l)
	}

	old := s.pid()
	a := dialFFFF(t, addr)
	a.report(50, "before")
	if n := spoolLinesOf(t, s.spool, old, a.id); n != 50 {
		t.Fatalf("%d records of agent A in the spool after 50 receipts, want 50", n)
	}

	install(t, bin.serverV2, s.binary)
	s.signal(old, syscall.SIGHUP)
	s.waitLog(10*time.Second, func(l logLine) bool {
		return int(l.num("pid")) == old && l.str("msg") == "upgrade succeeded: new process is ready; draining this one"
	})
	testutil.Eventually(t, 5*time.Second, func() bool { p := s.pid(); return p != old && alive(p) }, "the PID file to name the new process")
	next := s.pid()
	s.waitLog(10*time.Second, func(l logLine) bool {
		return int(l.num("pid")) == next && l.str("msg") == "legacy listening" && l.str("addr") == addr
	})

	// A new agent on the same address is served by the new process.
	b := dialFFFF(t, addr)
	b.report(20, "after")
	if n := spoolLinesOf(t, s.spool, next, b.id); n != 20 {
		t.Fatalf("%d records of agent B in the new process's segments, want 20", n)
	}
	// The old agent is still served by the old process, which waits for it.
	if !alive(old) {
		t.Fatal("the old process exited while a legacy agent was connected")
	}
	a.report(10, "draining")
	if n := spoolLinesOf(t, s.spool, old, a.id); n != 60 {
		t.Fatalf("%d records of agent A in the old process's segments, want 60", n)
	}
	a.nc.Close()
	testutil.Eventually(t, 10*time.Second, func() bool { return !alive(old) }, "the old process to exit once its legacy agent left")
	// Not cut at the deadline: it left by itself (before or during the drain,
	// depending on when the old process got to it).
	s.waitLog(5*time.Second, func(l logLine) bool {
		return int(l.num("pid")) == old && l.str("msg") == "legacy listener drained" && l.num("cut_at_deadline") == 0
	})
	b.report(5, "later")
}

// On a stop, a legacy agent is served through the drain (no GOAWAY exists to tell
// it to go) and cut at drain.timeout.
func TestLegacyConnectionCutAtDrainTimeout(t *testing.T) {
	s := startServer(t, bin.serverV1, "-drain.timeout=3s",
		`-legacy.listeners=[{name: metrics, address: "127.0.0.1:0", format: ffff, allow: [127.0.0.0/8]}]`)
	addr := s.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "legacy listening" }).str("addr")
	a := dialFFFF(t, addr)
	a.report(5, "before")
	pid := s.pid()
	s.signal(pid, syscall.SIGTERM)
	s.waitLog(5*time.Second, func(l logLine) bool { return l.str("msg") == "drain started" })
	a.report(5, "draining") // still stored and receipted
	a.nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	if line, err := a.rd.ReadString('\n'); err == nil {
		t.Fatalf("read %q; want the connection cut at drain.timeout", line)
	}
	s.waitLog(10*time.Second, func(l logLine) bool {
		return l.str("msg") == "legacy listener drained" && l.num("cut_at_deadline") == 1
	})
	if n := spoolLinesOf(t, s.spool, 0, a.id); n != 10 {
		t.Errorf("%d records of the agent, want 10", n)
	}
}
