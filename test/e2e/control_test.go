package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// fakeSystemd is a NOTIFY_SOCKET: it records every datagram, as systemd would
// receive them from the unit's processes (NotifyAccess=all).
type fakeSystemd struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	f := &fakeSystemd{path: filepath.Join(t.TempDir(), "notify.sock")}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: f.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.msgs = append(f.msgs, string(buf[:n]))
			f.mu.Unlock()
		}
	}()
	t.Setenv("NOTIFY_SOCKET", f.path)
	return f
}

func (f *fakeSystemd) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.msgs...)
}

// index is the position of the first message at or after from containing all of
// want, or -1.
func (f *fakeSystemd) index(from int, want ...string) int {
	msgs := f.all()
	for i := from; i < len(msgs); i++ {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(msgs[i], w)
		}
		if ok {
			return i
		}
	}
	return -1
}

func (f *fakeSystemd) wait(t *testing.T, from int, want ...string) int {
	t.Helper()
	i := -1
	testutil.Eventually(t, 15*time.Second, func() bool { i = f.index(from, want...); return i >= 0 },
		"a notification with %q after #%d; got %q", want, from, f)
	return i
}

func (f *fakeSystemd) String() string { return strings.Join(f.all(), " | ") }

// hawkCmd runs the hawk CLI (the v1 binary: any build talks to any server).
func hawkCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin.serverV1, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("hawk %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// TestControlUpgradeAndNotify: hawk upgrade waits for the verdict and exits 0 or
// 1 for each kind of outcome; systemd hears READY=1 from each process, no
// MAINPID= until the old process has exited (then the new one sends it), and
// and STOPPING=1 only from a stop.
func TestControlUpgradeAndNotify(t *testing.T) {
	sd := newFakeSystemd(t)
	sock := filepath.Join(t.TempDir(), "control.sock")
	// Without the handoff, so that the old process drains long enough to look at
	// what systemd sees meanwhile (with it, the same code runs, for milliseconds).
	s := startServer(t, bin.serverV1, "-control.socket="+sock, "-upgrade.timeout=3s", "-upgrade.handoff=false")
	first := s.cmd.Process.Pid
	admin := s.adminAddr()
	ready1 := sd.wait(t, 0, "READY=1", "STATUS=serving 0 connections")
	if strings.Contains(sd.all()[ready1], "MAINPID") {
		t.Errorf("the first process named a MAINPID: %q", sd.all()[ready1])
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	out, errOut, code := hawkCmd(t, "status", "-socket", sock)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("pid %d\n", first)) || !strings.Contains(out, "generation 1\n") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}

	// Each failure kind: exit 1, the reason, the old process serving on and named
	// the main process again.
	for _, f := range []struct{ name, script, want string }{
		{"exits 1", "exit 1", "exit status 1"},
		{"times out", "exec sleep 30", "timed out"},
		{"missing", "", "no such file"},
	} {
		if f.script == "" {
			os.Remove(s.binary)
		} else {
			installScript(t, s.binary, f.script)
		}
		mark := len(sd.all())
		out, errOut, code := hawkCmd(t, "upgrade", "-socket", sock)
		if code != 1 || !strings.Contains(errOut, "upgrade failed: ") || !strings.Contains(errOut, f.want) {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want 1 and %q", f.name, code, out, errOut, f.want)
		}
		sd.wait(t, mark, "STATUS=serving; upgrade failed")
		if got := s.pid(); got != first {
			t.Fatalf("%s: PID file names %d, want %d", f.name, got, first)
		}
	}
	if got := metric(t, admin, `hawk_upgrades_total{result="failure"}`); got != 3 {
		t.Fatalf("failures counted: %v, want 3", got)
	}

	// A client that ignores GOAWAY holds the old process's drain open.
	install(t, bin.serverV2, s.binary)
	held, err := dialProto(s.addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.hello("held", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// hawk upgrade prints the verdict as soon as the new process is ready, then
	// waits for the old one to exit (what ExecReload= needs).
	mark := len(sd.all())
	var upOut, upErr bytes.Buffer
	up := exec.Command(bin.serverV1, "upgrade", "-socket", sock)
	up.Stdout, up.Stderr = &upOut, &upErr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	upDone := make(chan error, 1)
	go func() { upDone <- up.Wait() }()
	t.Cleanup(func() { up.Process.Kill() })
	verdict := s.waitLog(10*time.Second, func(l logLine) bool {
		return int(l.num("pid")) == first && strings.HasPrefix(l.str("msg"), "upgrade succeeded: new pid ")
	}).str("msg")
	if !strings.HasSuffix(verdict, "version v2, generation 2") {
		t.Fatalf("verdict %q", verdict)
	}
	var second int
	fmt.Sscanf(strings.TrimPrefix(verdict, "upgrade succeeded: new pid "), "%d", &second)
	if second == first || !alive(second) {
		t.Fatalf("new pid %d (first %d)", second, first)
	}
	sd.wait(t, mark, "READY=1", "generation 2")
	// Under systemd the old process stays the main process while it drains: the
	// PID file still names it, and no MAINPID= was sent.
	if got := s.pid(); got != first {
		t.Fatalf("PID file names %d while the old process %d drains; want the old one", got, first)
	}
	if i := sd.index(0, "MAINPID="); i >= 0 {
		t.Fatalf("MAINPID= sent (#%d): %s", i, sd)
	}
	// The new process reports the upgrade and its generation (the old one's
	// metrics leave with it).
	if got := metric(t, admin, `hawk_upgrades_total{result="success"}`); got != 1 {
		t.Errorf(`hawk_upgrades_total{result="success"} = %v on the new process, want 1`, got)
	}
	if got := metric(t, admin, `hawk_generation`); got != 2 {
		t.Errorf("hawk_generation = %v, want 2", got)
	}

	// A second upgrade while the old process drains: refused, and said so.
	out, errOut, code = hawkCmd(t, "upgrade", "-socket", sock)
	if code != 1 || !strings.Contains(errOut, "upgrade refused: ") || !strings.Contains(errOut, "still draining") {
		t.Fatalf("upgrade during the drain: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The held client leaves: the drain ends, the old process exits, and hawk
	// upgrade with it.
	held.Close()
	select {
	case err := <-upDone:
		if err != nil {
			t.Fatalf("hawk upgrade: %v\n%s%s", err, upOut.String(), upErr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("hawk upgrade still waits 15s after the last client left:\n%s", upOut.String())
	}
	if o := upOut.String(); !strings.HasPrefix(o, verdict+"\n") || !strings.Contains(o, fmt.Sprintf("the previous process (pid %d) exited after ", first)) {
		t.Fatalf("hawk upgrade printed %q", o)
	}
	waitGone(t, first, 15*time.Second, "the old process")
	s.waitLog(5*time.Second, func(l logLine) bool {
		return int(l.num("pid")) == first && l.str("msg") == "PID file written" && int(l.num("names_pid")) == second
	})
	// Then the new process names itself, reparented by now.
	sd.wait(t, mark, fmt.Sprintf("MAINPID=%d", second))
	s.waitLog(5*time.Second, func(l logLine) bool {
		return int(l.num("pid")) == second && l.str("msg") == "PID file written" && int(l.num("names_pid")) == second
	})
	if got := s.pid(); got != second {
		t.Fatalf("PID file names %d after the old process exited; want the new one, %d", got, second)
	}
	if i := sd.index(0, "STOPPING=1"); i >= 0 {
		t.Fatalf("the old process of an upgrade sent STOPPING=1 (#%d): %s", i, sd)
	}
	out, _, _ = hawkCmd(t, "status", "-socket", sock) // the last attempt was the refused one
	if !strings.Contains(out, fmt.Sprintf("pid %d\n", second)) || !strings.Contains(out, "still draining") {
		t.Fatalf("status after the upgrade:\n%s", out)
	}

	// A stop: STOPPING=1 and time asked for while the drain runs; a second SIGTERM
	// ends the drain held open by a client at once.
	held2, err := dialProto(s.addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held2.Close()
	if _, err := held2.hello("held2", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	mark = len(sd.all())
	s.signal(second, syscall.SIGTERM)
	sd.wait(t, mark, "STOPPING=1")
	sd.wait(t, mark, "EXTEND_TIMEOUT_USEC=")
	s.waitLog(10*time.Second, byPID(second, "drain started"))
	s.signal(second, syscall.SIGTERM)
	s.waitLog(10*time.Second, byPID(second, "second stop signal: ending the drain now; connections still open are closed and their unacknowledged reports are the clients' to resend"))
	waitGone(t, second, 10*time.Second, "the stopped process")
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket left behind after a stop: %v", err)
	}
}

// TestControlReload: hawk reload prints the changed keys, or the rejection with
// exit 1.
func TestControlReload(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "control.sock")
	s := startServer(t, bin.serverV1, "-control.socket="+sock)
	base, err := os.ReadFile(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(base), "format: json", "format: console", 1)
	if err := os.WriteFile(s.cfgPath, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := hawkCmd(t, "reload", "-socket", sock)
	if code != 1 || !strings.Contains(errOut, "config reload rejected") || !strings.Contains(errOut, "log.format: requires an upgrade") {
		t.Fatalf("rejected reload: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	good := strings.Replace(string(base), "level: info", "level: debug", 1)
	if err := os.WriteFile(s.cfgPath, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = hawkCmd(t, "reload", "-socket", sock)
	if code != 0 {
		t.Fatalf("reload: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The file watch may have applied the save first; then this reload finds no
	// change. Either way log.level changed exactly once.
	if !strings.Contains(out, "log.level: info -> debug") && !strings.Contains(out, "no changes") {
		t.Fatalf("reload printed %q", out)
	}
	s.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "config changed" && l.str("key") == "log.level" })
	if n := len(s.findLogs(func(l logLine) bool { return l.str("msg") == "config changed" && l.str("key") == "log.level" })); n != 1 {
		t.Fatalf("log.level changed %d times", n)
	}
}

// An upgrade that moves the listener says so: the new process opened the new
// address afresh (inherited: false) and warns that the old socket closes with the
// old process's drain.
func TestUpgradeMovingListenerIsLogged(t *testing.T) {
	s := startServer(t, bin.serverV1)
	old := s.pid()
	raw, err := os.ReadFile(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(string(raw), `listen: "127.0.0.1:0"`, `listen: "127.0.0.2:0"`, 1)
	if moved == string(raw) {
		t.Fatal("test config has no listen line to move")
	}
	if err := os.WriteFile(s.cfgPath, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	s.waitLog(10*time.Second, func(l logLine) bool {
		return l.str("msg") == "config reload rejected; the running configuration is unchanged" && strings.Contains(l.str("error"), "listen: requires an upgrade")
	})
	install(t, bin.serverV2, s.binary)
	s.signal(old, syscall.SIGHUP)
	l := s.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "listening" && int(l.num("pid")) != old })
	if inh, _ := l["inherited"].(bool); inh || !strings.HasPrefix(l.str("addr"), "127.0.0.2:") {
		t.Fatalf("new process: listening %v", l)
	}
	s.waitLog(5*time.Second, func(l logLine) bool {
		return int(l.num("pid")) != old && strings.HasPrefix(l.str("msg"), "listen is not the previous process's protocol address: opened it afresh")
	})
	// The old process said so before and after.
	for _, prefix := range []string{"upgrade moves the protocol listener", "upgrade moved the protocol listener"} {
		s.waitLog(5*time.Second, func(l logLine) bool {
			return int(l.num("pid")) == old && strings.HasPrefix(l.str("msg"), prefix) && l.str("moved") == "127.0.0.1:0 -> 127.0.0.2:0"
		})
	}
}
