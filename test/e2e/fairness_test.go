package e2e

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// dialProtoFrom opens a TCP connection to addr from the loopback address local
// (any of 127.0.0.0/8 on Linux), as an agent on another host would.
func dialProtoFrom(local, addr string, timeout time.Duration) (*protoConn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &protoConn{Conn: c}, nil
}

// isBusy tells whether err is ERROR busy.
func isBusy(err error) bool {
	var pe *protoErr
	return errors.As(err, &pe) && pe.Code == protocol.CodeBusy
}

// flood connects from local to addr as fast as workers can until stop is closed:
// connections that are not refused are held open without a HELLO, like a
// broken agent's or a scanner's. It returns how many were refused busy and how
// many it held once stop is closed and every worker has ended.
func flood(local, addr string, workers int, stop <-chan struct{}) (wait func() (busy, held int64)) {
	var busy, held atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p, err := dialProtoFrom(local, addr, time.Second)
				if err != nil {
					continue
				}
				if _, err := p.next(20 * time.Millisecond); err == nil {
					busy.Add(1) // the ERROR busy at accept
					p.Close()
					continue
				}
				held.Add(1)
				mu.Lock()
				open = append(open, p.Conn)
				mu.Unlock()
			}
		}()
	}
	return func() (int64, int64) {
		wg.Wait()
		for _, c := range open {
			c.Close()
		}
		return busy.Load(), held.Load()
	}
}

// TestFloodFromOneSourceOthersNotBusy: one address connects in a loop and holds
// every connection it gets without a HELLO, far over limits.handshake_rate, while
// agents from eight other addresses connect at 10/s each: none of them is refused
// busy, the flood is, and the metrics and the log say so.
func TestFloodFromOneSourceOthersNotBusy(t *testing.T) {
	s := startServer(t, bin.serverV1, fmt.Sprintf("-limits.handshake_rate=%d", fairRate), "-handshake.timeout=2s")
	checkFloodFair(t, s, s.addr())
}

// TestFloodThroughHAProxyOthersNotBusy: the same through HAProxy, where every
// connection comes from the balancer's address: with send-proxy-v2 and
// listen_proxy_from naming the balancer, hawk tells the agents apart.
func TestFloodThroughHAProxyOthersNotBusy(t *testing.T) {
	port, admin := freePort(t), freePort(t)
	for admin == port {
		admin = freePort(t)
	}
	s := startServer(t, bin.serverV1, fmt.Sprintf("-limits.handshake_rate=%d", fairRate), "-handshake.timeout=2s",
		fmt.Sprintf("-listen=127.0.0.1:%d", port), fmt.Sprintf("-admin.addr=127.0.0.1:%d", admin),
		"-listen_proxy_from=127.0.0.1")
	front := haproxy(t, [][2]int{{port, admin}}, "send-proxy-v2")
	checkFloodFair(t, s, front)
}

const fairRate = 200

// checkFloodFair floods addr (s, or a balancer in front of it) from 127.0.0.2
// while agents from 127.0.0.3-10 connect, and checks that none of them is busy.
func checkFloodFair(t *testing.T, s *server, addr string) {
	admin := s.adminAddr()
	stop := make(chan struct{})
	floodWait := flood("127.0.0.2", addr, 16, stop)
	stopped := false
	stopFlood := func() (int64, int64) {
		if !stopped {
			close(stop)
			stopped = true
		}
		return floodWait()
	}
	defer stopFlood()
	// The flood is over the rate before the others start.
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, admin, `hawk_admissions_busy_by_share_total{share="over"}`) < 50 {
		if time.Now().After(deadline) {
			t.Fatal("the flood was not refused busy within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	var othersBusy, othersOK atomic.Int64
	var otherErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for i := range 8 {
		local := fmt.Sprintf("127.0.0.%d", 3+i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 12 * time.Millisecond) // staggered
			for n := range 30 {
				p, err := dialProtoFrom(local, addr, 5*time.Second)
				if err == nil {
					_, err = p.hello(fmt.Sprintf("fair-%d-%d", i, n), 5*time.Second)
					p.Close()
				}
				switch {
				case err == nil:
					othersOK.Add(1)
				case isBusy(err):
					othersBusy.Add(1)
				default:
					otherErr.CompareAndSwap(nil, &err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	floodBusy, floodHeld := stopFlood()
	within := metric(t, admin, `hawk_admissions_busy_by_share_total{share="within"}`)
	over := metric(t, admin, `hawk_admissions_busy_by_share_total{share="over"}`)
	t.Logf("others: %d welcomed, %d busy; flood: %d busy, %d held; busy by share: within %.0f, over %.0f",
		othersOK.Load(), othersBusy.Load(), floodBusy, floodHeld, within, over)
	if p := otherErr.Load(); p != nil {
		t.Fatalf("an agent failed otherwise than busy: %v", *p)
	}
	if othersBusy.Load() != 0 || othersOK.Load() != 8*30 {
		t.Errorf("agents from other addresses: %d welcomed, %d refused busy; want all 240 welcomed", othersOK.Load(), othersBusy.Load())
	}
	if floodBusy == 0 || floodHeld == 0 {
		t.Errorf("the flood had %d refused and %d held: it must be both, to contend for the rate", floodBusy, floodHeld)
	}
	if within != 0 || over == 0 {
		t.Errorf("busy refusals by share: within %.0f, over %.0f; want 0 and some", within, over)
	}
	s.waitLog(5*time.Second, func(l logLine) bool {
		return l.str("msg") == "connections refused: over limits.handshake_rate" && l.str("most_refused_source") == "127.0.0.2"
	})
}
