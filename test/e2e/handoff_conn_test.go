package e2e

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// handoffUpgrades is how many back-to-back upgrades TestHandoffConnectionsUnderLoad
// runs: 4 in CI; E2E_HANDOFF_UPGRADES=20 for the figure the performance docs quote
// (not HAWK_*: the server reads those as configuration).
func handoffUpgrades(t *testing.T) int {
	if v := os.Getenv("E2E_HANDOFF_UPGRADES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("E2E_HANDOFF_UPGRADES=%q", v)
		}
		return n
	}
	return 4
}

// 1,000 native connections under load through back-to-back upgrades: every
// connection moves to the new process on its own socket, so the clients see no
// GOAWAY, no reconnect and no error, and every acked report is in the spool
// exactly once. Each old process exits once its connections moved; how long after
// its successor's ready is logged (the figure, not an assertion).
func TestHandoffConnectionsUnderLoad(t *testing.T) {
	const conns = 1000
	// The load's 1,000 clients may connect faster than limits.handshake_rate admits: a
	// "busy" refusal would count as a dial failure, and admission is not what this tests.
	s := startServer(t, bin.serverV1, "-limits.max_conns=5000", "-limits.handshake_rate=0")
	addr := s.addr()
	load := startLoad(t, addr, "-c", strconv.Itoa(conns), "-w", "4", "-s", "128", "-rate", "20000", "-d", "10m")
	s.waitConnected(conns)
	s.waitProgress(5000)
	versions := []string{bin.serverV2, bin.serverV1}
	var worst time.Duration
	for i := range handoffUpgrades(t) {
		old := s.pid()
		s.upgradeTo(versions[i%2])
		ready := s.waitLog(10*time.Second, byPID(old, "upgrade succeeded: new process is ready; draining this one"))
		done := s.waitLog(10*time.Second, byPID(old, "handoff finished: connections moved to the new process"))
		exit := s.waitLog(10*time.Second, byPID(old, "exiting"))
		if moved := int(done.num("moved")); moved != conns || done.num("fallback") != 0 || done.num("lost") != 0 {
			t.Fatalf("upgrade %d: handoff moved %d of %d connections (fallback %v, lost %v)", i+1, moved, conns, done["fallback"], done["lost"])
		}
		gone := logTime(t, exit).Sub(logTime(t, ready))
		worst = max(worst, gone)
		t.Logf("upgrade %d: %d connections moved in %.1f ms in %v batches; old process exited %v after its successor was ready",
			i+1, conns, done.num("duration")*1000, done["batches"], gone.Round(time.Millisecond))
		s.waitProgress(2000)
	}
	// The old processes are gone with their metrics: the last successor counts its
	// parent's handoff from the summary it was sent, and its own adoptions.
	m, err := scrapeMetrics(s.adminAddr())
	if err != nil {
		t.Fatal(err)
	}
	for _, sample := range []string{`hawk_handoff_connections_total{reason="",result="moved"}`, `hawk_handoff_connections_total{reason="",result="adopted"}`} {
		if m[sample] != conns {
			t.Fatalf("%s = %v, want %d", sample, m[sample], conns)
		}
	}
	if m["hawk_handoff_duration_seconds"] <= 0 {
		t.Fatalf("hawk_handoff_duration_seconds = %v", m["hawk_handoff_duration_seconds"])
	}
	sum := load.stop()
	t.Logf("load: %+v; slowest old-process exit after ready: %v", sum, worst.Round(time.Millisecond))
	if sum.Errors != 0 || sum.Reconnects != 0 || sum.Goaways != 0 || sum.DialFailures != 0 || sum.Acked != sum.Sent {
		t.Fatalf("clients noticed the upgrades: %+v", sum)
	}
	s.stopAll()
	keys, _ := spoolKeys(t, s.spool)
	inSpool, dups := exactlyOnce(t, keys, load.acked())
	t.Logf("%d upgrades under load: acked %d, in spool %d, duplicates %d", handoffUpgrades(t), sum.Acked, inSpool, dups)
}

// logTime is when a line was logged.
func logTime(t *testing.T, l logLine) time.Time {
	ts, err := time.Parse(time.RFC3339Nano, l.str("ts"))
	if err != nil {
		t.Fatalf("log time %q: %v", l.str("ts"), err)
	}
	return ts
}

// A burst of SIGHUPs to the new process while its parent still hands it its
// connections never turns a handoff into a GOAWAY drain: the first SIGHUP waits
// for that handoff and the parent's exit, then upgrades (handing every connection
// on once more), the others are refused at once as in progress; the clients see
// nothing. (Had the first been refused, the parent still draining, the same holds.)
func TestHandoffSighupsDuringHandoff(t *testing.T) {
	const conns = 300
	s := startServer(t, bin.serverV1)
	addr := s.addr()
	load := startLoad(t, addr, "-c", strconv.Itoa(conns), "-w", "4", "-s", "128", "-rate", "10000", "-d", "10m")
	s.waitConnected(conns)
	s.waitProgress(2000)
	old := s.pid()
	install(t, bin.serverV2, s.binary)
	s.signal(old, syscall.SIGHUP)
	s.waitLog(10*time.Second, byPID(old, msgUpgraded))
	// The new process names itself in the PID file after its Ready, which the
	// parent may have logged first.
	next := s.waitPIDFileNames(func(pid int) bool { return pid != old }, 5*time.Second)
	for range 5 {
		s.signal(next, syscall.SIGHUP)
		time.Sleep(5 * time.Millisecond) // a burst, not a wait for anything
	}
	waitGone(t, old, 15*time.Second, "the old process")
	handed := s.waitLog(10*time.Second, byPID(old, "handoff finished: connections moved to the new process"))
	// SIGHUPs that arrive together may be delivered as one: every one delivered
	// (logged as requested) gets its verdict.
	requested := s.waitLogs(byPID(next, "upgrade requested (SIGHUP): starting the new binary"), 1)
	verdicts := s.waitVerdicts(next, len(requested))
	upgraded := 0
	for _, v := range verdicts {
		switch {
		case v.str("msg") == msgUpgraded:
			upgraded++
		case v.str("msg") != msgRefused:
			t.Fatalf("SIGHUP to the new process: %v", v)
		}
	}
	if upgraded > 1 {
		t.Fatalf("%d upgrades from one burst of SIGHUPs: %v", upgraded, verdicts)
	}
	t.Logf("5 SIGHUPs to %d during its parent's handoff (%v moved), %d delivered: %d upgraded, %d refused", next, handed["moved"],
		len(requested), upgraded, len(verdicts)-upgraded)
	if upgraded == 1 {
		exit := s.waitLog(15*time.Second, byPID(next, "exiting"))
		done := s.findLogs(byPID(next, "handoff finished: connections moved to the new process"))
		if exit.num("goaways") != 0 || len(done) != 1 || done[0].num("moved") != conns {
			t.Fatalf("the new process, replaced, drained %v connections with GOAWAY; its handoff: %v", exit["goaways"], done)
		}
		waitGone(t, next, 15*time.Second, "the new process, replaced")
	}
	s.waitProgress(2000)
	sum := load.stop()
	t.Logf("load: %+v", sum)
	if sum.Errors != 0 || sum.Reconnects != 0 || sum.Goaways != 0 || sum.Acked != sum.Sent {
		t.Fatalf("clients noticed: %+v", sum)
	}
	s.stopAll()
	keys, _ := spoolKeys(t, s.spool)
	exactlyOnce(t, keys, load.acked())
}

// A SIGTERM that reaches the old process during the handoff is a stop of the
// service (once the upgrade has won, a stop belongs to the new process, which
// systemd then follows): the handoff still completes without losing a connection between the
// two processes, then the new process drains and exits, and every acked report is
// in the spool exactly once.
func TestHandoffSigtermDuringHandoff(t *testing.T) {
	const conns = 300
	s := startServer(t, bin.serverV1)
	load := startLoad(t, s.addr(), "-c", strconv.Itoa(conns), "-w", "4", "-s", "128", "-rate", "10000", "-d", "10m")
	s.waitConnected(conns)
	s.waitProgress(2000)
	old := s.pid()
	install(t, bin.serverV2, s.binary)
	s.signal(old, syscall.SIGHUP)
	s.waitLog(10*time.Second, byPID(old, "upgrade succeeded: new process is ready; draining this one"))
	// The new process is the old one's child until the old one exits (the PID file
	// may still name the old one: it is written as the old process exits).
	var kids []int
	testutil.Eventually(t, 5*time.Second, func() bool { kids = childrenOf(old); return len(kids) == 1 || !alive(old) }, "the new process")
	next := s.pid() // the old process is gone: the PID file names the new one
	if len(kids) == 1 {
		next = kids[0]
	}
	syscall.Kill(old, syscall.SIGTERM) // ESRCH if the handoff already ended: the stop then never reaches the service
	handed := s.waitLog(15*time.Second, func(l logLine) bool {
		return int(l.num("pid")) == old && strings.HasPrefix(l.str("msg"), "handoff")
	})
	if handed.num("lost") != 0 {
		t.Fatalf("connections lost between the processes: %v", handed)
	}
	testutil.Eventually(t, 15*time.Second, func() bool { return !alive(old) }, "the old process %d to exit", old)
	if len(s.findLogs(byPID(old, "stop signal during an upgrade: handed to the new process, which stops too; this one keeps draining"))) == 1 {
		exit := s.waitLog(30*time.Second, byPID(next, "exiting"))
		if exit.str("reason") != "shutdown" {
			t.Fatalf("the new process exited with reason %q, want shutdown", exit.str("reason"))
		}
	}
	load.stop()
	s.stopAll()
	keys, _ := spoolKeys(t, s.spool)
	exactlyOnce(t, keys, load.acked())
}
