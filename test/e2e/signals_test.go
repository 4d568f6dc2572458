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
	load := startLoad(t, addr, "-c", "50", "-w", "4", "-s", "128", "-rate", "5000", "-d", "60s")
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

// SIGHUP, then SIGTERM while the new binary is still starting: the upgrade is
// abandoned (the half-started child killed, no orphan left), the old process
// drains and exits 0, and everything acked is on disk.
func TestSigtermDuringUpgrade(t *testing.T) {
	s := startServer(t, bin.serverV1, "-drain.timeout=2s")
	addr := s.addr()
	load := startLoad(t, addr, "-c", "20", "-w", "4", "-s", "128", "-rate", "2000", "-d", "60s", "-drain-timeout", "1s")
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
	// The upgrade ended as a refusal (the process is stopping), not as a failure.
	s.waitLog(5*time.Second, func(l logLine) bool {
		return int(l.num("pid")) == old && l.str("msg") == "upgrade refused" && strings.Contains(l.str("error"), "shutting down")
	})
	sum := load.stop()
	t.Logf("load across the shutdown: %+v", sum)
	sp := readSpool(t, s.spool)
	if len(sp.torn) > 0 {
		t.Errorf("torn lines after a clean shutdown: %v", sp.torn)
	}
	checkSpool(t, sp.records, load.acked(), false)
}

// Signals hawk does not act on, and SIGUSR1 with nothing to reload, in bursts:
// the same process keeps serving and its clients notice nothing.
func TestUnhandledSignalsIgnored(t *testing.T) {
	s := startServer(t, bin.serverV1)
	addr := s.addr()
	load := startLoad(t, addr, "-c", "20", "-w", "4", "-s", "128", "-rate", "2000", "-d", "60s")
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

// SIGHUP and SIGTERM back to back with a real new binary: whichever wins, the tree
// ends consistent: either the upgrade went through and exactly the new process
// serves, or it was abandoned and nothing of the tree runs; the old process exits
// 0 either way and everything acked is on disk.
func TestSighupThenSigtermRace(t *testing.T) {
	s := startServer(t, bin.serverV1, "-drain.timeout=2s")
	addr := s.addr()
	load := startLoad(t, addr, "-c", "20", "-w", "4", "-s", "128", "-rate", "2000", "-d", "60s", "-drain-timeout", "1s")
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
	upgraded := len(s.findLogs(byPID(old, "upgrade succeeded: new process is ready; draining this one"))) == 1
	if upgraded {
		s.onlyServing(t, "v2")
	} else {
		testutil.Eventually(t, 5*time.Second, func() bool { return len(s.processes()) == 0 },
			"no hawk process after an abandoned upgrade and a shutdown (left: %v)", s.processes())
	}
	t0 := time.Now()
	sum := load.stop()
	t.Logf("upgrade went through: %v; load: %+v (stop took %s)", upgraded, sum, time.Since(t0))
	if upgraded && (sum.Errors != 0 || sum.Acked != sum.Sent) {
		t.Fatalf("clients lost reports although a new process serves: %+v", sum)
	}
	acked := load.acked()
	s.stopAll()
	checkSpool(t, readSpool(t, s.spool).records, acked, false)
}
