package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/udp"
)

// udpListening starts nothing: it waits for the "udp listening" line of the
// listener called name and returns its address.
func (s *server) udpListening(name string) *net.UDPAddr {
	s.t.Helper()
	l := s.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "udp listening" && l.str("listener") == name })
	a, err := net.ResolveUDPAddr("udp", l.str("addr"))
	if err != nil {
		s.t.Fatalf("udp listening line %v: %v", l, err)
	}
	return a
}

// udpDrops reads the kernel's drop counter of the UDP socket bound to port from
// /proc/net/udp (its last column), as the test's own witness.
func udpDrops(t testing.TB, port int) uint64 {
	t.Helper()
	n, err := udp.KernelDropsOfPort(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A numbered sender through back-to-back upgrades: every datagram the kernel
// accepted (sent minus the socket's drop counter) is in the spool exactly once,
// whichever process read it.
func TestUDPNothingLostAcrossUpgrades(t *testing.T) {
	const upgrades = 20
	s := startServer(t, bin.serverV1, "-upgrade.handoff=false", "-drain.timeout=1s",
		`-udp.listeners=[{name: u, address: "127.0.0.1:0", format: lines, allow: [127.0.0.0/8]}]`)
	addr := s.udpListening("u")
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := "lines:" + c.LocalAddr().String()

	var sent atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for n := 0; ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range 20 { // ~20,000 datagrams/s, paced
				if _, err := fmt.Fprintf(c, `{"n":%d}`, n); err == nil {
					n++
					sent.Store(int64(n))
				}
			}
		}
	}()
	testutil.Eventually(t, 5*time.Second, func() bool { return sent.Load() > 1000 }, "the sender to start")
	for i := range upgrades {
		next := bin.serverV2
		if i%2 == 1 {
			next = bin.serverV1
		}
		s.upgradeRightAway(next, i+1)
	}
	close(stop)
	<-done
	total := int(sent.Load())
	var want int
	var recs []spoolRecord
	testutil.Eventually(t, 10*time.Second, func() bool {
		want = total - int(udpDrops(t, addr.Port))
		recs = spoolRecordsOf(t, s.spool, map[string]bool{id: true})
		return len(recs) >= want
	}, "the spool to hold every datagram the kernel accepted")
	seen := make(map[int]int, len(recs))
	for _, r := range recs {
		var p struct{ N int }
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			t.Fatalf("payload %s: %v", r.Payload, err)
		}
		seen[p.N]++
	}
	dups := 0
	for _, k := range seen {
		if k > 1 {
			dups++
		}
	}
	drops := udpDrops(t, addr.Port)
	if dups > 0 || len(recs) != want {
		t.Fatalf("sent %d, kernel drops %d: %d records (%d distinct, %d duplicated), want %d exactly once",
			total, drops, len(recs), len(seen), dups, want)
	}
	if got := metric(t, s.adminAddr(), `hawk_udp_kernel_drops_total{listener="u"}`); uint64(got) != drops {
		t.Errorf("hawk_udp_kernel_drops_total %v, /proc/net/udp %d", got, drops)
	}
	t.Logf("%d upgrades: sent %d datagrams, kernel drops %d, stored %d exactly once", upgrades, total, drops, len(recs))
}
