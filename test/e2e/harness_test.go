// Package e2e runs the real binaries as an operator would: start, load, upgrade
// (SIGHUP), stop (SIGTERM), kill (SIGKILL).
//
// TestMain builds the binaries once. Every process a test starts is stopped when the
// test ends, and every port is chosen by the kernel.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/spool"
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
	s := newServer(t, version)
	s.launch(flags)
	return s
}

// newServer installs version as dir/hawk with the test configuration beside it, in
// a fresh directory, without starting it.
func newServer(t testing.TB, version string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{t: t, dir: dir, binary: filepath.Join(dir, "hawk"), cfgPath: filepath.Join(dir, "hawk.yaml"),
		pidFile: filepath.Join(dir, "hawk.pid"), spool: filepath.Join(dir, "spool"), waitErr: make(chan error, 1)}
	install(t, version, s.binary)
	if err := os.WriteFile(s.cfgPath, []byte(serverConfig(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// launch starts the process with the server's config and flags and waits until it listens.
func (s *server) launch(flags []string) {
	t := s.t
	t.Helper()
	// Our own pipe, not StderrPipe: Wait closes that one when the first process
	// exits, and the processes that replaced it share this stderr.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// A parallel test's fork can hold the binary install just wrote open for
	// writing until that child execs (golang/go#22315): exec then fails with
	// ETXTBSY for a moment, so it is tried again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.cmd = exec.Command(s.binary, append([]string{"-config", s.cfgPath}, flags...)...)
		s.cmd.Dir = s.dir
		s.cmd.Stderr = w
		err := s.cmd.Start()
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ETXTBSY) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.Close()
	go func() { defer r.Close(); s.readLogs(r) }()
	go func() { s.waitErr <- s.cmd.Wait() }()
	t.Cleanup(s.stopAll)
	defer s.whoHoldsTheAddress()
	s.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "listening" && int(l.num("pid")) == s.cmd.Process.Pid })
}

// whoHoldsTheAddress runs when launch ends: if the server could not listen
// because its address was in use, it logs which sockets on the machine are on
// that port and which processes hold them (ss), so that such a failure names the
// holder.
func (s *server) whoHoldsTheAddress() {
	if !s.t.Failed() {
		return
	}
	s.mu.Lock()
	raw := s.raw.String()
	s.mu.Unlock()
	i := strings.Index(raw, "address already in use")
	if i < 0 {
		return
	}
	line := raw[strings.LastIndexByte(raw[:i], '\n')+1 : i]
	// "... listen tcp 127.0.0.1:PORT: bind: address already in use"
	f := strings.Fields(strings.ReplaceAll(line, ": ", " "))
	port := ""
	for _, w := range f {
		if _, p, err := net.SplitHostPort(w); err == nil {
			port = p
		}
	}
	out, err := exec.Command("ss", "-tanpe").CombinedOutput()
	if err != nil {
		s.t.Logf("the address was in use; ss -tanpe: %v", err)
		return
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if port != "" && strings.Contains(l, ":"+port+" ") {
			keep = append(keep, l)
		}
	}
	s.t.Logf("port %s was in use; its sockets (ss -tanpe):\n%s", port, strings.Join(keep, "\n"))
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

// waitLogs waits until at least n log lines match match and returns them.
func (s *server) waitLogs(match func(logLine) bool, n int) []logLine {
	s.t.Helper()
	var found []logLine
	testutil.Eventually(s.t, 10*time.Second, func() bool { found = s.findLogs(match); return len(found) >= n },
		"%d matching server log lines; log so far:\n%s", n, s.logTextDump())
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

// warnings is the last n lines of the log at level warn or above, for a failure
// where the whole log of several servers would bury them.
func (s *server) warnings(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keep []string
	for _, line := range strings.Split(s.raw.String(), "\n") {
		if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep[max(0, len(keep)-n):], "\n")
}

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
// reparented to whatever reaps orphans here, which may take its time. Every
// thread counts, not only the main one: a killed process's main thread can be a
// zombie while its other threads are still exiting, holding the process's
// descriptors (its listening sockets too).
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // the thread ended while we looked
		}
		// The state follows the parenthesised command name.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) || (stat[i+2] != 'Z' && stat[i+2] != 'X') {
			return true
		}
	}
	return false
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
	case err := <-s.waitErr:
		s.waitErr <- err // for the next stopAll (the test's, then its cleanup's)
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

// ---- Helpers the tests share (protocol dialer, spool reader honoring the
// torn-line rule, metrics scraper, process inspection). ----

// protoErr is an ERROR frame the server sent, as an error.
type protoErr struct{ protocol.ErrorPayload }

func (e *protoErr) Error() string { return fmt.Sprintf("ERROR %s: %s", e.Code, e.Message) }

// protoConn is a raw protocol connection that reports problems as errors instead
// of failing the test, so it can be used from any goroutine (testutil.Peer calls
// t.Fatal).
type protoConn struct {
	net.Conn
	buf []byte
}

// dialProto opens a TCP connection to addr.
func dialProto(addr string, timeout time.Duration) (*protoConn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return &protoConn{Conn: c}, nil
}

// write writes raw bytes.
func (p *protoConn) write(b []byte) error {
	p.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := p.Conn.Write(b)
	return err
}

// next reads the next frame, waiting up to timeout; io.EOF (or a reset) when the
// server closed the connection.
func (p *protoConn) next(timeout time.Duration) (protocol.Frame, error) {
	return testutil.NextFrame(p.Conn, &p.buf, timeout)
}

// hello sends HELLO and waits for WELCOME; an ERROR comes back as *protoErr.
func (p *protoConn) hello(clientID string, timeout time.Duration) (protocol.Welcome, error) {
	var w protocol.Welcome
	if err := p.write(protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: clientID, ClientVersion: "e2e"})); err != nil {
		return w, fmt.Errorf("sending HELLO: %w", err)
	}
	f, err := p.next(timeout)
	if err != nil {
		return w, fmt.Errorf("waiting for WELCOME: %w", err)
	}
	switch f.Type {
	case protocol.TypeWelcome:
		return w, protocol.ParseJSON(f, &w)
	case protocol.TypeError:
		e := &protoErr{}
		protocol.ParseJSON(f, &e.ErrorPayload)
		return w, e
	}
	return w, fmt.Errorf("got %s in answer to HELLO, want WELCOME", f.Type)
}

// report sends one REPORT and returns the ACK or NACK answering it, skipping
// GOAWAY, PONG and answers to other seqs; an ERROR comes back as *protoErr.
func (p *protoConn) report(seq uint64, payload []byte, timeout time.Duration) (protocol.Frame, error) {
	if err := p.write(protocol.AppendFrame(nil, protocol.TypeReport, seq, payload)); err != nil {
		return protocol.Frame{}, fmt.Errorf("sending REPORT: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		f, err := p.next(time.Until(deadline))
		if err != nil {
			return f, fmt.Errorf("waiting for the ACK of %d: %w", seq, err)
		}
		switch {
		case f.Type == protocol.TypeError:
			e := &protoErr{}
			protocol.ParseJSON(f, &e.ErrorPayload)
			return f, e
		case (f.Type == protocol.TypeAck || f.Type == protocol.TypeNack) && f.Seq == seq:
			return f, nil
		}
	}
}

// expectError reads until an ERROR arrives, checks its code, then expects the
// server to close the connection.
func (p *protoConn) expectError(code protocol.Code, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		f, err := p.next(time.Until(deadline))
		if err != nil {
			return fmt.Errorf("waiting for ERROR %s: %w", code, err)
		}
		if f.Type != protocol.TypeError {
			continue
		}
		var e protocol.ErrorPayload
		if err := protocol.ParseJSON(f, &e); err != nil {
			return fmt.Errorf("ERROR payload %q: %w", f.Payload, err)
		}
		if e.Code != code {
			return fmt.Errorf("ERROR %s (%s), want %s", e.Code, e.Message, code)
		}
		return p.expectClosed(time.Until(deadline))
	}
}

// expectClosed reads until the server closes the connection; any frame but
// another ERROR is an error.
func (p *protoConn) expectClosed(timeout time.Duration) error {
	for {
		f, err := p.next(timeout)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("connection still open after ERROR: %w", err)
			}
			return nil
		}
		return fmt.Errorf("%s after ERROR", f.Type)
	}
}

// freshDial is one complete short visit of an agent: connect, HELLO, WELCOME,
// one REPORT and its ACK, close. It returns the WELCOME.
func freshDial(addr, clientID string, seq uint64) (protocol.Welcome, error) {
	p, err := dialProto(addr, 5*time.Second)
	if err != nil {
		return protocol.Welcome{}, err
	}
	defer p.Close()
	w, err := p.hello(clientID, 5*time.Second)
	if err != nil {
		return w, err
	}
	f, err := p.report(seq, []byte(`{"fresh":true}`), 5*time.Second)
	if err != nil {
		return w, err
	}
	if f.Type != protocol.TypeAck {
		return w, fmt.Errorf("REPORT %d answered with %s %s", seq, f.Type, f.Payload)
	}
	return w, nil
}

// spoolContents is what readSpool found in a spool directory.
type spoolContents struct {
	records map[string]int // "client_id seq" → how many times
	lines   int            // complete records
	torn    []string       // segments whose last line has no '\n' (ignored, as the contract says)
}

// readSpool reads every segment the way the spool contract (internal/spool/doc.go)
// tells consumers to: a last line without '\n' is an unfinished write and is
// ignored; every complete line must be a record. Only each line's key is read
// (ingest.ParseKey), which keeps checking a million records fast even in a -race
// test binary.
func readSpool(t testing.TB, dir string) spoolContents {
	t.Helper()
	segs, err := spool.Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := spoolContents{records: map[string]int{}}
	for _, seg := range segs {
		data, err := os.ReadFile(filepath.Join(dir, seg.Name))
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.LastIndexByte(data, '\n'); i < len(data)-1 {
			out.torn = append(out.torn, fmt.Sprintf("%s: %q", seg.Name, data[i+1:]))
			data = data[:i+1]
		}
		for line := range bytes.Lines(data) {
			id, seq, ok := ingest.ParseKey(line, nil)
			if !ok {
				t.Fatalf("%s: bad record %q", seg.Name, line)
			}
			out.records[string(id)+" "+strconv.FormatUint(seq, 10)]++
			out.lines++
		}
	}
	return out
}

// spoolRecord is what a test reads of a spool record beyond its key.
type spoolRecord struct {
	ClientID string          `json:"client_id"`
	Seq      uint64          `json:"seq"`
	Listener string          `json:"listener"`
	Payload  json.RawMessage `json:"payload"`
}

// spoolRecordsOf decodes every complete spool record of the given client ids.
func spoolRecordsOf(t testing.TB, dir string, ids map[string]bool) []spoolRecord {
	t.Helper()
	return spoolRecordsWhere(t, dir, func(r *spoolRecord) bool { return ids[r.ClientID] })
}

// spoolRecordsWhere decodes every complete spool record keep keeps.
func spoolRecordsWhere(t testing.TB, dir string, keep func(*spoolRecord) bool) []spoolRecord {
	t.Helper()
	segs, err := spool.Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []spoolRecord
	for _, seg := range segs {
		data, err := os.ReadFile(filepath.Join(dir, seg.Name))
		if err != nil {
			t.Fatal(err)
		}
		data = data[:bytes.LastIndexByte(data, '\n')+1] // a torn last line is not a record
		for line := range bytes.Lines(data) {
			var r spoolRecord
			if err := json.Unmarshal(line, &r); err != nil {
				t.Fatalf("%s: bad record %q: %v", seg.Name, line, err)
			}
			if keep(&r) {
				out = append(out, r)
			}
		}
	}
	return out
}

// spoolKeys is readSpool's records and how many segments end in a torn line.
func spoolKeys(t testing.TB, dir string) (keys map[string]int, torn int) {
	t.Helper()
	sp := readSpool(t, dir)
	return sp.records, len(sp.torn)
}

// scrapeMetrics fetches /metrics from an admin address and returns every sample,
// keyed as exposed ("name" or `name{label="v"}`).
func scrapeMetrics(adminAddr string) (map[string]float64, error) {
	resp, err := adminClient.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// metric scrapes one sample, failing the test if it is not exposed.
func metric(t testing.TB, adminAddr, sample string) float64 {
	t.Helper()
	m, err := scrapeMetrics(adminAddr)
	if err != nil {
		t.Fatalf("scraping %s: %v", adminAddr, err)
	}
	v, ok := m[sample]
	if !ok {
		t.Fatalf("sample %s not in /metrics", sample)
	}
	return v
}

// byPID matches the log lines of one process with one message.
func byPID(pid int, msg string) func(logLine) bool {
	return func(l logLine) bool { return int(l.num("pid")) == pid && l.str("msg") == msg }
}

// processes returns the live (not zombie) hawk processes of this server tree: every
// process whose command line names its config file.
func (s *server) processes() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	want := []byte("\x00-config\x00" + s.cfgPath + "\x00")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(cl, want) || !alive(pid) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// waitGone waits until pid no longer runs (exited, or a zombie).
func waitGone(t testing.TB, pid int, timeout time.Duration, what string) {
	t.Helper()
	testutil.Eventually(t, timeout, func() bool { return !alive(pid) }, "%s (pid %d) to exit", what, pid)
}
