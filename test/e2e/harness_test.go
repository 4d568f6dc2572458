// Package e2e builds the real binaries and runs them as an operator would: start,
// load, upgrade with SIGHUP, stop with SIGTERM, kill with SIGKILL. Every process a
// test starts is stopped when the test ends, and every port is chosen by the kernel.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// bin holds the binaries TestMain builds once for all tests.
var bin struct {
	dir      string
	serverV1 string
	serverV2 string
	client   string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hawk-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin.dir = dir
	bin.serverV1 = filepath.Join(dir, "hawk-v1")
	bin.serverV2 = filepath.Join(dir, "hawk-v2")
	bin.client = filepath.Join(dir, "hawk-client")
	builds := []struct{ out, pkg, version string }{
		{bin.serverV1, "../../cmd/server", "v1"},
		{bin.serverV2, "../../cmd/server", "v2"},
		{bin.client, "../../cmd/client", "e2e"},
	}
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-o", b.out, "-ldflags", "-X main.version="+b.version, b.pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: building %s: %v\n", b.pkg, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// install copies src to dst through a temporary file and a rename, the way a
// deployment replaces a running binary (writing over it in place would fail with
// ETXTBSY or corrupt the running process).
func install(t testing.TB, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// installScript puts a shell script at dst in place of the server binary, for
// upgrades that must fail.
func installScript(t testing.TB, dst, body string) {
	t.Helper()
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// logLine is one JSON log line of the server.
type logLine map[string]any

func (l logLine) str(k string) string { s, _ := l[k].(string); return s }
func (l logLine) num(k string) float64 {
	f, _ := l[k].(float64)
	return f
}

// server is a hawk process tree started by a test: the first process and every
// process that replaced it through an upgrade (they share stderr).
type server struct {
	t       testing.TB
	dir     string
	binary  string // the path the process was started as; upgrades re-exec it
	cfgPath string
	pidFile string
	spool   string
	cmd     *exec.Cmd
	waitErr chan error

	mu   sync.Mutex
	logs []logLine
	raw  bytes.Buffer
}

// serverConfig is the YAML the tests start servers with; tests change single keys
// with flags (every key is a flag), which upgrades pass on to the new process.
func serverConfig(dir string) string {
	return fmt.Sprintf(`listen: "127.0.0.1:0"
log:
  level: info
  format: json
spool:
  dir: %q
drain:
  timeout: 5s
  spread: 200ms
upgrade:
  pid_file: %q
  timeout: 5s
admin:
  addr: "127.0.0.1:0"
heartbeat:
  interval: 1s
`, filepath.Join(dir, "spool"), filepath.Join(dir, "hawk.pid"))
}

// startServer installs version (a built binary) as dir/hawk and runs it with the
// test configuration and flags.
func startServer(t testing.TB, version string, flags ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{t: t, dir: dir, binary: filepath.Join(dir, "hawk"), cfgPath: filepath.Join(dir, "hawk.yaml"),
		pidFile: filepath.Join(dir, "hawk.pid"), spool: filepath.Join(dir, "spool"), waitErr: make(chan error, 1)}
	install(t, version, s.binary)
	if err := os.WriteFile(s.cfgPath, []byte(serverConfig(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.launch(flags)
	return s
}

// launch starts the process with the server's config and flags and waits until it listens.
func (s *server) launch(flags []string) {
	t := s.t
	t.Helper()
	s.cmd = exec.Command(s.binary, append([]string{"-config", s.cfgPath}, flags...)...)
	s.cmd.Dir = s.dir
	// Our own pipe, not StderrPipe: Wait closes that one when the first process
	// exits, and the processes that replaced it share this stderr.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = w
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() { defer r.Close(); s.readLogs(r) }()
	go func() { s.waitErr <- s.cmd.Wait() }()
	t.Cleanup(s.stopAll)
	s.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "listening" && int(l.num("pid")) == s.cmd.Process.Pid })
}

func (s *server) readLogs(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var l logLine
		s.mu.Lock()
		s.raw.Write(line)
		s.raw.WriteByte('\n')
		if json.Unmarshal(line, &l) == nil {
			s.logs = append(s.logs, l)
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.logs = append(s.logs, logLine{"msg": "<stderr closed>"})
	s.mu.Unlock()
}

// waitLog waits for a log line matching match and returns it.
func (s *server) waitLog(timeout time.Duration, match func(logLine) bool) logLine {
	s.t.Helper()
	var found logLine
	testutil.Eventually(s.t, timeout, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, l := range s.logs {
			if match(l) {
				found = l
				return true
			}
		}
		return false
	}, "a matching server log line; log so far:\n%s", s.logTextDump())
	return found
}

// findLogs returns every log line matching match so far.
func (s *server) findLogs(match func(logLine) bool) []logLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []logLine
	for _, l := range s.logs {
		if match(l) {
			out = append(out, l)
		}
	}
	return out
}

// logText is the raw log, for failure messages (a Stringer so it is read late).
var _ fmt.Stringer = logDump{}

type logDump struct{ s *server }

func (d logDump) String() string {
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	out := d.s.raw.String()
	if len(out) > 20000 {
		out = "…" + out[len(out)-20000:]
	}
	return out
}

func (s *server) logTextDump() fmt.Stringer { return logDump{s} }

// addr is the protocol listener's address, from the first "listening" log line.
func (s *server) addr() string {
	l := s.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "listening" })
	return l.str("addr")
}

// pid reads the PID file: the process that is serving now.
func (s *server) pid() int {
	b, err := os.ReadFile(s.pidFile)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

// alive reports whether pid runs. A zombie does not count: a replaced server is
// reparented to whatever reaps orphans here, which may take its time.
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func (s *server) signal(pid int, sig syscall.Signal) {
	s.t.Helper()
	if err := syscall.Kill(pid, sig); err != nil {
		s.t.Fatalf("kill -%d %d: %v", sig, pid, err)
	}
}

// stopAll ends every process of the tree: SIGTERM, then SIGKILL after a while.
func (s *server) stopAll() {
	for _, pid := range []int{s.pid(), s.cmd.Process.Pid} {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range []int{s.pid(), s.cmd.Process.Pid} {
		for alive(pid) && time.Now().Before(deadline) && !s.reaped(pid) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) && !s.reaped(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	select {
	case <-s.waitErr:
	case <-time.After(5 * time.Second):
	}
}

// reaped reports whether pid is the first process and has been waited for (a
// zombie still answers kill 0).
func (s *server) reaped(pid int) bool {
	if pid != s.cmd.Process.Pid {
		return false
	}
	select {
	case err := <-s.waitErr:
		s.waitErr <- err
		return true
	default:
		return false
	}
}
