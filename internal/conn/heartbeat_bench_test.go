package conn

import (
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// BenchmarkHeartbeat is an idle agent's heartbeat as the server serves it: a
// PING in, a PONG out, over plaintext and TLS 1.3 (the record layer), with the
// reader taking its idle path at every PING (a TLS reader waits on a fresh
// goroutine, tlsidle.go). The client writes pre-encoded frames and reads into a
// fixed buffer, and crypto/tls's client allocates nothing per record once
// running, so allocs/op is the server's per heartbeat.
//
//	go test -run - -bench Heartbeat -benchmem ./internal/conn/
func BenchmarkHeartbeat(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		benchHeartbeat(b, testSettings(), func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) })
	})
	b.Run("tls", func(b *testing.B) {
		s, cfg := benchTLS(b)
		benchHeartbeat(b, s, func(addr string) (net.Conn, error) { return tls.Dial("tcp", addr, cfg) })
	})
}

func benchHeartbeat(b *testing.B, s *Settings, dial func(addr string) (net.Conn, error)) {
	defer func(d int64) { respawnAfter = d }(respawnAfter)
	respawnAfter = 0
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	m := New(Options{Settings: s, Destination: &fakeDest{}})
	done := make(chan struct{})
	go func() { defer close(done); m.Serve(ln) }()
	defer func() {
		ln.Close()
		<-done
		closeAll(m, "bench over")
		m.Close()
	}()
	c, err := dial(ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.Write(protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "agent-1"}))
	var buf []byte
	if f, err := testutil.NextFrame(c, &buf, 5e9); err != nil || f.Type != protocol.TypeWelcome {
		b.Fatalf("answer to HELLO: %v %v", f.Type, err)
	}
	ping := protocol.AppendFrame(nil, protocol.TypePing, 1, nil)
	pong := make([]byte, len(protocol.AppendFrame(nil, protocol.TypePong, 1, nil)))
	beat := func() {
		if _, err := c.Write(ping); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, pong); err != nil {
			b.Fatal(err)
		}
	}
	for range 100 { // pools and free goroutines filled
		beat()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		beat()
	}
}
