package client

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// udpServer answers report datagrams with ACKs, ignoring the first `drop` copies
// of each seq; it counts what it received per seq.
type udpServer struct {
	conn *net.UDPConn
	drop int
	mu   sync.Mutex
	got  map[uint64]int
	done chan struct{}
}

func newUDPServer(t *testing.T, drop int) *udpServer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &udpServer{conn: c, drop: drop, got: map[uint64]int{}, done: make(chan struct{})}
	go s.serve(t)
	t.Cleanup(func() { c.Close(); <-s.done })
	return s
}

func (s *udpServer) serve(t *testing.T) {
	defer close(s.done)
	buf := make([]byte, 2048)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		g, err := protocol.DecodeDatagram(buf[:n])
		if err != nil || string(g.ClientID) != "agent-1" || string(g.Token) != "tok" {
			t.Errorf("bad datagram % x: %v", buf[:n], err)
			continue
		}
		s.mu.Lock()
		s.got[g.Report.Seq]++
		k := s.got[g.Report.Seq]
		s.mu.Unlock()
		if k > s.drop {
			s.conn.WriteToUDPAddrPort(protocol.AppendFrame(nil, protocol.TypeAck, g.Report.Seq, nil), from)
		}
	}
}

func (s *udpServer) dial(t *testing.T, attempts int) *UDP {
	t.Helper()
	u, err := DialUDP(UDPOptions{Addr: s.conn.LocalAddr().String(), ClientID: "agent-1", Token: "tok", FirstSeq: 100,
		FirstRetry: 10 * time.Millisecond, MaxRetry: 40 * time.Millisecond, MaxAttempts: attempts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

func TestUDPReportRetransmitsUntilAcked(t *testing.T) {
	s := newUDPServer(t, 2)
	u := s.dial(t, 10)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := u.Report(context.Background(), []byte("x")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != 20 {
		t.Fatalf("%d seqs received, want 20", len(s.got))
	}
	for seq, n := range s.got {
		if seq < 100 || seq >= 120 || n < 3 {
			t.Errorf("seq %d sent %d times: want 100..119, each at least 3 times (2 dropped)", seq, n)
		}
	}
}

func TestUDPReportGivesUpAfterMaxAttempts(t *testing.T) {
	s := newUDPServer(t, 1<<30)
	u := s.dial(t, 3)
	seq, err := u.Report(context.Background(), []byte("x"))
	if !errors.Is(err, ErrNoAck) {
		t.Fatalf("Report = %v, want ErrNoAck", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got[seq] != 3 {
		t.Fatalf("sent %d times, want 3", s.got[seq])
	}
}

func TestUDPReportEndsAtClose(t *testing.T) {
	s := newUDPServer(t, 1<<30)
	u := s.dial(t, 1000)
	errc := make(chan error, 1)
	go func() { _, err := u.Report(context.Background(), []byte("x")); errc <- err }()
	testutil.Eventually(t, 5*time.Second, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.got) > 0 }, "a datagram sent")
	u.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Report = %v, want ErrClosed", err)
	}
}
