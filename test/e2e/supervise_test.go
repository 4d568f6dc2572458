package e2e

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// startSupervisedInPIDNamespace runs `hawk supervise` as PID 1 of a new PID
// namespace, as a container runtime runs an entrypoint, and returns the server
// (its logs; the PID file and the logs' pids are the namespace's) and the host pid
// of the supervisor. Its cleanup kills the namespace if the test has not stopped it.
func startSupervisedInPIDNamespace(t *testing.T, version string) (*server, int) {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare (util-linux) is needed to run hawk as PID 1 of a PID namespace:", err)
	}
	s := newServer(t, version)
	s.cmd = exec.Command("unshare", "--pid", "--fork", "--mount-proc", s.binary, "supervise", "-config", s.cfgPath)
	s.cmd.Dir = s.dir
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = w, w
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() { defer r.Close(); s.readLogs(r) }()
	go func() { s.waitErr <- s.cmd.Wait() }()
	var pid1 int
	testutil.Eventually(t, 10*time.Second, func() bool {
		c := childrenOf(s.cmd.Process.Pid)
		if len(c) == 1 {
			pid1 = c[0]
		}
		return pid1 != 0
	}, "unshare to fork the namespace's PID 1")
	t.Cleanup(func() {
		if alive(pid1) {
			syscall.Kill(pid1, syscall.SIGKILL) // PID 1's end kills the whole namespace
		}
		select {
		case <-s.waitErr:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
		}
	})
	s.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "listening" })
	if s.rawCount("pid 1 supervises server") != 1 {
		t.Fatalf("the supervisor is not PID 1 of the namespace:\n%s", s.logTextDump())
	}
	return s, pid1
}

// rawCount counts the output lines (JSON or not) holding sub.
func (s *server) rawCount(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Count(s.raw.Bytes(), []byte(sub))
}

// probeListening dials addr without pause until stop is closed and counts the
// dials that failed: a listener that goes away for a moment is one.
func probeListening(addr string, stop <-chan struct{}) (dials, failures *atomic.Int64, done *sync.WaitGroup) {
	dials, failures, done = &atomic.Int64{}, &atomic.Int64{}, &sync.WaitGroup{}
	done.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			dials.Add(1)
			if err != nil {
				failures.Add(1)
				continue
			}
			c.Close()
			time.Sleep(2 * time.Millisecond)
		}
	})
	return dials, failures, done
}

// In a container hawk is PID 1 of its PID namespace, whose exit kills every process
// in it. Under `hawk supervise` the supervisor stays PID 1: 20 SIGHUP upgrades to
// it under load, and the service never stops listening, no client notices, nothing
// acknowledged is lost; then SIGTERM stops everything with exit 0.
func TestSupervisedPID1UpgradesUnderLoad(t *testing.T) {
	s, pid1 := startSupervisedInPIDNamespace(t, bin.serverV1)
	addr := s.addr()
	load := startLoad(t, addr, "-c", "50", "-w", "4", "-s", "256", "-rate", "5000", "-d", "10m")
	stop := make(chan struct{})
	dials, failures, probing := probeListening(addr, stop)
	s.waitProgress(1000)
	const upgrades = 20
	for i := 1; i <= upgrades; i++ {
		s.signal(pid1, syscall.SIGHUP)
		testutil.Eventually(t, 20*time.Second, func() bool { return s.rawCount("adopted its successor") == i },
			"upgrade %d: the supervisor to adopt the new process", i)
		if n := len(s.findLogs(func(l logLine) bool { return l.str("msg") == msgUpgraded })); n != i {
			t.Fatalf("upgrade %d: %d upgrades succeeded, want %d:\n%s", i, n, i, s.logTextDump())
		}
	}
	s.waitProgress(1000) // the last generation carries the load
	close(stop)
	probing.Wait()
	sum := load.stop()
	t.Logf("%d upgrades; listener probes %d, failed %d; load %+v", upgrades, dials.Load(), failures.Load(), sum)
	if failures.Load() != 0 {
		t.Errorf("%d of %d dials failed: the service stopped listening during an upgrade", failures.Load(), dials.Load())
	}
	if sum.Errors != 0 || sum.DialFailures != 0 || sum.ConnectErrs != 0 || sum.Nacked != 0 || sum.Acked != sum.Sent || sum.Acked == 0 {
		t.Errorf("clients noticed the upgrades: %+v\nload stderr:\n%s", sum, load.stderr)
	}
	if r := s.findLogs(func(l logLine) bool { return l.str("msg") == msgRefused || l.str("msg") == msgFailed }); len(r) > 0 {
		t.Errorf("%d upgrades refused or failed, first: %v", len(r), r[0])
	}

	s.signal(pid1, syscall.SIGTERM)
	select {
	case err := <-s.waitErr:
		s.waitErr <- err
		if err != nil {
			t.Fatalf("after SIGTERM the namespace's PID 1 exited with %v, want 0:\n%s", err, s.logTextDump())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("SIGTERM: the supervisor did not exit:\n%s", s.logTextDump())
	}
	if s.rawCount("none left") != 1 {
		t.Errorf("the supervisor did not exit with the last generation:\n%s", s.logTextDump())
	}
	checkSpool(t, spoolRecords(t, s.spool), load.acked(), true)
}
