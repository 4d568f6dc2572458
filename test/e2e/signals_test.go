package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// childrenOf returns the live processes whose parent is pid.
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && alive(p) {
			out = append(out, p)
		}
	}
	return out
}

// waitPIDFileNames waits until the PID file names a live process for which want
// is true, and returns it. It polls every 200µs, not with Eventually's backoff: a
// test that signals the process the moment it is named must learn it at once.
func (s *server) waitPIDFileNames(want func(pid int) bool, timeout time.Duration) int {
	s.t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Microsecond) {
		if p := s.pid(); p > 0 && want(p) && alive(p) {
			return p
		}
	}
	s.t.Fatalf("the PID file names %d after %v; log:\n%s", s.pid(), timeout, s.logTextDump())
	return 0
}

// A SIGHUP to the new process the moment the PID file names it, while its parent
// still hands it 1,000 connections and then exits, is performed, not refused: the
// new process waits for that handoff, then for the exit. Each round upgrades the
// serving process and at once its successor.
func TestSighupToNewProcessOnceNamed(t *testing.T) {
	const conns, rounds = 1000, 4
	// The load's 1,000 clients may connect faster than limits.handshake_rate admits: a
	// "busy" refusal would count as a dial failure, and admission is not what this tests.
	s := startServer(t, bin.serverV1, "-limits.max_conns=5000", "-limits.handshake_rate=0")
	load := startLoad(t, s.addr(), "-c", strconv.Itoa(conns), "-w", "4", "-s", "128", "-rate", "20000", "-d", "10m")
	s.waitConnected(conns)
	s.waitProgress(2000)
	for round := range rounds {
		old := s.pid()
		s.signal(old, syscall.SIGHUP)
		next := s.waitPIDFileNames(func(pid int) bool { return pid != old }, 10*time.Second)
		s.signal(next, syscall.SIGHUP)
		sent := time.Now()
		v := s.waitVerdicts(next, 1)[0]
		exit := s.waitLog(10*time.Second, byPID(old, "exiting"))
		if v.str("msg") != msgUpgraded {
			t.Fatalf("round %d: SIGHUP to %d (sent %s, its parent exited %s): %s: %s", round+1, next,
				sent.UTC().Format("15:04:05.000"), exit.str("ts"), v.str("msg"), v.str("error"))
		}
		t.Logf("round %d: SIGHUP to %d performed; its parent exited %v after it was sent", round+1, next,
			logTime(t, exit).Sub(sent).Round(time.Millisecond))
		s.waitPIDFileNames(func(pid int) bool { return pid != old && pid != next }, 10*time.Second)
		waitGone(t, old, 10*time.Second, "the old process")
		waitGone(t, next, 15*time.Second, "the replaced new process")
	}
	s.waitProgress(2000)
	sum := load.stop()
	t.Logf("load: %+v", sum)
	if sum.Errors != 0 || sum.Goaways != 0 || sum.Acked != sum.Sent {
		t.Fatalf("clients noticed the upgrades: %+v", sum)
	}
	s.stopAll()
	keys, _ := spoolKeys(t, s.spool)
	exactlyOnce(t, keys, load.acked())
}

// onlyServing checks the end state of a server tree: exactly one hawk process, the
// one the PID file names, and it welcomes agents with version.
func (s *server) onlyServing(t *testing.T, version string) int {
	t.Helper()
	var procs []int
	testutil.Eventually(t, 10*time.Second, func() bool {
		procs = s.processes()
		return len(procs) == 1 && procs[0] == s.pid()
	}, "exactly one hawk process, the one the PID file names (processes %v, PID file %d)", procs, s.pid())
	if v := s.welcomeVersion(t, s.addr()); v != version {
		t.Fatalf("the serving process answers WELCOME version %q, want %q", v, version)
	}
	return procs[0]
}

// 20 SIGHUPs in a burst: one upgrade happens, every other SIGHUP is refused (not
// queued, not crashing anything), and the tree ends with exactly one process,
// the new one, serving; the clients notice nothing.
func TestSighupBurst(t *testing.T) {
	// The burst must find the old process draining: without a handoff its drain
	// lasts drain.spread; with one it exits within milliseconds.
	s := startServer(t, bin.serverV1, "-upgrade.handoff=false")
	addr := s.addr()
	load := startLoad(t, addr, "-c", "50", "-w", "4", "-s", "128", "-rate", "5000", "-d", "10m")
	s.waitProgress(500)
	old := s.pid()
	install(t, bin.serverV2, s.binary)
	// 5ms apart, so that most arrive while the upgrade runs or the old process
	// drains, rather than merging into one pending signal.
	for range 20 {
		s.signal(old, syscall.SIGHUP)
		time.Sleep(5 * time.Millisecond)
	}
	s.waitLog(10*time.Second, byPID(old, "upgrade succeeded: new process is ready; draining this one"))
	waitGone(t, old, 15*time.Second, "the old process")
	if err := <-s.waitErr; err != nil {
		t.Fatalf("old process exited with %v, want 0", err)
	}
	s.waitErr <- nil
	newPID := s.onlyServing(t, "v2")
	succeeded := s.findLogs(func(l logLine) bool {
		return l.str("msg") == "upgrade succeeded: new process is ready; draining this one"
	})
	failed := s.findLogs(func(l logLine) bool { return l.str("msg") == "upgrade failed: this process keeps serving" })
	refused := s.findLogs(func(l logLine) bool { return l.str("msg") == "upgrade refused" })
	t.Logf("20 SIGHUPs: %d upgrade, %d refused, %d failed; now serving: %d", len(succeeded), len(refused), len(failed), newPID)
	if len(succeeded) != 1 || len(failed) != 0 || len(refused) == 0 {
		t.Fatalf("%d upgrades succeeded, %d failed, %d refused: want exactly one success and the other SIGHUPs refused", len(succeeded), len(failed), len(refused))
	}
	s.waitProgress(500)
	sum := load.stop()
	if sum.Errors != 0 || sum.ConnectErrs != 0 || sum.Nacked != 0 || sum.Acked != sum.Sent {
		t.Fatalf("clients noticed the SIGHUP burst: %+v", sum)
	}
	acked := load.acked()
	s.stopAll()
	checkSpool(t, spoolRecords(t, s.spool), acked, true)
}

// SIGHUP, then SIGTERM while the new binary is still starting: a stop during an
// upgrade stops the whole service. The upgrade is abandoned (the half-started
// child killed, no orphan left) and logged as such, not as a failure that leaves
// this process serving; the old process drains and exits 0, and everything acked
// is on disk.
func TestSigtermDuringUpgrade(t *testing.T) {
	s := startServer(t, bin.serverV1, "-drain.timeout=2s")
	addr := s.addr()
	load := startLoad(t, addr, "-c", "20", "-w", "4", "-s", "128", "-rate", "2000", "-d", "10m", "-drain-timeout", "1s")
	s.waitProgress(300)
	old := s.pid()
	// A new binary slow to start: it becomes the real one after 2s.
	installScript(t, s.binary, "sleep 2; exec "+bin.serverV2+` "$@"`)
	s.signal(old, syscall.SIGHUP)
	s.waitLog(5*time.Second, byPID(old, "upgrade requested (SIGHUP): starting the new binary"))
	var child []int
	testutil.Eventually(t, 5*time.Second, func() bool { child = childrenOf(old); return len(child) == 1 }, "the new binary's process")
	s.signal(old, syscall.SIGTERM)
	select {
	case err := <-s.waitErr:
		s.waitErr <- err
		if err != nil {
			t.Fatalf("exit: %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the old process still runs 10s after SIGTERM; log:\n%s", s.logTextDump())
	}
	exit := s.waitLog(5*time.Second, byPID(old, "exiting"))
	if exit.str("reason") != "shutdown" {
		t.Fatalf("exiting with reason %q, want shutdown", exit.str("reason"))
	}
	waitGone(t, child[0], 5*time.Second, "the half-started new binary")
	// Nothing of the tree is left: no hawk process, no upgrade that went through.
	if procs := s.processes(); len(procs) != 0 {
		t.Fatalf("hawk processes %v still run after the shutdown", procs)
	}
	if ok := s.findLogs(func(l logLine) bool {
		return l.str("msg") == "upgrade succeeded: new process is ready; draining this one"
	}); len(ok) != 0 {
		t.Fatalf("the upgrade went through after SIGTERM: %v", ok)
	}
	// The upgrade ended as abandoned (the process is stopping), not as a failure.
	s.waitLog(5*time.Second, byPID(old, "upgrade abandoned: a stop signal came while it ran; the new process was stopped and this one is shutting down"))
	if f := s.findLogs(byPID(old, "upgrade failed: this process keeps serving")); len(f) != 0 {
		t.Fatalf("a stopping process logged %v", f)
	}
	sum := load.stop()
	t.Logf("load across the shutdown: %+v", sum)
	checkCleanSpool(t, s.spool, load.acked(), false)
}

// Signals hawk does not act on, and SIGUSR1 with nothing to reload, in bursts:
// the same process keeps serving and its clients notice nothing.
func TestUnhandledSignalsIgnored(t *testing.T) {
	s := startServer(t, bin.serverV1)
	addr := s.addr()
	load := startLoad(t, addr, "-c", "20", "-w", "4", "-s", "128", "-rate", "2000", "-d", "10m")
	s.waitProgress(300)
	pid := s.pid()
	// hawk does not use SIGUSR2 (nginx and HAProxy upgrade or reload on it): it must
	// not stop the process.
	sigs := []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGURG, syscall.SIGCHLD, syscall.SIGPIPE, syscall.SIGCONT}
	for range 5 {
		for _, sig := range sigs {
			s.signal(pid, sig)
		}
	}
	s.waitLog(10*time.Second, byPID(pid, "config reload: no changes"))
	s.waitProgress(500)
	if got := s.onlyServing(t, "v1"); got != pid {
		t.Fatalf("serving process %d, want the original %d", got, pid)
	}
	sum := load.stop()
	if sum.Errors != 0 || sum.Reconnects != 0 || sum.Acked != sum.Sent {
		t.Fatalf("clients noticed the signals: %+v", sum)
	}
}

// SIGHUP and SIGTERM back to back with a real new binary: a stop during an upgrade
// stops the whole service, whichever wins. Either the upgrade was abandoned (the
// new process killed while starting), or it went through and the stop was handed
// to the new process, or the stop came first and the upgrade was refused; each is
// logged, nothing of the tree runs at the end, the
// old process exits 0, and everything acked is on disk.
func TestSighupThenSigtermRace(t *testing.T) {
	s := startServer(t, bin.serverV1, "-drain.timeout=2s")
	addr := s.addr()
	load := startLoad(t, addr, "-c", "20", "-w", "4", "-s", "128", "-rate", "2000", "-d", "10m", "-drain-timeout", "1s")
	s.waitProgress(300)
	old := s.pid()
	install(t, bin.serverV2, s.binary)
	s.signal(old, syscall.SIGHUP)
	s.signal(old, syscall.SIGTERM)
	select {
	case err := <-s.waitErr:
		s.waitErr <- err
		if err != nil {
			t.Fatalf("old process exit: %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the old process still runs 10s after SIGTERM; log:\n%s", s.logTextDump())
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return len(s.processes()) == 0 },
		"no hawk process after a stop during an upgrade (left: %v)", s.processes())
	const (
		succeeded = "upgrade succeeded: new process is ready; draining this one"
		abandoned = "upgrade abandoned: a stop signal came while it ran; the new process was stopped and this one is shutting down"
		refused   = "upgrade refused"
	)
	// The two signals reach the process's signal handling in either order (the
	// runtime delivers them to separate channels): the upgrade went through, was
	// abandoned when the stop came while it ran, or was refused because the stop
	// had already begun the drain.
	verdict := s.waitLog(5*time.Second, func(l logLine) bool {
		m := l.str("msg")
		return int(l.num("pid")) == old && (m == succeeded || m == abandoned || m == refused)
	})
	upgraded := verdict.str("msg") == succeeded
	switch verdict.str("msg") {
	case succeeded:
		s.waitLog(5*time.Second, byPID(old, "stop signal during an upgrade: handed to the new process, which stops too; this one keeps draining"))
		exit := s.waitLog(5*time.Second, byPID(old, "exiting"))
		if exit.str("reason") != "upgrade" {
			t.Fatalf("a replaced process exited with reason %q, want upgrade", exit.str("reason"))
		}
	case refused:
		if !strings.Contains(verdict.str("error"), "draining") {
			t.Fatalf("the upgrade was refused for %q, want: the process is draining", verdict.str("error"))
		}
		if exit := s.waitLog(5*time.Second, byPID(old, "exiting")); exit.str("reason") != "shutdown" {
			t.Fatalf("the process exited with reason %q, want shutdown", exit.str("reason"))
		}
	}
	sum := load.stop()
	t.Logf("upgrade went through: %v; load: %+v", upgraded, sum)
	acked := load.acked()
	s.stopAll()
	checkSpool(t, readSpool(t, s.spool).records, acked, false)
}

// A stop that reaches the old process after the upgrade won (it drains, held open
// by a client) is handed to the new process: the whole service stops, and the
// logs say so.
func TestSigtermToOldAfterUpgradeWon(t *testing.T) {
	s := startServer(t, bin.serverV1, "-drain.timeout=5s", "-upgrade.handoff=false") // the held client must keep the old process draining
	held, err := dialProto(s.addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.hello("held", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	old := s.pid()
	install(t, bin.serverV2, s.binary)
	s.signal(old, syscall.SIGHUP)
	s.waitLog(10*time.Second, byPID(old, "drain started"))
	var child []int
	testutil.Eventually(t, 5*time.Second, func() bool { child = childrenOf(old); return len(child) == 1 }, "the new process")
	s.signal(old, syscall.SIGTERM)
	s.waitLog(5*time.Second, func(l logLine) bool {
		return int(l.num("pid")) == old && l.str("msg") == "stop signal during an upgrade: handed to the new process, which stops too; this one keeps draining" &&
			int(l.num("new_pid")) == child[0]
	})
	exit := s.waitLog(10*time.Second, byPID(child[0], "exiting"))
	if exit.str("reason") != "shutdown" {
		t.Fatalf("the new process exited with reason %q, want shutdown", exit.str("reason"))
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return len(s.processes()) == 0 },
		"no hawk process after a stop handed over (left: %v)", s.processes())
}
