package legacyset

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/spool"
	"github.com/hawk-agents/hawk/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// /v1/connections lists legacy connections beside native ones, by id across both,
// with their listener and format; the set drains and closes its listeners.
func TestConnectionsListsLegacy(t *testing.T) {
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(t.TempDir(), "spool")})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	conns := conn.New(conn.Options{Settings: &conn.Settings{WriteTimeout: time.Second, HandshakeTimeout: time.Second,
		HeartbeatTimeout: time.Second, FrameTimeout: time.Second}, Destination: sp})
	defer conns.Close()
	cfgs := []config.LegacyListener{{Name: "m", Address: "127.0.0.1:0", Format: "c8c9", Allow: []string{"127.0.0.0/8"},
		IdleTimeout: time.Minute, MaxFrameSize: 1024}}
	s, err := Listen(cfgs, func(_, addr string) (net.Listener, error) { return net.Listen("tcp", addr) }, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(Options{Destination: sp, Metrics: metrics.New("test", conns.Count), Conns: conns}); err != nil {
		s.Close()
		t.Fatal(err)
	}
	go s.list[0].l.Serve(s.list[0].ln)
	conns.NewID() // a native id taken first: the legacy one comes after it
	nc, err := net.Dial("tcp", s.list[0].ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	testutil.Eventually(t, 5*time.Second, func() bool { return len(s.Connections(conns, 0, 10)) == 1 }, "the legacy connection listed")
	got := s.Connections(conns, 0, 10)[0]
	if got.ID != 2 || got.Listener != "m" || got.Format != "c8c9" || got.ClientID != "c8c9:"+nc.LocalAddr().String() {
		t.Errorf("listed %+v", got)
	}
	if rest := s.Connections(conns, got.ID, 10); len(rest) != 0 {
		t.Errorf("after %d: %+v", got.ID, rest)
	}
	s.list[0].ln.Close()
	select {
	case <-s.Drain(context.Background(), 0):
	case <-time.After(5 * time.Second):
		t.Fatal("the drain did not end")
	}
	if n := s.list[0].l.Count(); n != 0 {
		t.Fatalf("%d connections left after the drain", n)
	}
}
