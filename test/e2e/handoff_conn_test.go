package e2e

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// handoffUpgrades is how many back-to-back upgrades TestHandoffConnectionsUnderLoad
// runs: 4 in CI; E2E_HANDOFF_UPGRADES=20 for the full figure (not HAWK_*: the
// server reads those as configuration).
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
	s := startServer(t, bin.serverV1, "-limits.max_conns=5000")
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

// Signals while connections move: SIGTERM to the old process (draining already:
// it says so and goes on) and SIGHUPs to the new one (refused while the old one
// lives, or, once it has exited, a clean upgrade of its own). No connection is lost
// between the two processes: the clients see nothing.
func TestHandoffSignalsDuringHandoff(t *testing.T) {
	const conns = 300
	s := startServer(t, bin.serverV1)
	addr := s.addr()
	load := startLoad(t, addr, "-c", strconv.Itoa(conns), "-w", "4", "-s", "128", "-rate", "10000", "-d", "10m")
	s.waitConnected(conns)
	s.waitProgress(2000)
	old := s.pid()
	install(t, bin.serverV2, s.binary)
	s.signal(old, syscall.SIGHUP)
	s.waitLog(10*time.Second, byPID(old, "upgrade succeeded: new process is ready; draining this one"))
	next := s.pid()
	syscall.Kill(old, syscall.SIGTERM) // ESRCH if it is already gone: nothing to test then
	for range 5 {
		syscall.Kill(next, syscall.SIGHUP)
		time.Sleep(5 * time.Millisecond)
	}
	testutil.Eventually(t, 15*time.Second, func() bool { return !alive(old) }, "the old process %d to exit", old)
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
