package testutil

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// Peer is a raw protocol client for tests that need to send exactly the bytes they
// choose (malformed frames, no HELLO, never reading) and see every frame back.
type Peer struct {
	T    testing.TB
	Conn net.Conn
	buf  []byte
}

// Dial connects a Peer to addr; the connection is closed when the test ends.
func Dial(t testing.TB, addr string) *Peer {
	t.Helper()
	return dial(t, &net.Dialer{Timeout: 5 * time.Second}, addr)
}

// DialReadBuffer connects a Peer whose socket receive buffer is n bytes, for a
// peer that never reads and must make the server's writes block soon. The size is
// set before connecting: shrinking it on an established connection, below the
// window already advertised, makes the kernel drop the server's segments and back
// off for seconds, which stalls the test rather than the server.
func DialReadBuffer(t testing.TB, addr string, n int) *Peer {
	t.Helper()
	return dial(t, readBufferDialer(n), addr)
}

// DialTLSReadBuffer is DialReadBuffer over TLS.
func DialTLSReadBuffer(t testing.TB, addr string, n int, cfg *tls.Config) *Peer {
	t.Helper()
	p, err := dialTLS(t, readBufferDialer(n), addr, cfg)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	return p
}

func readBufferDialer(n int) *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}); err != nil {
			return err
		}
		return serr
	}}
}

func dial(t testing.TB, d *net.Dialer, addr string) *Peer {
	t.Helper()
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &Peer{T: t, Conn: c}
}

// Send writes one frame.
func (p *Peer) Send(typ protocol.Type, seq uint64, payload []byte) {
	p.T.Helper()
	p.Write(protocol.AppendFrame(nil, typ, seq, payload))
}

// Write writes raw bytes.
func (p *Peer) Write(b []byte) {
	p.T.Helper()
	p.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.Conn.Write(b); err != nil {
		p.T.Fatalf("write: %v", err)
	}
}

// Hello sends HELLO and expects WELCOME.
func (p *Peer) Hello(clientID, token string) protocol.Welcome {
	p.T.Helper()
	return p.HelloWith(protocol.Hello{ClientID: clientID, Token: token, ClientVersion: "test"})
}

// HelloWith sends HELLO with h's fields and expects WELCOME.
func (p *Peer) HelloWith(h protocol.Hello) protocol.Welcome {
	p.T.Helper()
	p.Write(protocol.AppendJSON(nil, protocol.TypeHello, 0, &h))
	f := p.Expect(protocol.TypeWelcome)
	var w protocol.Welcome
	if err := protocol.ParseJSON(f, &w); err != nil {
		p.T.Fatalf("WELCOME: %v", err)
	}
	return w
}

// Next reads the next frame, waiting up to timeout. err is io.EOF (or another
// read error) when the server closed the connection.
func (p *Peer) Next(timeout time.Duration) (protocol.Frame, error) {
	return NextFrame(p.Conn, &p.buf, timeout)
}

// DeadlineReader is what NextFrame reads from: a connection, or a pipe (*os.File)
// from a peer process.
type DeadlineReader interface {
	Read(p []byte) (int, error)
	SetReadDeadline(t time.Time) error
}

// NextFrame reads the next whole frame from c, keeping what follows it in *buf for
// the next call, and waits up to timeout. It returns errors rather than failing a
// test, so that tests can use it from any goroutine. err is io.EOF (or another read
// error) when the peer closed the connection.
func NextFrame(c DeadlineReader, buf *[]byte, timeout time.Duration) (protocol.Frame, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	var chunk []byte
	for {
		f, n, err := protocol.Decode(*buf, protocol.MaxPayloadLimit)
		if err != nil {
			return f, err
		}
		if n > 0 {
			f.Payload = append([]byte(nil), f.Payload...)
			*buf = (*buf)[n:]
			return f, nil
		}
		if chunk == nil {
			chunk = make([]byte, 64<<10)
		}
		m, err := c.Read(chunk)
		*buf = append(*buf, chunk[:m]...)
		if err != nil && m == 0 {
			return f, err
		}
	}
}

// Expect reads the next frame and fails the test unless it has type typ.
func (p *Peer) Expect(typ protocol.Type) protocol.Frame {
	p.T.Helper()
	f, err := p.Next(5 * time.Second)
	if err != nil {
		p.T.Fatalf("waiting for %s: %v", typ, err)
	}
	if f.Type != typ {
		p.T.Fatalf("got %s (seq %d, payload %q), want %s", f.Type, f.Seq, f.Payload, typ)
	}
	return f
}

// ExpectError reads frames until an ERROR arrives (skipping ACKs and the like), checks
// its code, and then expects the server to close the connection.
func (p *Peer) ExpectError(code protocol.Code) protocol.ErrorPayload {
	p.T.Helper()
	for {
		f, err := p.Next(5 * time.Second)
		if err != nil {
			p.T.Fatalf("waiting for ERROR %s: %v", code, err)
		}
		if f.Type != protocol.TypeError {
			continue
		}
		var e protocol.ErrorPayload
		if err := protocol.ParseJSON(f, &e); err != nil {
			p.T.Fatalf("ERROR payload: %v", err)
		}
		if e.Code != code {
			p.T.Fatalf("ERROR code %q (%s), want %q", e.Code, e.Message, code)
		}
		p.ExpectClosed()
		return e
	}
}

// ExpectClosed fails the test unless the server closes the connection (after any
// frames still in flight) within a few seconds.
func (p *Peer) ExpectClosed() {
	p.T.Helper()
	for {
		f, err := p.Next(5 * time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				p.T.Fatalf("connection still open: %v", err)
			}
			return // EOF or reset: closed
		}
		if f.Type == protocol.TypeError {
			continue
		}
	}
}

// DialTLS connects a Peer over TLS with cfg and completes the TLS handshake; it
// fails the test if the handshake fails (DialTLSErr returns the error instead).
func DialTLS(t testing.TB, addr string, cfg *tls.Config) *Peer {
	t.Helper()
	p, err := DialTLSErr(t, addr, cfg)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	return p
}

// DialTLSErr is DialTLS returning the handshake's error.
func DialTLSErr(t testing.TB, addr string, cfg *tls.Config) (*Peer, error) {
	t.Helper()
	return dialTLS(t, &net.Dialer{Timeout: 5 * time.Second}, addr, cfg)
}

func dialTLS(t testing.TB, nd *net.Dialer, addr string, cfg *tls.Config) (*Peer, error) {
	t.Helper()
	d := &tls.Dialer{NetDialer: nd, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &Peer{T: t, Conn: c}, nil
}
