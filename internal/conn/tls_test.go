package conn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/hawk-agents/hawk/internal/auth"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/tlsconf"
)

type tlsFixture struct {
	ca, other *testutil.CA
	dir       string
	files     tlsconf.Files
	r         *tlsconf.Reloader
}

// newTLSFixture writes a server certificate and a client CA bundle holding ca (and
// other, when both is set) and loads them.
func newTLSFixture(t *testing.T, auth string, both bool) *tlsFixture {
	t.Helper()
	f := &tlsFixture{ca: testutil.NewCA(t, "hawk test CA"), other: testutil.NewCA(t, "other CA"), dir: t.TempDir()}
	srv := f.ca.ServerLeaf(t)
	bundle := f.ca.PEM
	if both {
		bundle = append(append([]byte(nil), f.ca.PEM...), f.other.PEM...)
	}
	f.files = tlsconf.Files{
		CertFile:     testutil.WriteFile(t, f.dir, "server.crt", srv.CertPEM),
		KeyFile:      testutil.WriteFile(t, f.dir, "server.key", srv.KeyPEM),
		ClientCAFile: testutil.WriteFile(t, f.dir, "ca.pem", bundle),
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   auth,
	}
	if auth == tlsconf.AuthNone {
		f.files.ClientCAFile = ""
	}
	r, err := tlsconf.New(f.files)
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	return f
}

func (f *tlsFixture) clientConfig(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: f.ca.Pool(), ServerName: "localhost", Certificates: certs}
}

// forcedConfig presents leaf whatever CAs the server names, as a misconfigured
// agent would: Go's client otherwise withholds a certificate the server cannot
// verify.
func (f *tlsFixture) forcedConfig(leaf *testutil.Leaf) *tls.Config {
	cfg := f.clientConfig()
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &leaf.TLS, nil }
	return cfg
}

// dialGoneAndKept connects two mutual-TLS agents to addr: gone with a
// certificate from f.other (the CA a test removes), kept with one from f.ca. It
// returns gone's certificate too.
func dialGoneAndKept(t *testing.T, f *tlsFixture, addr, gone, kept string) (pg, pk *testutil.Peer, goneLeaf *testutil.Leaf) {
	t.Helper()
	g := f.other.Issue(t, testutil.CertOpts{URIs: []string{gone}, Client: true})
	k := f.ca.Issue(t, testutil.CertOpts{URIs: []string{kept}, Client: true})
	pg = testutil.DialTLS(t, addr, f.clientConfig(g.TLS))
	pg.Hello(gone, "")
	pk = testutil.DialTLS(t, addr, f.clientConfig(k.TLS))
	pk.Hello(kept, "")
	return pg, pk, g
}

func tlsSettings(f *tlsFixture) *Settings {
	s := testSettings()
	s.TLS = f.r.Config()
	s.ClientIDFrom = tlsconf.FromURISAN
	return s
}

// expectTLSRefused fails unless the server ends the TLS session without a frame.
func expectTLSRefused(t *testing.T, ts *testServer, cfg *tls.Config) {
	t.Helper()
	p, err := testutil.DialTLSErr(t, ts.addr, cfg)
	if err == nil {
		// TLS 1.3: the client's handshake ends before the server checks its
		// certificate; the server's alert comes with the first read.
		p.Send(protocol.TypeHello, 0, []byte(`{"client_id":"x"}`))
		_, err = p.Next(5 * time.Second)
	}
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("TLS session was not refused: %v", err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return ts.logs.FilterField(zap.String("reason", "TLS handshake failed")).Len() > 0
	}, "no TLS handshake failure logged")
}

func TestTLSHandshakeAndReports(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthNone, false)
	ts := startServer(t, tlsSettings(f))
	p := testutil.DialTLS(t, ts.addr, f.clientConfig())
	p.Hello("agent-1", "")
	var stream []byte
	for seq := uint64(1); seq <= 20; seq++ {
		stream = protocol.AppendFrame(stream, protocol.TypeReport, seq, []byte(`{"n":1}`))
	}
	p.Write(stream)
	for seq := uint64(1); seq <= 20; seq++ {
		p.Expect(protocol.TypeAck)
	}
	p.Send(protocol.TypePing, 7, nil)
	if f := p.Expect(protocol.TypePong); f.Seq != 7 {
		t.Fatalf("PONG seq %d, want 7", f.Seq)
	}
	// A TLS 1.3 session is in hawk's record layer, so it can move at a handoff
	// (a TLS 1.2 one falls back for "tls": TestHandoffMovesTLS13Sessions).
	conns := ts.m.reg.Snapshot(nil)
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	if !conns[0].tlsMovable() {
		t.Fatal("a TLS 1.3 connection past HELLO is not in the record layer")
	}
}

func TestTLSPlaintextClientRefused(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthNone, false)
	ts := startServer(t, tlsSettings(f))
	p := testutil.Dial(t, ts.addr)
	p.Send(protocol.TypeHello, 0, []byte(`{"client_id":"x"}`))
	p.ExpectClosed()
}

// A client that opens TCP and never finishes the TLS handshake is cut at the
// handshake timeout, like one that never says HELLO.
func TestTLSStalledHandshakeCut(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthNone, false)
	s := tlsSettings(f)
	s.HandshakeTimeout = 200 * time.Millisecond
	ts := startServer(t, s)
	p := testutil.Dial(t, ts.addr)
	p.Write([]byte{0x16, 0x03, 0x01}) // the start of a ClientHello, then silence
	p.ExpectClosed()
	testutil.Eventually(t, 5*time.Second, func() bool { return ts.m.Count() == 0 }, "stalled handshake still registered")
}

func TestMTLSIdentity(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthRequired, false)
	ts := startServer(t, tlsSettings(f))
	leaf := f.ca.Issue(t, testutil.CertOpts{CN: "agent-1", URIs: []string{"spiffe://fleet/agent-1"}, Client: true})

	p := testutil.DialTLS(t, ts.addr, f.clientConfig(leaf.TLS))
	p.Hello("spiffe://fleet/agent-1", "")

	bad := testutil.DialTLS(t, ts.addr, f.clientConfig(leaf.TLS))
	bad.Send(protocol.TypeHello, 0, []byte(`{"client_id":"agent-2"}`))
	e := bad.ExpectError(protocol.CodeUnauthorized)
	if !strings.Contains(e.Message, `"agent-2"`) || !strings.Contains(e.Message, "spiffe://fleet/agent-1") {
		t.Fatalf("ERROR message %q does not name both ids", e.Message)
	}
}

func TestMTLSNoCertificateRefused(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthRequired, false)
	ts := startServer(t, tlsSettings(f))
	expectTLSRefused(t, ts, f.clientConfig())
}

func TestMTLSWrongCARefused(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthRequired, false)
	ts := startServer(t, tlsSettings(f))
	leaf := f.other.Issue(t, testutil.CertOpts{URIs: []string{"spiffe://fleet/a"}, Client: true})
	expectTLSRefused(t, ts, f.forcedConfig(leaf))
}

func TestMTLSExpiredRefused(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthRequired, false)
	ts := startServer(t, tlsSettings(f))
	leaf := f.ca.Issue(t, testutil.CertOpts{URIs: []string{"spiffe://fleet/a"}, Client: true,
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	expectTLSRefused(t, ts, f.forcedConfig(leaf))
}

func expectGoaway(t *testing.T, p *testutil.Peer, reason string) protocol.Goaway {
	t.Helper()
	f := p.Expect(protocol.TypeGoaway)
	var g protocol.Goaway
	if err := protocol.ParseJSON(f, &g); err != nil {
		t.Fatal(err)
	}
	if g.Reason != reason {
		t.Fatalf("GOAWAY reason %q, want %q", g.Reason, reason)
	}
	return g
}

// A connection admitted with a client certificate is told GOAWAY credentials
// before the certificate's NotAfter.
func TestMTLSExpiryGoaway(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthRequired, false)
	s := tlsSettings(f)
	s.ExpiryGoaway = time.Second
	ts := startServer(t, s)
	notAfter := time.Now().Add(3 * time.Second)
	leaf := f.ca.Issue(t, testutil.CertOpts{URIs: []string{"spiffe://fleet/a"}, Client: true, NotAfter: notAfter})
	p := testutil.DialTLS(t, ts.addr, f.clientConfig(leaf.TLS))
	p.Hello("spiffe://fleet/a", "")
	g := expectGoaway(t, p, GoawayCredentials)
	if now := time.Now(); !now.Before(notAfter) {
		t.Fatalf("GOAWAY at %s, not before NotAfter %s", now, notAfter)
	}
	if g.DeadlineMS <= 0 || g.ReconnectAfterMS > g.DeadlineMS {
		t.Fatalf("GOAWAY %+v: the client must be able to move before NotAfter", g)
	}
	// Not moving by the deadline ends the connection.
	p.ExpectError(protocol.CodeUnauthorized)
}

// A connection admitted inside the expiry window (the agent reconnected with the
// same certificate) is not told GOAWAY again: it would only reconnect in a loop.
// It is closed at NotAfter.
func TestMTLSAdmittedInsideExpiryWindow(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthRequired, false)
	s := tlsSettings(f)
	s.ExpiryGoaway = time.Hour
	ts := startServer(t, s)
	leaf := f.ca.Issue(t, testutil.CertOpts{URIs: []string{"spiffe://fleet/a"}, Client: true, NotAfter: time.Now().Add(2 * time.Second)})
	p := testutil.DialTLS(t, ts.addr, f.clientConfig(leaf.TLS))
	p.Hello("spiffe://fleet/a", "")
	fr, err := p.Next(5 * time.Second)
	if err != nil || fr.Type != protocol.TypeError {
		t.Fatalf("got %s (%v), want ERROR at NotAfter and no GOAWAY before it", fr.Type, err)
	}
	var e protocol.ErrorPayload
	if err := protocol.ParseJSON(fr, &e); err != nil {
		t.Fatal(err)
	}
	if e.Code != protocol.CodeUnauthorized || !strings.Contains(e.Message, "expired") {
		t.Fatalf("ERROR %q does not say the certificate expired", e.Message)
	}
}

// A reload that removes a CA from the bundle tells every connection it admitted
// GOAWAY credentials, and new handshakes with its certificates fail.
func TestMTLSCARemovedByReload(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthRequired, true)
	ts := startServer(t, tlsSettings(f))
	pg, pk, gone := dialGoneAndKept(t, f, ts.addr, "spiffe://fleet/old", "spiffe://fleet/new")

	testutil.WriteFile(t, f.dir, "ca.pem", f.ca.PEM)
	mat, err := f.r.Reload(nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := ts.m.CredentialsChanged(mat); n != 1 {
		t.Fatalf("%d connections told GOAWAY, want 1", n)
	}
	expectGoaway(t, pg, GoawayCredentials)
	expectTLSRefused(t, ts, f.forcedConfig(gone))
	// The connection whose CA stays is untouched.
	pk.Send(protocol.TypePing, 1, nil)
	pk.Expect(protocol.TypePong)
}

// BenchmarkTLSHandshake measures full connections per second over TLS 1.3 with an
// ECDSA P-256 certificate: TCP connect, TLS handshake, HELLO, WELCOME, close. The
// clients run in the same process, so the server gets about half the CPU.
func BenchmarkTLSHandshake(b *testing.B) {
	s, cfg := benchTLS(b)
	benchHandshakes(b, s, func(addr string) (net.Conn, error) { return tls.Dial("tcp", addr, cfg) }, benchHellos(""))
}

// benchTLS returns test settings serving TLS 1.3 with an ECDSA P-256
// certificate for localhost, and a client configuration that trusts it.
func benchTLS(b *testing.B) (*Settings, *tls.Config) {
	ca := testutil.NewCA(b, "bench CA")
	dir := b.TempDir()
	leaf := ca.ServerLeaf(b)
	r, err := tlsconf.New(tlsconf.Files{
		CertFile:   testutil.WriteFile(b, dir, "s.crt", leaf.CertPEM),
		KeyFile:    testutil.WriteFile(b, dir, "s.key", leaf.KeyPEM),
		MinVersion: tls.VersionTLS13,
	})
	if err != nil {
		b.Fatal(err)
	}
	s := testSettings()
	s.TLS = r.Config()
	return s, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
}

// benchHellos returns HELLOs with token, each for an id of its own: a HELLO for an
// id that is connected would replace it.
func benchHellos(token string) func() []byte {
	var n atomic.Int64
	return func() []byte {
		return protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: fmt.Sprintf("agent-04242-%d", n.Add(1)), Token: token})
	}
}

// benchHandshakes measures connect, HELLO and its answer on a Manager with s,
// from parallel clients dialing with dial and saying hello().
func benchHandshakes(b *testing.B, s *Settings, dial func(addr string) (net.Conn, error), hello func() []byte) {
	s.MaxConns = 1 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	m := New(Options{Settings: s, Destination: &fakeDest{}})
	done := make(chan struct{})
	go func() { defer close(done); m.Serve(ln) }()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var buf []byte
			c, err := dial(ln.Addr().String())
			if err != nil {
				b.Error(err)
				return
			}
			c.Write(hello())
			f, err := testutil.NextFrame(c, &buf, 5*time.Second)
			if err != nil || f.Type != protocol.TypeWelcome {
				b.Errorf("answer to HELLO: %v %q %v", f.Type, f.Payload, err)
			}
			c.Close()
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
	ln.Close()
	<-done
	closeAll(m, "bench over")
	m.Close()
}

// A connection whose TLS handshake is done but whose HELLO is not yet in when a
// reload removes its CA is told GOAWAY credentials as soon as it is admitted:
// CredentialsChanged looks only at active connections.
func TestMTLSCARemovedBeforeHello(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthRequired, true)
	ts := startServer(t, tlsSettings(f))
	gone := f.other.Issue(t, testutil.CertOpts{URIs: []string{"spiffe://fleet/old"}, Client: true})
	p := testutil.DialTLS(t, ts.addr, f.clientConfig(gone.TLS))
	// The server has finished its side of the handshake once it has the
	// connection's TLS state.
	testutil.Eventually(t, 5*time.Second, func() bool {
		n := 0
		ts.m.tlsConns.Range(func(any, any) bool { n++; return true })
		return n == 1
	}, "the server's side of the TLS handshake")

	testutil.WriteFile(t, f.dir, "ca.pem", f.ca.PEM)
	mat, err := f.r.Reload(nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := ts.m.CredentialsChanged(mat); n != 0 {
		t.Fatalf("%d active connections told GOAWAY, want 0 (the only one has not said HELLO)", n)
	}
	p.Hello("spiffe://fleet/old", "")
	expectGoaway(t, p, GoawayCredentials)
}

// Tokens keep working under TLS, alone (no client certificates) and together with
// mutual TLS: both must hold.
func TestTLSWithTokens(t *testing.T) {
	t.Run("alone", func(t *testing.T) {
		f := newTLSFixture(t, tlsconf.AuthNone, false)
		s := tlsSettings(f)
		s.Auth = auth.MustSet("t good *")
		ts := startServer(t, s)
		testutil.DialTLS(t, ts.addr, f.clientConfig()).Hello("agent-1", "good")
		bad := testutil.DialTLS(t, ts.addr, f.clientConfig())
		bad.Send(protocol.TypeHello, 0, []byte(`{"client_id":"agent-2","token":"bad"}`))
		bad.ExpectError(protocol.CodeUnauthorized)
	})
	t.Run("with mutual TLS", func(t *testing.T) {
		f := newTLSFixture(t, tlsconf.AuthRequired, false)
		s := tlsSettings(f)
		s.Auth = auth.MustSet("t good *")
		ts := startServer(t, s)
		leaf := f.ca.Issue(t, testutil.CertOpts{URIs: []string{"spiffe://fleet/a"}, Client: true})
		testutil.DialTLS(t, ts.addr, f.clientConfig(leaf.TLS)).Hello("spiffe://fleet/a", "good")
		bad := testutil.DialTLS(t, ts.addr, f.clientConfig(leaf.TLS))
		bad.Send(protocol.TypeHello, 0, []byte(`{"client_id":"spiffe://fleet/a","token":"bad"}`))
		if e := bad.ExpectError(protocol.CodeUnauthorized); !strings.Contains(e.Message, "token") {
			t.Fatalf("ERROR %q: a valid certificate with a bad token must be refused for the token", e.Message)
		}
	})
}
