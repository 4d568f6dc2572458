package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/client"
)

// lossyRelay forwards datagrams between one client and a server, dropping a
// fraction of them in each direction (this kernel has no netem).
type lossyRelay struct {
	down, up *net.UDPConn // the client's side; the server's side
	loss     float64
	client   atomic.Pointer[netip.AddrPort]
	dropped  [2]atomic.Int64 // to the server, to the client
	wg       sync.WaitGroup
}

func startLossyRelay(t *testing.T, server *net.UDPAddr, loss float64) *lossyRelay {
	t.Helper()
	down, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	up, err := net.DialUDP("udp", nil, server)
	if err != nil {
		t.Fatal(err)
	}
	r := &lossyRelay{down: down, up: up, loss: loss}
	r.wg.Add(2)
	go r.pump(func(b []byte) (int, error) {
		n, from, err := down.ReadFromUDPAddrPort(b)
		r.client.Store(&from)
		return n, err
	},
		func(b []byte) { up.Write(b) }, &r.dropped[0])
	go r.pump(up.Read, func(b []byte) {
		if to := r.client.Load(); to != nil {
			down.WriteToUDPAddrPort(b, *to)
		}
	}, &r.dropped[1])
	t.Cleanup(func() { down.Close(); up.Close(); r.wg.Wait() })
	return r
}

func (r *lossyRelay) pump(read func([]byte) (int, error), write func([]byte), dropped *atomic.Int64) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, err := read(buf)
		if err != nil {
			if strings.Contains(err.Error(), "use of closed") {
				return
			}
			continue // ECONNREFUSED while no process reads: the sender retransmits
		}
		if rand.Float64() < r.loss {
			dropped.Add(1)
			continue
		}
		write(buf[:n])
	}
}

// Report datagrams through a relay that loses 5% each way, across upgrades:
// every report is ACKed and stored exactly once (retransmits until ACKed, dedup).
func TestUDPReportsThroughALossyRelayAcrossUpgrades(t *testing.T) {
	const upgrades, senders, perSender = 4, 8, 250
	s := startServer(t, bin.serverV1, "-upgrade.handoff=false", "-drain.timeout=1s",
		`-udp.listeners=[{name: r, address: "127.0.0.1:0", format: report, allow: [127.0.0.0/8]}]`)
	relay := startLossyRelay(t, s.udpListening("r"), 0.05)
	const id = "udp-relay-agent"
	u, err := client.DialUDP(client.UDPOptions{Addr: relay.down.LocalAddr().String(), ClientID: id, FirstSeq: 1,
		FirstRetry: 100 * time.Millisecond, MaxRetry: time.Second, MaxAttempts: 60})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()

	var acked atomic.Int64
	errs := make(chan error, senders*perSender)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := range perSender {
				if _, err := u.Report(context.Background(), fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
					errs <- err
					continue
				}
				acked.Add(1)
			}
		})
	}
	for i := range upgrades {
		next := bin.serverV2
		if i%2 == 1 {
			next = bin.serverV1
		}
		s.upgradeRightAway(next, i+1)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("report not acked: %v", err)
	}
	const total = senders * perSender
	recs := spoolRecordsOf(t, s.spool, map[string]bool{id: true})
	seen := map[uint64]int{}
	for _, r := range recs {
		seen[r.Seq]++
	}
	var dups, missing []uint64
	for seq := uint64(1); seq <= total; seq++ {
		switch seen[seq] {
		case 0:
			missing = append(missing, seq)
		case 1:
		default:
			dups = append(dups, seq)
		}
	}
	if acked.Load() != total || len(recs) != total || len(dups) > 0 || len(missing) > 0 {
		t.Fatalf("%d reports, %d acked: %d records, duplicated %v, missing %v", total, acked.Load(), len(recs), dups, missing)
	}
	// hawkc speaks it too, through the same relay.
	out, err := exec.Command(bin.client, "send", "-udp", relay.down.LocalAddr().String(), "-id", "udp-hawkc", `{"x":1}`).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "acked seq=") {
		t.Fatalf("hawkc send -udp: %v: %s", err, out)
	}
	t.Logf("%d upgrades: %d reports acked and stored exactly once; the relay dropped %d to the server, %d to the client",
		upgrades, total, relay.dropped[0].Load(), relay.dropped[1].Load())
}
