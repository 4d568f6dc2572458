package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/legacy"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// legacyHandoffUpgrades is how many back-to-back upgrades
// TestHandoffLegacyAgentsThroughUpgrades runs: 5 in CI;
// E2E_LEGACY_HANDOFF_UPGRADES=20 for a longer run than CI affords.
func legacyHandoffUpgrades(t *testing.T) int {
	if v := os.Getenv("E2E_LEGACY_HANDOFF_UPGRADES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("E2E_LEGACY_HANDOFF_UPGRADES=%q", v)
		}
		return n
	}
	return 5
}

// fleetAgent is an ffff metrics agent as the real ones are written: one
// connection, a heartbeat goroutine, report goroutines that each wait for their
// receipt line, and one reader that matches lines to frames in order (ffff
// receipts carry no id: the n-th line answers the n-th frame). When its connection
// ends the agent exits for good: everything stops and it never reconnects.
type fleetAgent struct {
	id  string // client id in the spool: ffff:<local address>
	nc  net.Conn
	wmu sync.Mutex // one frame on the wire at a time, queued in wire order

	qmu     sync.Mutex
	pending []chan struct{} // one per frame written, in order; nil for a heartbeat

	dead     chan struct{} // closed when the connection ended
	deadErr  error         // why, set before dead is closed
	stopping atomic.Bool   // the test ends it: its end is not a failure

	receipts   atomic.Int64
	heartbeats atomic.Int64
	rmu        sync.Mutex
	receipted  map[string]bool // report tags with a receipt
	wg         sync.WaitGroup
}

func startFleetAgent(t *testing.T, addr string, reporters int, beat time.Duration, stop <-chan struct{}) *fleetAgent {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	a := &fleetAgent{id: "ffff:" + nc.LocalAddr().String(), nc: nc, dead: make(chan struct{}), receipted: map[string]bool{}}
	go a.read()
	a.wg.Add(1 + reporters)
	go a.heartbeat(beat, stop)
	for g := range reporters {
		go a.reporter(g, stop)
	}
	t.Cleanup(func() { a.stop() })
	return a
}

func (a *fleetAgent) die(err error) {
	a.qmu.Lock()
	defer a.qmu.Unlock()
	select {
	case <-a.dead:
	default:
		a.deadErr = err
		close(a.dead)
	}
}

// read matches each line to the oldest frame not answered yet.
func (a *fleetAgent) read() {
	rd := bufio.NewReader(a.nc)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			a.die(fmt.Errorf("connection ended: %w", err))
			return
		}
		a.qmu.Lock()
		if len(a.pending) == 0 {
			a.qmu.Unlock()
			a.die(fmt.Errorf("line %q with no frame waiting for one", line))
			return
		}
		ch := a.pending[0]
		a.pending = a.pending[1:]
		a.qmu.Unlock()
		want := legacy.FFFFReportReply
		if ch == nil {
			want = legacy.FFFFHeartbeatReply
		}
		if line != want {
			a.die(fmt.Errorf("line %q, want %q", line, want))
			return
		}
		if ch == nil {
			a.heartbeats.Add(1)
		} else {
			close(ch)
		}
	}
}

// send writes one frame; split writes it in two parts, as TCP may deliver it, so
// that an upgrade can find a partial frame in the server's buffer.
func (a *fleetAgent) send(frame []byte, receipt chan struct{}, split bool) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	a.qmu.Lock()
	a.pending = append(a.pending, receipt)
	a.qmu.Unlock()
	if split {
		if _, err := a.nc.Write(frame[:len(frame)/2]); err != nil {
			return err
		}
		time.Sleep(time.Millisecond) // the halves arrive as two reads (not an assertion)
		frame = frame[len(frame)/2:]
	}
	_, err := a.nc.Write(frame)
	return err
}

func (a *fleetAgent) heartbeat(every time.Duration, stop <-chan struct{}) {
	defer a.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	frame := legacy.AppendFFFFPacket(nil, legacy.FFFFHeartbeat, []byte(`{"version":"1.0","timestamp":1700000000}`))
	for {
		select {
		case <-stop:
			return
		case <-a.dead:
			return
		case <-t.C:
		}
		if err := a.send(frame, nil, true); err != nil {
			a.die(fmt.Errorf("heartbeat: %w", err))
			return
		}
	}
}

func (a *fleetAgent) reporter(g int, stop <-chan struct{}) {
	defer a.wg.Done()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-a.dead:
			return
		default:
		}
		tag := fmt.Sprintf("g%d-%d", g, n)
		frame := legacy.AppendFFFFPacket(nil, legacy.FFFFReport, fmt.Appendf(nil, `{"content":%q,"rand":%d,"timestamp":1700000000}`, tag, n))
		receipt := make(chan struct{})
		if err := a.send(frame, receipt, n%7 == 3); err != nil {
			a.die(fmt.Errorf("report %s: %w", tag, err))
			return
		}
		select {
		case <-receipt:
			a.rmu.Lock()
			a.receipted[tag] = true
			a.rmu.Unlock()
			a.receipts.Add(1)
		case <-a.dead:
			return
		}
	}
}

// stop ends the agent at once: its connection, then its goroutines.
func (a *fleetAgent) stop() {
	a.stopping.Store(true)
	a.nc.Close()
	a.wg.Wait()
}

// alive fails the test if the agent's connection ended before the test ended it.
func (a *fleetAgent) alive(t *testing.T) {
	t.Helper()
	select {
	case <-a.dead:
		if !a.stopping.Load() {
			t.Fatalf("agent %s: %v", a.id, a.deadErr)
		}
	default:
	}
}

// ffff agents through back-to-back upgrades: each old process hands every agent's
// connection to its successor at a quiet point (every receipt written, any partial
// frame carried over), so no agent is disconnected, and it would be, for good: it
// exits when its connection ends. Every report has exactly one receipt line, in
// order, and is in the spool exactly once; seqs stay unique within the client id.
func TestHandoffLegacyAgentsThroughUpgrades(t *testing.T) {
	const agents, reporters = 3, 300
	start := time.Now()
	s := startServer(t, bin.serverV1,
		`-legacy.listeners=[{name: metrics, address: "127.0.0.1:0", format: ffff, allow: [127.0.0.0/8]}]`)
	addr := s.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "legacy listening" }).str("addr")

	stop := make(chan struct{})
	var stopOnce sync.Once
	t.Cleanup(func() { stopOnce.Do(func() { close(stop) }) })
	var fleet []*fleetAgent
	ids := map[string]bool{}
	for range agents {
		a := startFleetAgent(t, addr, reporters, 100*time.Millisecond, stop)
		fleet = append(fleet, a)
		ids[a.id] = true
	}
	total := func() int64 {
		n := int64(0)
		for _, a := range fleet {
			a.alive(t)
			n += a.receipts.Load()
		}
		return n
	}
	progress := func(n int64) {
		t.Helper()
		from := total()
		testutil.Eventually(t, 10*time.Second, func() bool { return total() >= from+n }, "%d more receipts", n)
	}
	progress(3000)

	versions := []string{bin.serverV2, bin.serverV1}
	upgrades := legacyHandoffUpgrades(t)
	for i := range upgrades {
		old := s.pid()
		s.upgradeTo(versions[i%2]) // returns once the old process exited
		done := s.waitLog(10*time.Second, byPID(old, "handoff finished: connections moved to the new process"))
		if done.num("legacy_moved") != agents || done.num("fallback") != 0 || done.num("lost") != 0 {
			t.Fatalf("upgrade %d: legacy_moved %v of %d (fallback %v, lost %v)", i+1, done["legacy_moved"], agents, done["fallback"], done["lost"])
		}
		t.Logf("upgrade %d: %d ffff connections moved in %.1f ms", i+1, agents, done.num("duration")*1000)
		progress(1000) // the new process serves them
	}
	// Every heartbeat goroutine got answers across the upgrades too.
	for _, a := range fleet {
		if a.heartbeats.Load() == 0 {
			t.Fatalf("agent %s: no heartbeat answered", a.id)
		}
	}
	m, err := scrapeMetrics(s.adminAddr())
	if err != nil {
		t.Fatal(err)
	}
	if got := m[`hawk_handoff_connections_total{reason="",result="adopted"}`]; got != agents {
		t.Fatalf("adopted by the last process: %v, want %d", got, agents)
	}

	stopOnce.Do(func() { close(stop) })
	for _, a := range fleet {
		a.wg.Wait()
		a.alive(t)
		a.stop()
	}
	s.stopAll()

	receipted := 0
	for _, a := range fleet {
		receipted += len(a.receipted)
	}
	recs := spoolRecordsOf(t, s.spool, ids)
	seen := map[string]int{}
	seqs := map[string]bool{}
	for _, r := range recs {
		var p struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal(r.Payload, &p); err != nil || p.Content == "" {
			t.Fatalf("record payload %s: %v", r.Payload, err)
		}
		seen[r.ClientID+" "+p.Content]++
		key := r.ClientID + " " + strconv.FormatUint(r.Seq, 10)
		if seqs[key] {
			t.Fatalf("seq %s used twice", key)
		}
		seqs[key] = true
		if r.Listener != "metrics" {
			t.Fatalf("record of listener %q", r.Listener)
		}
	}
	for _, a := range fleet {
		for tag := range a.receipted {
			if n := seen[a.id+" "+tag]; n != 1 {
				t.Fatalf("report %s of %s: %d records, want 1", tag, a.id, n)
			}
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("report %s: %d records", k, n)
		}
	}
	// A report written but not yet receipted when the agents stopped may be stored:
	// at most one in flight per reporter.
	if len(recs) < receipted || len(recs) > receipted+agents*reporters {
		t.Fatalf("%d records for %d receipts", len(recs), receipted)
	}
	t.Logf("%d ffff agents × %d reporters through %d upgrades: %d receipts, %d records, never disconnected, %v",
		agents, reporters, upgrades, receipted, len(recs), time.Since(start).Round(time.Millisecond))
}

// relaunch starts version afresh in s's directory (same configuration, spool and
// PID file) once every process of s has exited, as an operator restarting the
// service would, and returns it as a server of its own.
func relaunch(t *testing.T, s *server, version string, flags ...string) *server {
	t.Helper()
	r := &server{t: t, dir: s.dir, binary: s.binary, cfgPath: s.cfgPath, pidFile: s.pidFile, spool: s.spool, waitErr: make(chan error, 1)}
	install(t, version, r.binary)
	r.launch(flags)
	return r
}

// The new process dies in the middle of the handoff (SIGKILL once it logged its
// first adoption), against the real binary run by a wrapper script. What it had
// adopted dies with it; the old process sees the channel break, drains everything
// not yet sent with GOAWAY (native) or serves it on (the legacy agent: sent after
// the native connections, so never sent) and exits at drain.timeout. Native
// clients reconnect and resend once the service is restarted on its address: no
// report fails, and every acked report is in the spool exactly once.
func TestHandoffNewProcessDiesMidHandoff(t *testing.T) {
	const conns = 1000
	listen := fmt.Sprintf("-listen=127.0.0.1:%d", freePort(t))
	legacyFlag := `-legacy.listeners=[{name: metrics, address: "127.0.0.1:0", format: ffff, allow: [127.0.0.0/8]}]`
	// The load's 1,000 clients may connect faster than limits.handshake_rate admits: a
	// "busy" refusal would count as a dial failure, and admission is not what this tests.
	s := startServer(t, bin.serverV1, listen, "-limits.max_conns=5000", "-limits.handshake_rate=0", legacyFlag)
	addr := s.addr()
	legacyAddr := s.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "legacy listening" }).str("addr")
	load := startLoad(t, addr, "-c", strconv.Itoa(conns), "-w", "4", "-s", "128", "-rate", "20000", "-d", "10m")
	s.waitConnected(conns)
	s.waitProgress(5000)
	agent := dialFFFF(t, legacyAddr)
	agent.report(5, "before")

	// The wrapper runs the real binary with debug logs (the adoption line is
	// debug), passes its log on, and kills it at its first adoption. It records the
	// binary's PID so the test can stop it whatever happens.
	wrapped := filepath.Join(s.dir, "wrapped.pid")
	fifo := filepath.Join(s.dir, "wrapped.log")
	t.Cleanup(func() {
		if b, err := os.ReadFile(wrapped); err == nil {
			if pid, _ := strconv.Atoi(string(bytes.TrimSpace(b))); alive(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	installScript(t, s.binary, fmt.Sprintf(`rm -f %[2]s; mkfifo %[2]s
%[3]s "$@" -log.level=debug 2>%[2]s &
pid=$!
echo $pid > %[1]s
while IFS= read -r line; do
	printf '%%s\n' "$line" >&2
	case $line in *'"connection adopted from the previous process"'*) kill -9 $pid; break;; esac
done < %[2]s
wait $pid`, wrapped, fifo, bin.serverV2))
	old := s.pid()
	s.signal(old, syscall.SIGHUP)
	broke := s.waitLog(15*time.Second, byPID(old, "handoff: the channel to the new process broke; what was not sent is drained here"))
	moved, lost, fallback := int(broke.num("moved")), int(broke.num("lost")), int(broke.num("fallback"))
	t.Logf("handoff broken: moved %d, lost %d, fallback %d (channel %v), legacy_moved %v", moved, lost, fallback, broke["fallback_channel"], broke["legacy_moved"])
	if moved+lost+fallback != conns+1 || broke.num("fallback_channel") < 1 || broke.num("legacy_moved") != 0 {
		t.Fatalf("moved %d + lost %d + fallback %d is not the %d connections, or nothing fell back for the channel: %v", moved, lost, fallback, conns+1, broke)
	}
	// The legacy agent was not sent: the old process still serves it.
	agent.report(5, "after the failed handoff")
	testutil.Eventually(t, 20*time.Second, func() bool { return !alive(old) }, "the old process %d to finish its drain and exit", old)

	// The operator restarts the service on its address; the clients come back.
	r := relaunch(t, s, bin.serverV1, listen, legacyFlag)
	r.waitProgress(5000)
	sum := load.stop()
	t.Logf("load: %+v", sum)
	if sum.Errors != 0 || sum.Acked == 0 {
		t.Fatalf("reports failed: %+v", sum)
	}
	r.stopAll()
	keys, _ := spoolKeys(t, s.spool)
	inSpool, dups := exactlyOnce(t, keys, load.acked())
	t.Logf("acked %d, in spool %d, duplicates %d", sum.Acked, inSpool, dups)
	if n := spoolLinesOf(t, s.spool, 0, agent.id); n != 10 {
		t.Fatalf("%d records of the legacy agent, want 10", n)
	}
}
