package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/promtext/promtexttest"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/testutil/natstest"
)

// destination: jetstream: reports go into NATS JetStream, and several hawks behind a
// balancer share one stream.

const jsStream = "REPORTS"

// startNATS runs an in-process nats-server with JetStream and the stream hawk
// writes to.
func startNATS(t *testing.T) *natstest.Server {
	ns := natstest.Start(t)
	ns.CreateStream(jsStream, "hawk.reports.*")
	return ns
}

// jsFlags make a hawk write to ns. The test server syncs every write
// (sync_interval: always), which jetstream.sync_always states.
func jsFlags(ns *natstest.Server) []string { return jsFlagsTo(ns.URL()) }

// jsFlagsTo make a hawk write to the NATS servers at urls (comma separated).
func jsFlagsTo(urls string) []string {
	return []string{"-destination=jetstream", "-jetstream.urls=" + urls, "-jetstream.stream=" + jsStream,
		"-jetstream.sync_always=true", "-jetstream.retry_after=200ms", "-jetstream.publish_timeout=2s"}
}

// streamReader is a nats-server or a cluster of them, read back by the tests.
type streamReader interface {
	Count(stream string) uint64
	Messages(stream string) (byID map[string]int, total int)
}

// waitStream waits for n more messages in the stream.
func waitStream(t *testing.T, ns streamReader, n uint64) {
	t.Helper()
	waitStreamWithin(t, ns, n, 20*time.Second)
}

// waitStreamWithin waits up to timeout for n more messages in the stream.
func waitStreamWithin(t *testing.T, ns streamReader, n uint64, timeout time.Duration) {
	t.Helper()
	base := ns.Count(jsStream)
	testutil.Eventually(t, timeout, func() bool { return ns.Count(jsStream) >= base+n }, "%d more messages in the stream", n)
}

func readyz(admin string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + admin + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkStreamExactlyOnce: every report the load generator saw ACKed is in the
// stream exactly once, and no Nats-Msg-Id is in it twice.
func checkStreamExactlyOnce(t *testing.T, ns streamReader, loads ...*loadRun) {
	t.Helper()
	byID, total := ns.Messages(jsStream)
	for id, n := range byID {
		if n != 1 {
			t.Errorf("%s is in the stream %d times", id, n)
		}
	}
	acked := 0
	for _, l := range loads {
		for key := range l.acked() {
			client, seq, ok := strings.Cut(key, " ")
			n, err := strconv.ParseUint(seq, 10, 64)
			if !ok || err != nil {
				t.Fatalf("acked log line %q", key)
			}
			acked++
			if c := byID[jetstream.MsgID(client, n)]; c != 1 {
				t.Fatalf("acked report %s is in the stream %d times, want once", key, c)
			}
		}
	}
	if acked == 0 {
		t.Fatal("no report acked")
	}
	t.Logf("%d acked reports, %d messages in the stream, each once", acked, total)
}

// A hawk writing to JetStream, upgraded under load and then its NATS server
// restarted under load: agents see retryable NACKs while NATS is down, /readyz is 503
// and then 200 again, and every acked report is in the stream exactly once.
func TestJetStreamUpgradeAndNATSRestart(t *testing.T) {
	ns := startNATS(t)
	s := startServer(t, bin.serverV1, jsFlags(ns)...)
	admin := s.adminAddr()
	// A report NACKed again and again while NATS is down backs off up to the
	// client's MaxBackoff (10 s): the final drain must outlast that, or the few
	// reports still waiting count as errors.
	load := startLoad(t, s.addr(), "-c", "200", "-w", "8", "-s", "256", "-rate", "20000", "-d", "10m", "-drain-timeout", "30s")
	waitStream(t, ns, 5000)
	s.upgradeTo(bin.serverV2)
	waitStream(t, ns, 5000)

	ns.Stop()
	testutil.Eventually(t, 10*time.Second, func() bool { return readyz(admin) == http.StatusServiceUnavailable }, "/readyz 503 while NATS is down")
	ns.Restart()
	testutil.Eventually(t, 20*time.Second, func() bool { return readyz(admin) == http.StatusOK }, "/readyz 200 once NATS is back")
	waitStream(t, ns, 5000)

	sum := load.stop()
	if sum.Errors != 0 || sum.ConnectErrs != 0 || sum.Nacked == 0 {
		t.Fatalf("load: %+v; want 0 errors, 0 connect errors and some (retryable) NACKs", sum)
	}
	checkStreamExactlyOnce(t, ns, load)
	if m := metric(t, admin, "hawk_jetstream_publish_errors_total"); m == 0 {
		t.Errorf("hawk_jetstream_publish_errors_total is 0 after a NATS restart")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// haproxy runs HAProxy (Debian's package) in TCP mode in front of backends
// (protocol port → admin port), each health-checked on /readyz, and returns the
// frontend's address. serverOpts are added to every server line (send-proxy-v2).
// It is stopped at the end of the test.
func haproxy(t *testing.T, backends [][2]int, serverOpts ...string) string {
	t.Helper()
	path, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy not found (apt-get install haproxy; .ci/run does): the balancer e2e test needs it")
	}
	front := freePort(t)
	var b strings.Builder
	fmt.Fprintf(&b, `global
  maxconn 4000
defaults
  mode tcp
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  retries 3
  option redispatch 1
frontend hawk
  bind 127.0.0.1:%d
  default_backend hawks
backend hawks
  balance leastconn
  option httpchk GET /readyz
  default-server inter 200ms fall 2 rise 2 on-marked-down shutdown-sessions
`, front)
	for i, be := range backends {
		fmt.Fprintf(&b, "  server hawk%d 127.0.0.1:%d check port %d %s\n", i+1, be[0], be[1], strings.Join(serverOpts, " "))
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &testutil.Buffer{}
	cmd := exec.Command(path, "-f", cfg, "-db")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", front)
	testutil.Eventually(t, 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "haproxy to listen on %s; output:\n%s", addr, out)
	return addr
}

// Three hawks behind HAProxy, all writing to one stream. One is SIGKILLed under
// load: its agents reconnect through the balancer to the others and resend, and
// every acked report is in the stream exactly once. Then a rolling upgrade of all
// three, one at a time, each waited for: 0 refused dials, 0 errors.
func TestJetStreamBehindHAProxy(t *testing.T) {
	ns := startNATS(t)
	ports := make([][2]int, 3)
	flags := make([][]string, 3)
	hawks := make([]*server, 3)
	for i := range hawks {
		ports[i] = [2]int{freePort(t), freePort(t)}
		for ports[i][1] == ports[i][0] { // the kernel may hand the same free port out twice
			ports[i][1] = freePort(t)
		}
		flags[i] = append(jsFlags(ns), fmt.Sprintf("-listen=127.0.0.1:%d", ports[i][0]),
			fmt.Sprintf("-admin.addr=127.0.0.1:%d", ports[i][1]))
		hawks[i] = startServer(t, bin.serverV1, flags[i]...)
	}
	front := haproxy(t, ports)
	t.Cleanup(func() {
		if t.Failed() {
			for i, h := range hawks { // the instances of the moment: hawk 1 restarted after its SIGKILL
				t.Logf("hawk %d, its last warnings and errors:\n%s", i+1, h.warnings(30))
			}
		}
	})
	for i := range hawks {
		admin := fmt.Sprintf("127.0.0.1:%d", ports[i][1])
		testutil.Eventually(t, 10*time.Second, func() bool { return readyz(admin) == http.StatusOK }, "hawk %d ready on %s (admin listening on %s)", i+1, admin, hawks[i].adminAddr())
	}

	load := startLoad(t, front, "-c", "300", "-w", "8", "-s", "256", "-rate", "15000", "-d", "10m")
	waitStream(t, ns, 5000)
	victim := hawks[0]
	victim.signal(victim.pid(), syscall.SIGKILL)
	waitGone(t, victim.cmd.Process.Pid, 10*time.Second, "the SIGKILLed hawk")
	waitStream(t, ns, 10000) // its agents moved to the other two
	sum := load.stop()
	if sum.Errors != 0 || sum.ConnectErrs != 0 {
		t.Fatalf("load across the SIGKILL: %+v; want 0 errors, 0 connect errors", sum)
	}
	t.Logf("across the SIGKILL: %+v", sum)
	checkStreamExactlyOnce(t, ns, load)

	// The killed instance comes back on its ports; then every instance is upgraded,
	// one at a time, each waited for (new process ready, old one exited).
	hawks[0] = startServer(t, bin.serverV1, flags[0]...)
	admin0 := fmt.Sprintf("127.0.0.1:%d", ports[0][1])
	testutil.Eventually(t, 10*time.Second, func() bool { return readyz(admin0) == http.StatusOK }, "hawk 1 ready again")
	roll := startLoad(t, front, "-c", "300", "-w", "8", "-s", "256", "-rate", "15000", "-d", "10m")
	waitStream(t, ns, 5000)
	// deploy/cluster/rolling-upgrade.sh does the rollout: SIGHUP, then the verdict
	// (PID file names a new process, /readyz 200, old process gone) before the next.
	var specs []string
	olds := make([]int, len(hawks))
	for i, h := range hawks {
		install(t, bin.serverV2, h.binary)
		olds[i] = h.pid()
		specs = append(specs, fmt.Sprintf("hawk%d,%s,127.0.0.1:%d", i+1, h.pidFile, ports[i][1]))
	}
	script := exec.Command("bash", append([]string{"../../deploy/cluster/rolling-upgrade.sh"}, specs...)...)
	script.Env = append(os.Environ(), "TIMEOUT=30")
	out, err := script.CombinedOutput()
	if err != nil {
		t.Fatalf("rolling-upgrade.sh: %v\n%s", err, out)
	}
	t.Logf("rolling-upgrade.sh:\n%s", out)
	for i, h := range hawks {
		if p := h.pid(); p == olds[i] || alive(olds[i]) || h.welcomeVersion(t, fmt.Sprintf("127.0.0.1:%d", ports[i][0])) != "v2" {
			t.Fatalf("hawk %d not upgraded: pid %d (was %d)", i+1, p, olds[i])
		}
	}
	waitStream(t, ns, 2000)
	sum = roll.stop()
	if sum.Errors != 0 || sum.ConnectErrs != 0 || sum.DialFailures != 0 {
		t.Fatalf("rolling upgrade: %+v; want 0 errors, 0 connect errors, 0 refused dials", sum)
	}
	t.Logf("rolling upgrade: %+v", sum)
	checkStreamExactlyOnce(t, ns, load, roll)
}

// The worked example's configurations load, and agree with the stream definition
// and the balancer on the points hawk checks.
func TestClusterExampleConfigs(t *testing.T) {
	var stream struct {
		Subjects   []string `json:"subjects"`
		Replicas   int      `json:"num_replicas"`
		Duplicates int64    `json:"duplicate_window"`
	}
	data, err := os.ReadFile("../../deploy/cluster/stream.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &stream); err != nil {
		t.Fatalf("stream.json: %v", err)
	}
	if stream.Replicas < 3 {
		t.Errorf("stream.json: num_replicas %d, want 3", stream.Replicas)
	}
	haproxyCfg, err := os.ReadFile("../../deploy/cluster/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("../../deploy/cluster/hawk-%d.yaml", i)
		c, err := (&config.Loader{File: name, Env: []string{}}).Load()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		j := c.JetStream
		if c.Destination != config.DestinationJetStream || !j.RequireDurable {
			t.Errorf("%s: destination %q, require_durable %v", name, c.Destination, j.RequireDurable)
		}
		if time.Duration(stream.Duplicates) < j.RetryHorizon {
			t.Errorf("%s: retry_horizon %s above the stream's duplicate window %s", name, j.RetryHorizon, time.Duration(stream.Duplicates))
		}
		if !slices.ContainsFunc(stream.Subjects, func(p string) bool { return jetstream.SubjectMatches(p, jetstream.Subject(j.Subject, "x")) }) {
			t.Errorf("%s: subject %q not covered by stream.json's %v", name, j.Subject, stream.Subjects)
		}
		if strings.Contains(string(haproxyCfg), "send-proxy-v2") && c.ProxyFrom == "" {
			t.Errorf("%s: haproxy.cfg sends PROXY headers, and listen_proxy_from does not name it", name)
		}
		_, port, _ := net.SplitHostPort(c.Admin.Addr)
		if !strings.Contains(string(haproxyCfg), "check port "+port) {
			t.Errorf("haproxy.cfg does not health-check %s's admin port %s", name, port)
		}
	}
}

// hawk refuses to start on a stream that cannot keep its promises: missing, or
// not durable with jetstream.require_durable (a single server without sync_always).
func TestJetStreamStartRefused(t *testing.T) {
	ns := startNATS(t)
	dir := t.TempDir()
	want := map[string]string{"missing stream": "stream not found", "not durable": "is not durable"}
	for name, flags := range map[string][]string{
		"missing stream": {"-jetstream.stream=NOPE", "-jetstream.sync_always=true"},
		"not durable":    {"-jetstream.stream=" + jsStream},
	} {
		cmd := exec.Command(bin.serverV1, append([]string{"-listen=127.0.0.1:0", "-admin.addr=", "-spool.dir=" + filepath.Join(dir, "spool"),
			"-destination=jetstream", "-jetstream.urls=" + ns.URL(), "-jetstream.connect_timeout=2s"}, flags...)...)
		out := &testutil.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: hawk exited 0; output:\n%s", name, out)
			}
			if !strings.Contains(out.String(), want[name]) {
				t.Errorf("%s: the error does not say %q:\n%s", name, want[name], out)
			}
			t.Logf("%s: %s", name, strings.TrimSpace(out.String()))
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s: hawk still running after 20s; output:\n%s", name, out)
		}
	}
}

// deploy/cluster/hawk-jetstream-alerts.yml: promtool accepts it, and every
// hawk_jetstream_ metric it names is one hawk exports.
func TestJetStreamAlertRules(t *testing.T) {
	const file = "../../deploy/cluster/hawk-jetstream-alerts.yml"
	if pt, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(pt, "check", "rules", file).CombinedOutput(); err != nil {
			t.Fatalf("promtool check rules %s: %v\n%s", file, err, out)
		}
	}
	m := metrics.New("v-test", func() int { return 0 })
	m.JetStream()
	m.Forward()
	families, err := promtexttest.Gather(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range families {
		have[f.GetName()] = true
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`hawk_(jetstream|forward)_[a-z_]+`).FindAllString(string(raw), -1)
	if !slices.ContainsFunc(used, func(n string) bool { return strings.HasPrefix(n, "hawk_forward_") }) {
		t.Fatal("no hawk_forward_ metric in the rules")
	}
	for _, name := range used {
		if !have[strings.TrimSuffix(name, "_bucket")] {
			t.Errorf("%s names %s, which hawk does not export", file, name)
		}
	}
}
