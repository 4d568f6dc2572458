package e2e

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// freshDialer opens new protocol connections continuously (HELLO, WELCOME, one
// REPORT and its ACK, close) from a few goroutines, and remembers every outcome.
type freshDialer struct {
	addr   string
	window atomic.Int32 // 0 before the handoff, 1 during, 2 after
	stop   chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	ok       [3]int
	versions [3]map[string]int // server_version of the WELCOMEs, per window
	failures []string
	acked    map[string]int // "client_id seq" of every ACKed report
}

func startFreshDialer(t *testing.T, addr string, workers int) *freshDialer {
	d := &freshDialer{addr: addr, stop: make(chan struct{}), acked: map[string]int{}}
	for i := range d.versions {
		d.versions[i] = map[string]int{}
	}
	for w := range workers {
		d.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-d.stop:
					return
				default:
				}
				win := d.window.Load()
				id := fmt.Sprintf("fresh-%d-%d", w, i)
				welcome, err := freshDial(addr, id, 1)
				d.mu.Lock()
				if err != nil {
					d.failures = append(d.failures, fmt.Sprintf("window %d, %s: %v", win, id, err))
				} else {
					d.ok[win]++
					d.versions[win][welcome.ServerVersion]++
					d.acked[id+" 1"]++
				}
				d.mu.Unlock()
			}
		})
	}
	t.Cleanup(d.halt)
	return d
}

func (d *freshDialer) halt() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	d.wg.Wait()
}

func (d *freshDialer) count(win int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ok[win]
}

// "Without refusing a connection": while an upgrade runs, from the SIGHUP until the
// old process has exited, new agents keep connecting, and every single one gets its
// WELCOME and its report ACKed — whichever process accepted it.
func TestFreshDialsThroughoutHandoff(t *testing.T) {
	// A drain long enough to be worth dialing through: the GOAWAYs are spread over
	// 1s, and clients with reports in flight keep the old process busy.
	s := startServer(t, bin.serverV1, "-drain.spread=1s")
	addr := s.addr()
	load := startLoad(t, addr, "-c", "50", "-w", "4", "-s", "128", "-rate", "5000", "-d", "10m")
	s.waitProgress(500)

	d := startFreshDialer(t, addr, 4)
	testutil.Eventually(t, 10*time.Second, func() bool { return d.count(0) >= 50 }, "fresh dials before the upgrade")

	old := s.pid()
	install(t, bin.serverV2, s.binary)
	d.window.Store(1)
	s.signal(old, syscall.SIGHUP)
	s.waitLog(10*time.Second, byPID(old, "upgrade succeeded: new process is ready; draining this one"))
	waitGone(t, old, 15*time.Second, "the old process")
	d.window.Store(2)
	during := d.count(1)
	testutil.Eventually(t, 10*time.Second, func() bool { return d.count(2) >= 50 }, "fresh dials after the upgrade")
	d.halt()
	sum := load.stop()

	d.mu.Lock()
	defer d.mu.Unlock()
	t.Logf("fresh dials: %d before, %d during the handoff (WELCOME versions %v), %d after; load: %+v",
		d.ok[0], during, d.versions[1], d.ok[2], sum)
	if len(d.failures) > 0 {
		n := min(len(d.failures), 10)
		t.Fatalf("%d fresh connections failed (of %d), first %d:\n%v\nserver log:\n%s",
			len(d.failures), d.ok[0]+d.ok[1]+d.ok[2]+len(d.failures), n, d.failures[:n], s.logTextDump())
	}
	// The window really was covered: the new process took new agents while the old
	// one still ran.
	if during < 10 || d.versions[1]["v2"] == 0 {
		t.Fatalf("only %d fresh dials during the handoff (versions %v): the test did not cover it", during, d.versions[1])
	}
	if sum.Errors != 0 || sum.ConnectErrs != 0 || sum.Acked != sum.Sent {
		t.Fatalf("load clients noticed the upgrade: %+v", sum)
	}
	acked := load.acked()
	for k, n := range d.acked {
		acked[k] += n
	}
	s.stopAll()
	checkCleanSpool(t, s.spool, acked, true)
}
