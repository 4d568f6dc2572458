package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/fdtable"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/spool"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// spoolLines counts the records written so far.
func (s *server) spoolLines() int {
	segs, _ := spool.Segments(s.spool)
	n := 0
	for _, seg := range segs {
		b, _ := os.ReadFile(filepath.Join(s.spool, seg.Name))
		n += bytes.Count(b, []byte("\n"))
	}
	return n
}

// waitProgress waits until at least n more records than now are in the spool: the
// load is flowing.
func (s *server) waitProgress(n int) {
	s.t.Helper()
	base := s.spoolLines()
	testutil.Eventually(s.t, 20*time.Second, func() bool { return s.spoolLines() >= base+n }, "%d more records in the spool", n)
}

// upgradeTo installs binary at the server's path, sends SIGHUP to the serving
// process, and waits for the new process to be ready and the old one to exit. It
// returns the new PID and the SIGHUP-to-ready time the old process logged.
func (s *server) upgradeTo(binary string) (newPID int, sighupToReady time.Duration) {
	s.t.Helper()
	old := s.pid()
	install(s.t, binary, s.binary)
	s.signal(old, syscall.SIGHUP)
	l := s.waitLog(10*time.Second, func(l logLine) bool {
		return int(l.num("pid")) == old && l.str("msg") == "upgrade succeeded: new process is ready; draining this one"
	})
	sighupToReady = time.Duration(l.num("sighup_to_ready") * float64(time.Second))
	testutil.Eventually(s.t, 5*time.Second, func() bool { p := s.pid(); return p != old && alive(p) }, "the PID file to name the new process")
	newPID = s.pid()
	testutil.Eventually(s.t, 10*time.Second, func() bool { return !alive(old) }, "the old process %d to exit after its drain", old)
	return newPID, sighupToReady
}

// welcomeVersion connects a raw peer and returns the version its WELCOME names.
func (s *server) welcomeVersion(t *testing.T, addr string) string {
	t.Helper()
	p := testutil.Dial(t, addr)
	defer p.Conn.Close()
	p.Write(protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "e2e-probe"}))
	f, err := p.Next(5 * time.Second)
	if err != nil || f.Type != protocol.TypeWelcome {
		t.Fatalf("probe: got %v, %v; want WELCOME; server log:\n%s", f.Type, err, s.logTextDump())
	}
	var w protocol.Welcome
	if err := protocol.ParseJSON(f, &w); err != nil {
		t.Fatal(err)
	}
	return w.ServerVersion
}

// 1. Upgrade under load: nobody notices.
func TestUpgradeUnderLoad(t *testing.T) {
	// The GOAWAY migration (the handoff has its own test: handoff_conn_test.go).
	s := startServer(t, bin.serverV1, "-upgrade.handoff=false")
	addr := s.addr()
	if v := s.welcomeVersion(t, addr); v != "v1" {
		t.Fatalf("WELCOME version %q, want v1", v)
	}
	load := startLoad(t, addr, "-c", "200", "-w", "8", "-s", "256", "-rate", "20000", "-d", "10m")
	s.waitProgress(5000)
	oldPID := s.cmd.Process.Pid
	newPID, ready := s.upgradeTo(bin.serverV2)
	if newPID == oldPID {
		t.Fatal("PID file still names the old process")
	}
	if v := s.welcomeVersion(t, addr); v != "v2" {
		t.Fatalf("after the upgrade WELCOME version %q, want v2", v)
	}
	if err := <-s.waitErr; err != nil {
		t.Fatalf("old process exited with %v, want 0", err)
	}
	s.waitErr <- nil // keep stopAll's wait satisfied
	exitLog := s.waitLog(5*time.Second, func(l logLine) bool { return int(l.num("pid")) == oldPID && l.str("msg") == "exiting" })
	s.waitProgress(5000) // the new process carries the load
	sum := load.stop()
	t.Logf("upgrade: sighup_to_ready=%s drain=%.3fs goaways=%v reconnects=%d summary=%+v",
		ready, exitLog.num("drain"), exitLog["goaways"], sum.Reconnects, sum)
	if sum.Errors != 0 || sum.DialFailures != 0 || sum.Nacked != 0 {
		t.Fatalf("clients noticed the upgrade: %+v\nload stderr:\n%s\nserver log:\n%s", sum, load.stderr, s.logTextDump())
	}
	if sum.Acked != sum.Sent || sum.Acked == 0 {
		t.Fatalf("sent %d, acked %d: every report sent must be acked", sum.Sent, sum.Acked)
	}
	if sum.Goaways < 200 {
		t.Fatalf("%d GOAWAYs seen by 200 clients", sum.Goaways)
	}
	acked := load.acked()
	if int64(len(acked)) != sum.Acked {
		t.Fatalf("acked log has %d entries, summary says %d", len(acked), sum.Acked)
	}
	s.stopAll()
	checkSpool(t, spoolRecords(t, s.spool), acked, true)
}

// 2. Upgrades back to back: each SIGHUP goes to the new process as soon as the
// previous upgrade is complete (the old process has exited; that is when an upgrade
// is allowed again), under load from busy clients and from idle-ish ones that send
// a report every few seconds. Every SIGHUP is accepted, every client ends up
// connected to the last process, and nothing is lost.
func TestFiveUpgradesBackToBack(t *testing.T) {
	s := startServer(t, bin.serverV1)
	addr, admin := s.addr(), s.adminAddr()
	busy := startLoad(t, addr, "-c", "100", "-w", "4", "-s", "256", "-rate", "10000", "-d", "10m", "-id-prefix", "busy")
	// 50 clients, one report in flight each, 25 reports/s in all: each client is
	// idle for about 2s between reports, longer than an upgrade takes.
	idle := startLoad(t, addr, "-c", "50", "-w", "1", "-s", "64", "-rate", "25", "-d", "10m", "-id-prefix", "idle")
	testutil.Eventually(t, 10*time.Second, func() bool { return metric(t, admin, "hawk_connections") == 150 }, "150 clients connected")
	s.waitProgress(2000)
	versions := []string{bin.serverV2, bin.serverV1, bin.serverV2, bin.serverV1, bin.serverV2}
	names := []string{"v2", "v1", "v2", "v1", "v2"}
	var drains []string
	for i, v := range versions {
		exit := s.upgradeRightAway(v, i+1)
		drains = append(drains, fmt.Sprintf("%.2fs/%v cut", exit.num("drain"), exit["cut_at_deadline"]))
		// Every client moved by itself: none was still on the old process at its
		// drain deadline.
		if cut := exit.num("cut_at_deadline"); cut != 0 {
			t.Errorf("upgrade %d: %v clients still on the old process at its drain deadline (drain %v)", i+1, cut, exit["drain"])
		}
		if got := s.welcomeVersion(t, addr); got != names[i] {
			t.Fatalf("upgrade %d: WELCOME version %q, want %q", i+1, got, names[i])
		}
	}
	t.Logf("drains (duration/cut at deadline): %v", drains)
	if r := s.findLogs(func(l logLine) bool { return l.str("msg") == "upgrade refused" }); len(r) > 0 {
		t.Fatalf("%d SIGHUPs refused, first: %v", len(r), r[0])
	}
	// Every client ends connected to the last process.
	testutil.Eventually(t, 10*time.Second, func() bool { return metric(t, admin, "hawk_connections") == 150 },
		"all 150 clients connected to the last process")
	s.waitProgress(1000)
	acked := map[string]int{}
	for name, l := range map[string]*loadRun{"busy": busy, "idle": idle} {
		sum := l.stop()
		t.Logf("%s clients: %+v", name, sum)
		if sum.Errors != 0 || sum.ConnectErrs != 0 || sum.Nacked != 0 || sum.Acked != sum.Sent || sum.Acked == 0 {
			t.Errorf("%s clients noticed the upgrades: %+v", name, sum)
		}
		for k, n := range l.acked() {
			acked[k] += n
		}
	}
	s.stopAll()
	checkSpool(t, spoolRecords(t, s.spool), acked, true)
}

// What a process logs as the verdict of each upgrade request it was sent.
const (
	msgUpgraded = "upgrade succeeded: new process is ready; draining this one"
	msgRefused  = "upgrade refused"
	msgFailed   = "upgrade failed: this process keeps serving"
)

// waitVerdicts waits until pid has logged n upgrade verdicts and returns them.
func (s *server) waitVerdicts(pid, n int) []logLine {
	s.t.Helper()
	return s.waitLogs(func(l logLine) bool {
		m := l.str("msg")
		return int(l.num("pid")) == pid && (m == msgUpgraded || m == msgRefused || m == msgFailed)
	}, n)
}

// upgradeRightAway installs binary and sends SIGHUP to the serving process, which
// must accept it (a refusal or failure fails the test), then waits for the old
// process to exit and returns its "exiting" log line.
func (s *server) upgradeRightAway(binary string, n int) logLine {
	t := s.t
	t.Helper()
	old := s.pid()
	install(t, binary, s.binary)
	s.signal(old, syscall.SIGHUP)
	outcome := s.waitVerdicts(old, 1)[0]
	if outcome.str("msg") != msgUpgraded {
		t.Fatalf("upgrade %d: SIGHUP to %d right after the previous process exited: %s: %s\nlog:\n%s",
			n, old, outcome.str("msg"), outcome.str("error"), s.logTextDump())
	}
	waitGone(t, old, 15*time.Second, fmt.Sprintf("upgrade %d: the old process", n))
	return s.waitLog(5*time.Second, byPID(old, "exiting"))
}

// Agents that report rarely (idle between upgrades) follow back-to-back upgrades
// as promptly as busy ones: PROTOCOL.md 6.5 has a client open its new connection
// at once on GOAWAY, so every one leaves the old process within drain.spread, far
// inside drain.timeout. A reconnect delay that grows with each upgrade (a backoff
// kept across handoffs) makes them miss the deadline after a few upgrades: the old
// process then cuts them (cut_at_deadline > 0).
func TestIdleClientsFollowBackToBackUpgrades(t *testing.T) {
	s := startServer(t, bin.serverV1, "-drain.timeout=1s")
	addr, admin := s.addr(), s.adminAddr()
	idle := startLoad(t, addr, "-c", "30", "-w", "1", "-s", "64", "-rate", "10", "-d", "10m", "-id-prefix", "idle")
	testutil.Eventually(t, 10*time.Second, func() bool { return metric(t, admin, "hawk_connections") == 30 }, "30 clients connected")
	versions := []string{bin.serverV2, bin.serverV1}
	var drains []string
	for i := range 7 {
		exit := s.upgradeRightAway(versions[i%2], i+1)
		drains = append(drains, fmt.Sprintf("%.2fs/%v cut", exit.num("drain"), exit["cut_at_deadline"]))
		if cut := exit.num("cut_at_deadline"); cut != 0 {
			t.Errorf("upgrade %d: %v of 30 idle clients had not moved when the old process reached its 1s drain deadline (drain.spread 200ms); drains so far (duration/cut): %v",
				i+1, cut, drains)
			break
		}
	}
	t.Logf("drains (duration/cut at deadline): %v", drains)
	sum := idle.stop()
	if sum.Errors != 0 || sum.ConnectErrs != 0 || sum.Acked != sum.Sent {
		t.Errorf("idle clients lost reports: %+v", sum)
	}
}

// 3. Failed upgrades leave the old process serving the same clients; each failure
// is logged with its reason and counted, and a new binary that never becomes ready
// is killed.
func TestFailedUpgradesKeepServing(t *testing.T) {
	s := startServer(t, bin.serverV1, "-upgrade.timeout=1s", "-upgrade.handoff=false") // counts GOAWAYs
	addr, admin := s.addr(), s.adminAddr()
	pid := s.cmd.Process.Pid
	load := startLoad(t, addr, "-c", "50", "-w", "4", "-s", "128", "-rate", "5000", "-d", "10m")
	s.waitProgress(1000)

	failures := []struct {
		name   string
		setup  func()
		reason *regexp.Regexp // docs/OPERATIONS.md's table of reasons
	}{
		{"new binary exits at start", func() { installScript(t, s.binary, "echo 'simulated bad build' >&2; exit 3") },
			regexp.MustCompile(`^child pid=\d+ exited: exit status 3$`)},
		{"new binary never becomes ready", func() { installScript(t, s.binary, "exec sleep 30") },
			regexp.MustCompile(`^new child pid=(\d+) timed out$`)},
		{"binary file missing", func() { os.Remove(s.binary) },
			regexp.MustCompile(`^can't start child: .*no such file or directory`)},
	}
	for i, f := range failures {
		f.setup()
		s.signal(pid, syscall.SIGHUP)
		failed := func(l logLine) bool {
			return int(l.num("pid")) == pid && l.str("msg") == "upgrade failed: this process keeps serving" && l.str("level") == "error"
		}
		testutil.Eventually(t, 15*time.Second, func() bool { return len(s.findLogs(failed)) == i+1 },
			"%s: failure line %d; log:\n%s", f.name, i+1, s.logTextDump())
		reason := s.findLogs(failed)[i].str("error")
		m := f.reason.FindStringSubmatch(strings.TrimPrefix(reason, "upgrade: "))
		if m == nil {
			t.Fatalf("%s: reason %q, want it to match %s", f.name, reason, f.reason)
		}
		if len(m) > 1 { // the hung child: killed at upgrade.timeout, not left behind
			child, _ := strconv.Atoi(m[1])
			waitGone(t, child, 5*time.Second, f.name+": the child that never became ready")
		}
		if got := metric(t, admin, `hawk_upgrades_total{result="failure"}`); got != float64(i+1) {
			t.Fatalf("%s: hawk_upgrades_total{result=\"failure\"} = %v, want %d", f.name, got, i+1)
		}
		if got := metric(t, admin, `hawk_upgrades_total{result="success"}`); got != 0 {
			t.Fatalf("%s: hawk_upgrades_total{result=\"success\"} = %v, want 0", f.name, got)
		}
		if s.pid() != pid || !alive(pid) {
			t.Fatalf("%s: serving PID %d, want the old process %d still serving", f.name, s.pid(), pid)
		}
		if procs := s.processes(); len(procs) != 1 || procs[0] != pid {
			t.Fatalf("%s: hawk processes %v, want only %d", f.name, procs, pid)
		}
		s.waitProgress(500)
	}
	// A later good upgrade still works.
	s.upgradeTo(bin.serverV2)
	if v := s.welcomeVersion(t, addr); v != "v2" {
		t.Fatalf("WELCOME version %q after the good upgrade, want v2", v)
	}
	sum := load.stop()
	if sum.Errors != 0 || sum.DialFailures != 0 || sum.Acked != sum.Sent {
		t.Fatalf("clients noticed: %+v", sum)
	}
	// Before the good upgrade, nobody was moved: only the one GOAWAY round.
	if sum.Goaways != 50 {
		t.Fatalf("%d GOAWAYs, want 50 (only the good upgrade moves clients)", sum.Goaways)
	}
	acked := load.acked()
	s.stopAll()
	checkSpool(t, spoolRecords(t, s.spool), acked, true)
}

// 4. SIGTERM under load, then start again (systemctl restart): the process drains
// and exits 0 within the drain timeout while clients keep sending; every acked
// report is on disk; and no report fails: what the drain could not answer, the
// clients resend to the restarted server.
func TestSigtermDrainsUnderLoad(t *testing.T) {
	s := startServer(t, bin.serverV1, "-drain.timeout=2s", testutil.StableListen(t)) // started again on addr below
	addr := s.addr()
	pid := s.cmd.Process.Pid
	load := startLoad(t, addr, "-c", "100", "-w", "8", "-s", "256", "-rate", "20000", "-d", "10m")
	s.waitProgress(3000)
	start := time.Now()
	s.signal(pid, syscall.SIGTERM)
	select {
	case err := <-s.waitErr:
		s.waitErr <- err
		if err != nil {
			t.Fatalf("exit: %v, want 0", err)
		}
	case <-time.After(2*time.Second + 5*time.Second):
		t.Fatal("server still running long after drain.timeout")
	}
	took := time.Since(start)
	exit := s.waitLog(5*time.Second, byPID(pid, "exiting"))
	if exit.str("reason") != "shutdown" || exit.num("goaways") != 100 {
		t.Fatalf("exiting line %v: want reason shutdown and 100 GOAWAYs", exit)
	}
	drained := readSpool(t, s.spool)
	if len(drained.torn) > 0 {
		t.Errorf("torn lines after a drain: %v", drained.torn)
	}
	// Start again on the same address and spool: the clients come back.
	s2 := restartServer(t, s, "-listen="+addr)
	s2.waitProgress(2000)
	sum := load.stop()
	t.Logf("SIGTERM to exit: %s; exiting: drain=%vs goaways=%v cut=%v; load: %+v", took, exit["drain"], exit["goaways"], exit["cut_at_deadline"], sum)
	if sum.Errors != 0 || sum.ConnectErrs != 0 || sum.Nacked != 0 || sum.Acked != sum.Sent || sum.Acked == 0 {
		t.Fatalf("reports failed across the drain and restart: %+v\nload stderr:\n%s", sum, load.stderr)
	}
	s2.stopAll()
	checkCleanSpool(t, s.spool, load.acked(), false)
}

// 5. SIGKILL under load, three times, each time starting again on the same spool
// and address: the clients reconnect and resend by themselves (no report fails),
// and every report acked before or after a kill is on disk. A kill may tear the
// last line of a segment; the spool contract tells readers to ignore exactly that.
func TestSigkillThenRestart(t *testing.T) {
	s := startServer(t, bin.serverV1, testutil.StableListen(t)) // started again on addr below
	addr := s.addr()
	// The load generator keeps running across the kills: its clients reconnect
	// with backoff and resend what was not acked.
	load := startLoad(t, addr, "-c", "100", "-w", "8", "-s", "256", "-rate", "20000", "-d", "10m")
	s.waitProgress(3000)
	cur := s
	const rounds = 3
	for round := 1; round <= rounds; round++ {
		cur.signal(cur.cmd.Process.Pid, syscall.SIGKILL)
		err := <-cur.waitErr
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("round %d: after SIGKILL: %v", round, err)
		}
		cur.waitErr <- err
		// Same address, same spool.
		cur = restartServer(t, s, "-listen="+addr)
		// Every client is back before the next kill.
		admin := cur.adminAddr()
		testutil.Eventually(t, 15*time.Second, func() bool { return metric(t, admin, "hawk_connections") == 100 },
			"round %d: the 100 clients to reconnect", round)
		cur.waitProgress(2000)
	}
	sum := load.stop()
	t.Logf("%d kills: %+v", rounds, sum)
	if sum.Errors != 0 || sum.ConnectErrs != 0 || sum.Acked != sum.Sent || sum.Acked == 0 {
		t.Fatalf("reports failed across the kills (the clients must resend them): %+v\nload stderr:\n%s", sum, load.stderr)
	}
	if sum.Reconnects < rounds*100 {
		t.Fatalf("%d reconnects after %d kills of 100 clients' server", sum.Reconnects, rounds)
	}
	cur.stopAll()
	sp := readSpool(t, s.spool)
	if len(sp.torn) > rounds {
		t.Errorf("%d torn last lines after %d kills: %v", len(sp.torn), rounds, sp.torn)
	}
	t.Logf("spool: %d records, torn last lines ignored: %v", sp.lines, sp.torn)
	checkSpool(t, sp.records, load.acked(), false)
}

// restartServer starts the same binary, config and spool as s, as a new process tree.
func restartServer(t testing.TB, s *server, flags ...string) *server {
	t.Helper()
	n := &server{t: t, dir: s.dir, binary: s.binary, cfgPath: s.cfgPath, pidFile: s.pidFile, spool: s.spool, waitErr: make(chan error, 1)}
	n.launch(flags)
	return n
}

// 6. A client that never reads, and one that never closes, cannot hold the old
// process past drain.timeout.
func TestStubbornClientsCutAtDrainTimeout(t *testing.T) {
	s := startServer(t, bin.serverV1, "-drain.timeout=1s", "-limits.write_timeout=1s")
	addr := s.addr()
	neverCloses := testutil.Dial(t, addr)
	neverCloses.Hello("never-closes", "")
	neverReads := testutil.DialReadBuffer(t, addr, 4096)
	neverReads.Hello("never-reads", "")
	// Pings whose pongs it never reads, until the server's writes to it block.
	go func() {
		burst := bytes.Repeat(protocol.AppendFrame(nil, protocol.TypePing, 1, nil), 4096)
		for i := 0; i < 1000; i++ {
			neverReads.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := neverReads.Conn.Write(burst); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	s.signal(s.cmd.Process.Pid, syscall.SIGTERM)
	neverCloses.Expect(protocol.TypeGoaway)
	neverCloses.ExpectError(protocol.CodeDrainTimeout)
	select {
	case err := <-s.waitErr:
		s.waitErr <- err
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stubborn clients held the process past drain.timeout + write timeout")
	}
	t.Logf("exit %s after SIGTERM with stubborn clients", time.Since(start))
}

// A SIGHUP while the previous generation is still draining is refused, in either
// process, with a log line saying why, and the upgrade after the drain works.
func TestSighupDuringDrainRefused(t *testing.T) {
	// The stubborn client sends nothing: its heartbeat timeout must not come before
	// the drain deadline it is there to wait for.
	s := startServer(t, bin.serverV1, "-drain.timeout=3s", "-heartbeat.timeout=30s", "-upgrade.handoff=false") // a drain that lasts
	addr := s.addr()
	stubborn := testutil.Dial(t, addr) // keeps the old process draining until the deadline
	stubborn.Hello("stubborn", "")
	old := s.cmd.Process.Pid
	install(t, bin.serverV2, s.binary)
	s.signal(old, syscall.SIGHUP)
	s.waitLog(10*time.Second, func(l logLine) bool {
		return int(l.num("pid")) == old && l.str("msg") == "upgrade succeeded: new process is ready; draining this one"
	})
	stubborn.Expect(protocol.TypeGoaway)
	testutil.Eventually(t, 5*time.Second, func() bool { return s.pid() != old }, "the PID file to name the new process")
	next := s.pid()
	s.signal(next, syscall.SIGHUP)
	s.signal(old, syscall.SIGHUP)
	for _, pid := range []int{next, old} {
		s.waitLog(5*time.Second, func(l logLine) bool {
			return int(l.num("pid")) == pid && l.str("msg") == "upgrade refused" && l.str("level") == "warn"
		})
	}
	if !alive(old) || !alive(next) {
		t.Fatal("a refused upgrade ended a process")
	}
	// After the drain deadline the old process is gone and upgrades work again.
	stubborn.ExpectError(protocol.CodeDrainTimeout)
	testutil.Eventually(t, 10*time.Second, func() bool { return !alive(old) }, "the old process to exit at its drain deadline")
	s.upgradeTo(bin.serverV1)
	if v := s.welcomeVersion(t, addr); v != "v1" {
		t.Fatalf("version %q after the later upgrade", v)
	}
}

// procFDSize is a process's descriptor table size and its soft descriptor limit,
// as the kernel reports them.
func procFDSize(t *testing.T, pid int) (size, limit int) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^FDSize:\s+(\d+)`).FindSubmatch(status)
	l := regexp.MustCompile(`(?m)^Max open files\s+(\d+)`).FindSubmatch(limits)
	if m == nil || l == nil {
		t.Fatalf("no FDSize or open files limit for %d", pid)
	}
	size, _ = strconv.Atoi(string(m[1]))
	limit, _ = strconv.Atoi(string(l[1]))
	return size, limit
}

// The descriptor table holds fdtable.Want(limits.max_conns) descriptors (at most
// the limit) from the start, with an eventfd held at its top, and the new process of
// an upgrade has the room from its start (internal/fdtable).
func TestDescriptorTableReserved(t *testing.T) {
	const maxConns = 3000
	s := startServer(t, bin.serverV1, "-limits.max_conns="+strconv.Itoa(maxConns))
	pid := s.pid()
	_, limit := procFDSize(t, pid)
	want := min(fdtable.Want(maxConns), limit)
	testutil.Eventually(t, 10*time.Second, func() bool { n, _ := procFDSize(t, pid); return n >= want },
		"the descriptor table of %d to hold %d descriptors", pid, want)
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, want-1))
	if err != nil || link != "anon_inode:[eventfd]" {
		t.Fatalf("descriptor %d of %d: %q, %v; want the held eventfd", want-1, pid, link, err)
	}
	next, _ := s.upgradeTo(bin.serverV2)
	if n, _ := procFDSize(t, next); n < want {
		t.Fatalf("the new process's table holds %d descriptors, want at least %d", n, want)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", next, want-1))
		return err == nil && link == "anon_inode:[eventfd]"
	}, "the new process %d to hold descriptor %d", next, want-1)
	if w := s.warnings(5); strings.Contains(w, "descriptor") {
		t.Errorf("warnings about descriptors:\n%s", w)
	}
}
