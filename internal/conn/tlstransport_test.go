package conn

import (
	"bytes"
	"fmt"
	"runtime"
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
	time.Sleep(50 * time.Millisecond) // pacing: the reader goes back to waiting, not a wait for a condition
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
	// Measured with Go 1.26: 18.5–21.3 KiB per connection for both ends' crypto/tls
	// state and sockets, 38.8 KiB when the server waits in tls.Conn.Read with its
	// read buffer.
	const limit = 28 << 10
	perConn := int64(heap()-before) / conns
	t.Logf("heap per idle TLS connection, both ends: %d B", perConn)
	if perConn >= limit {
		t.Fatalf("%d B of heap per idle TLS connection (both ends), over %d B: the server holds a read buffer (%d B) while idle",
			perConn, limit, readBufSize)
	}
}
