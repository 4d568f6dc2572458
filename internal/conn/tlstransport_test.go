package conn

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/tlsconf"
)

// Reads of every shape reach the parser whole through the transport's "only what
// is buffered" read and its wait for readability: many frames in one TLS record,
// records larger than the read buffer (crypto/tls keeps what does not fit), a frame
// split across records sent apart, and a frame larger than the read buffer.
func TestTLSReadShapes(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthNone, false)
	s := tlsSettings(f)
	s.MaxFrameSize = 1 << 20
	ts := startServer(t, s)
	p := testutil.DialTLS(t, ts.addr, f.clientConfig())
	p.Hello("shapes", "")
	seq := uint64(0)
	frame := func(size int) []byte {
		seq++
		return protocol.AppendFrame(nil, protocol.TypeReport, seq, bytes.Repeat([]byte{'x'}, size))
	}
	expectAcks := func(upTo uint64) {
		t.Helper()
		for {
			fr := p.Expect(protocol.TypeAck)
			if fr.Seq == upTo {
				return
			}
		}
	}
	// 500 frames in one write: crypto/tls sends 16 KiB records, more than the
	// server's read buffer takes at once.
	var burst []byte
	for range 500 {
		burst = append(burst, frame(200)...)
	}
	p.Write(burst)
	expectAcks(seq)
	// One frame in three records, with pauses: the reader waits holding the partial
	// frame, then completes it.
	one := frame(3000)
	for _, part := range [][]byte{one[:5], one[5:1000], one[1000:]} {
		p.Write(part)
		time.Sleep(20 * time.Millisecond) // pacing: separate records and reads, not a wait
	}
	expectAcks(seq)
	// A frame four times the read buffer.
	p.Write(frame(4 * readBufSize))
	expectAcks(seq)
	// Quiet, then a heartbeat: the idle reader wakes for it.
	time.Sleep(50 * time.Millisecond)
	p.Send(protocol.TypePing, 9, nil)
	if fr := p.Expect(protocol.TypePong); fr.Seq != 9 {
		t.Fatalf("PONG seq %d, want 9", fr.Seq)
	}
}

// An idle TLS connection holds no read buffer: the reader waits for the socket, not
// in crypto/tls's Read with a 16 KiB buffer lent to it. 300 connections each send a
// report, then idle; the heap they hold, both ends in this process, stays under what
// the 16 KiB buffers alone would take.
func TestTLSIdleConnectionsHoldNoReadBuffer(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthNone, false)
	s := tlsSettings(f)
	s.HeartbeatTimeout = time.Minute
	s.MaxConns = 1000
	ts := startServer(t, s)
	const conns = 300
	heap := func() uint64 {
		runtime.GC()
		runtime.GC() // and the pools' victim caches
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	// One connection first, so that what every connection shares (the
	// configuration, the certificates, crypto/tls's pools) is in before.
	warm := testutil.DialTLS(t, ts.addr, f.clientConfig())
	warm.Hello("warm", "")
	before := heap()
	peers := make([]*testutil.Peer, conns)
	report := protocol.AppendFrame(nil, protocol.TypeReport, 1, []byte(`{"up":true}`))
	for i := range peers {
		peers[i] = testutil.DialTLS(t, ts.addr, f.clientConfig())
		peers[i].Hello(fmt.Sprintf("idle-%d", i), "")
		peers[i].Write(report)
		peers[i].Expect(protocol.TypeAck)
	}
	// Measured with Go 1.26: 20.7 KiB per connection for both ends' crypto/tls state
	// and sockets, 38.8 KiB when the server waits in tls.Conn.Read with its buffer.
	const limit = 28 << 10
	perConn := int64(heap()-before) / conns
	if perConn >= limit {
		t.Fatalf("%d B of heap per idle TLS connection (both ends), over %d B: the server holds a read buffer (%d B) while idle",
			perConn, limit, readBufSize)
	}
}

// dialTLSReadBuffer is testutil.DialReadBuffer over TLS.
func dialTLSReadBuffer(t *testing.T, addr string, n int, cfg *tls.Config) *testutil.Peer {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}); err != nil {
			return err
		}
		return serr
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(nc, cfg)
	t.Cleanup(func() { tc.Close() })
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return &testutil.Peer{T: t, Conn: tc}
}

// TestSlowlyReadingClientIsNotCut over TLS: the transport's writes record partial
// progress, so a client reading a large write slowly is not a slow consumer.
func TestTLSSlowlyReadingClientIsNotCut(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthNone, false)
	s := tlsSettings(f)
	s.WriteTimeout = 500 * time.Millisecond
	s.HeartbeatTimeout = time.Minute
	ts := startServer(t, s)
	p := dialTLSReadBuffer(t, ts.addr, 4096, f.clientConfig())
	p.Hello("sipper", "")
	c := serverConn(t, ts, "sipper")
	if err := c.transport().Conn.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	const pings = 20000 // 400 KB of PONGs, read at under 200 KB/s: over 2 s, 4 write timeouts
	p.Write(bytes.Repeat(protocol.AppendFrame(nil, protocol.TypePing, 1, nil), pings))
	var got int
	buf := make([]byte, 1024)
	for got < pings*protocol.HeaderSize+pings*protocol.TrailerSize {
		p.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := p.Conn.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes of PONGs: %v (closed: %v)", got, err, ts.obs.closed())
		}
		got += n
		time.Sleep(5 * time.Millisecond) // pacing: a slow reader, not a wait
	}
	if c := ts.obs.closed(); len(c) != 0 {
		t.Fatalf("a slowly reading TLS client was closed: %v", c)
	}
}

// A TLS client that reads nothing is still closed as a slow consumer.
func TestTLSNeverReadingClientIsASlowConsumer(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthNone, false)
	s := tlsSettings(f)
	s.WriteTimeout = 300 * time.Millisecond
	s.HeartbeatTimeout = time.Hour
	ts := startServer(t, s)
	p := dialTLSReadBuffer(t, ts.addr, 4096, f.clientConfig())
	p.Hello("deaf", "")
	burst := bytes.Repeat(protocol.AppendFrame(nil, protocol.TypePing, 1, nil), 4096)
	go func() {
		for {
			if _, err := p.Conn.Write(burst); err != nil {
				return
			}
		}
	}()
	testutil.Eventually(t, 10*time.Second, func() bool { return len(ts.obs.closed()) == 1 }, "the non-reading TLS client to be closed")
	if got := ts.obs.closed(); got[0] != ReasonSlowConsumer {
		t.Fatalf("closed with %v, want slow_consumer", got)
	}
}
