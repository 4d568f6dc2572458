package e2e

import (
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// Mutual TLS against the built binary: what internal/conn's TLS tests prove
// in-process, here through cmd/server's wiring (the tls.* keys to conn.Settings,
// reloadTLS on SIGUSR1 and on the TLS file poll, CredentialsChanged) and the
// metrics and logs an operator sees.

// mtlsQuiet keeps idle test peers, which send no PINGs, from being cut by the
// heartbeat timeout (3 × the 1 s interval of serverConfig) while a test waits on
// a reload or a certificate's expiry.
const mtlsQuiet = "-heartbeat.interval=10s"

// agentLeaf issues a client certificate from ca naming the agent by URI SAN
// uri and by common name cn.
func agentLeaf(t *testing.T, ca *testutil.CA, cn, uri string) *testutil.Leaf {
	t.Helper()
	return ca.Issue(t, testutil.CertOpts{CN: cn, URIs: []string{uri}, Client: true})
}

// dialAgent completes the TLS handshake presenting leaf and a HELLO as id, and
// fails the test unless WELCOME answers.
func dialAgent(t *testing.T, s *server, f *tlsFiles, leaf *testutil.Leaf, id string) *testutil.Peer {
	t.Helper()
	p := testutil.DialTLS(t, s.addr(), mtlsClientConfig(f, leaf))
	p.Hello(id, "")
	return p
}

// sendHello writes a HELLO as id without waiting for the answer.
func sendHello(p *testutil.Peer, id string) {
	p.T.Helper()
	p.Write(protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: id, ClientVersion: "e2e"}))
}

// expectMTLSRefused fails unless the server ends a TLS session presenting cfg's
// certificate before any frame: the handshake fails, or (TLS 1.3, where the
// client's side of the handshake ends before the server has checked its
// certificate) the server's alert comes with the first read.
func expectMTLSRefused(t *testing.T, addr string, cfg *tls.Config) {
	t.Helper()
	p, err := testutil.DialTLSErr(t, addr, cfg)
	if err == nil {
		// The write may already fail on the alert; the read says what happened.
		p.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		p.Conn.Write(protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "refused", ClientVersion: "e2e"}))
		var f protocol.Frame
		f, err = p.Next(15 * time.Second)
		if err == nil {
			t.Fatalf("TLS session not refused: the server answered %s %q", f.Type, f.Payload)
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("TLS session neither refused nor answered: %v", err)
	}
	t.Logf("refused as expected: %v", err)
}

// expectGoawayCredentials reads the next frame, within timeout, and fails unless
// it is GOAWAY credentials whose deadline is positive, at most maxDeadline, and
// not shorter than its reconnect_after_ms.
func expectGoawayCredentials(t *testing.T, p *testutil.Peer, timeout, maxDeadline time.Duration) protocol.Goaway {
	t.Helper()
	f, err := p.Next(timeout)
	if err != nil {
		t.Fatalf("waiting for GOAWAY credentials: %v", err)
	}
	if f.Type != protocol.TypeGoaway {
		t.Fatalf("got %s %q, want GOAWAY credentials", f.Type, f.Payload)
	}
	var g protocol.Goaway
	if err := protocol.ParseJSON(f, &g); err != nil {
		t.Fatal(err)
	}
	if g.Reason != "credentials" {
		t.Fatalf("GOAWAY reason %q, want credentials", g.Reason)
	}
	if g.DeadlineMS <= 0 || g.DeadlineMS > maxDeadline.Milliseconds() || g.ReconnectAfterMS < 0 || g.ReconnectAfterMS > g.DeadlineMS {
		t.Fatalf("GOAWAY %+v: want 0 < deadline_ms ≤ %d and 0 ≤ reconnect_after_ms ≤ deadline_ms", g, maxDeadline.Milliseconds())
	}
	return g
}

// expectUnauthorizedClose reads the next frame, within timeout, and fails unless
// it is ERROR unauthorized followed by the server closing the connection: no
// second GOAWAY, no other frame.
func expectUnauthorizedClose(t *testing.T, p *testutil.Peer, timeout time.Duration) protocol.ErrorPayload {
	t.Helper()
	f, err := p.Next(timeout)
	if err != nil {
		t.Fatalf("waiting for ERROR unauthorized: %v", err)
	}
	if f.Type != protocol.TypeError {
		t.Fatalf("got %s %q, want ERROR unauthorized", f.Type, f.Payload)
	}
	var e protocol.ErrorPayload
	if err := protocol.ParseJSON(f, &e); err != nil {
		t.Fatal(err)
	}
	if e.Code != protocol.CodeUnauthorized {
		t.Fatalf("ERROR %s (%s), want unauthorized", e.Code, e.Message)
	}
	p.ExpectClosed()
	return e
}

// expectPong sends PING seq and fails unless the very next frame is its PONG: a
// connection the server left alone gets nothing else.
func expectPong(t *testing.T, p *testutil.Peer, seq uint64) {
	t.Helper()
	p.Send(protocol.TypePing, seq, nil)
	if f := p.Expect(protocol.TypePong); f.Seq != seq {
		t.Fatalf("PONG seq %d, want %d", f.Seq, seq)
	}
}

// The client certificate names the client: a HELLO with the id the certificate
// names (by tls.client_id_from) is admitted and its reports stored; a HELLO with
// any other id is refused with ERROR unauthorized naming both ids, and the
// connection closed. Both subtests use one certificate whose URI SAN and CN
// differ, so each proves the key is read, not just that some field matches.
func TestMTLSIdentityAgainstBinary(t *testing.T) {
	for _, tc := range []struct{ from, good, bad string }{
		{"uri_san", "spiffe://fleet/agent-1", "agent-1"},
		{"cn", "agent-1", "spiffe://fleet/agent-1"},
	} {
		t.Run(tc.from, func(t *testing.T) {
			f := newTLSFiles(t)
			fleet := testutil.NewCA(t, "fleet CA")
			f.writeClientCAs(t, fleet)
			s := startServer(t, bin.serverV1, f.mtlsFlags(tc.from)...)
			leaf := agentLeaf(t, fleet, "agent-1", "spiffe://fleet/agent-1")

			p := dialAgent(t, s, f, leaf, tc.good)
			p.Send(protocol.TypeReport, 1, []byte(`{"mtls":true}`))
			if a := p.Expect(protocol.TypeAck); a.Seq != 1 {
				t.Fatalf("ACK seq %d, want 1", a.Seq)
			}

			bad := testutil.DialTLS(t, s.addr(), mtlsClientConfig(f, leaf))
			sendHello(bad, tc.bad)
			e := bad.ExpectError(protocol.CodeUnauthorized)
			if !strings.Contains(e.Message, `"`+tc.bad+`"`) || !strings.Contains(e.Message, `"`+tc.good+`"`) || !strings.Contains(e.Message, tc.from) {
				t.Fatalf("ERROR message %q does not name HELLO's id %q, the certificate's %q and %s", e.Message, tc.bad, tc.good, tc.from)
			}
			s.waitLog(10*time.Second, func(l logLine) bool {
				return l.str("msg") == "handshake failed" && l.str("reason") == "client id does not match the client certificate" &&
					l.str("client_id") == tc.bad && l.str("cert_id") == tc.good
			})
			// The admitted connection is untouched by the refused one.
			expectPong(t, p, 1)
			// The ACK came after the record was written: it is in the spool now,
			// stored under the id the certificate names.
			checkSpool(t, readSpool(t, s.spool).records, map[string]int{tc.good + " 1": 1}, true)
		})
	}
}

// With tls.client_auth=required, no certificate, a certificate from a CA not in
// the bundle, and an expired certificate from the right CA are each refused at
// the TLS handshake (no WELCOME), and each is counted in
// hawk_tls_handshake_failures_total; a valid certificate on the same server is
// admitted, so the refusals are the certificates', not the setup's.
func TestMTLSRefusalsAgainstBinary(t *testing.T) {
	f := newTLSFiles(t)
	fleet, other := testutil.NewCA(t, "fleet CA"), testutil.NewCA(t, "other CA")
	f.writeClientCAs(t, fleet)
	s := startServer(t, bin.serverV1, f.mtlsFlags("uri_san")...)
	admin := s.adminAddr()
	base := metric(t, admin, "hawk_tls_handshake_failures_total")

	cases := []struct {
		name string
		leaf *testutil.Leaf
	}{
		{"no certificate", nil},
		{"another CA", agentLeaf(t, other, "a", "spiffe://fleet/a")},
		{"expired", fleet.Issue(t, testutil.CertOpts{URIs: []string{"spiffe://fleet/a"}, Client: true,
			NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { expectMTLSRefused(t, s.addr(), mtlsClientConfig(f, c.leaf)) })
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		return metric(t, admin, "hawk_tls_handshake_failures_total") >= base+float64(len(cases))
	}, "hawk_tls_handshake_failures_total to rise by %d from %v", len(cases), base)

	p := dialAgent(t, s, f, agentLeaf(t, fleet, "a", "spiffe://fleet/a"), "spiffe://fleet/a")
	expectPong(t, p, 1)
}

// The operator's client CA rotation: a reload that removes CA-old from the
// bundle tells the connection admitted with a CA-old certificate GOAWAY
// credentials with drain.timeout as its deadline, and closes it with ERROR
// unauthorized at that deadline when it stays; the connection with a CA-new
// certificate is left alone; a CA-old certificate cannot come back, a CA-new one
// can. The reload comes by SIGUSR1 and, with no signal, by the TLS file poll.
func TestMTLSCARemovedByReloadAgainstBinary(t *testing.T) {
	const drain = 3 * time.Second
	for _, tc := range []struct {
		name, trigger string
		signal        bool
	}{
		{"SIGUSR1", "SIGUSR1", true},
		{"file poll", "tls file changed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits out a drain deadline on its own server
			f := newTLSFiles(t)
			caOld, caNew := testutil.NewCA(t, "CA-old"), testutil.NewCA(t, "CA-new")
			f.writeClientCAs(t, caOld, caNew)
			s := startServer(t, bin.serverV1, append(f.mtlsFlags("uri_san"), "-drain.timeout="+drain.String(), mtlsQuiet)...)
			oldLeaf := agentLeaf(t, caOld, "old", "spiffe://fleet/old")
			newLeaf := agentLeaf(t, caNew, "new", "spiffe://fleet/new")
			a := dialAgent(t, s, f, oldLeaf, "spiffe://fleet/old")
			b := dialAgent(t, s, f, newLeaf, "spiffe://fleet/new")

			f.writeClientCAs(t, caNew)
			if tc.signal {
				s.signal(s.pid(), syscall.SIGUSR1)
			}
			g := expectGoawayCredentials(t, a, 15*time.Second, drain)
			told := time.Now()

			expectPong(t, b, 1)
			expectMTLSRefused(t, s.addr(), mtlsClientConfig(f, oldLeaf))
			// Another agent: a second connection as spiffe://fleet/new would replace b.
			expectPong(t, dialAgent(t, s, f, agentLeaf(t, caNew, "new-2", "spiffe://fleet/new-2"), "spiffe://fleet/new-2"), 1)
			s.waitLog(10*time.Second, func(l logLine) bool {
				return l.str("msg") == "TLS files reloaded" && l.str("trigger") == tc.trigger &&
					l.num("client_cas") == 1 && l.num("connections_told_goaway_credentials") == 1
			})

			// A stays: closed at the deadline, not before, not long after.
			e := expectUnauthorizedClose(t, a, drain+15*time.Second)
			if waited := time.Since(told); waited < time.Duration(g.DeadlineMS)*time.Millisecond/2 {
				t.Fatalf("closed %s after GOAWAY deadline_ms %d: before its deadline (%s)", waited, g.DeadlineMS, e.Message)
			}
			expectPong(t, b, 2)
		})
	}
}

// Expiry: with tls.expiry_goaway a connection is told GOAWAY credentials before
// its client certificate's NotAfter — no earlier than expiry_goaway plus its
// quarter of jitter, strictly before NotAfter, with the time to NotAfter as
// deadline_ms — and one that stays is closed with ERROR unauthorized at NotAfter.
func TestMTLSExpiryGoawayAgainstBinary(t *testing.T) {
	const before = 4 * time.Second
	f := newTLSFiles(t)
	fleet := testutil.NewCA(t, "fleet CA")
	f.writeClientCAs(t, fleet)
	s := startServer(t, bin.serverV1, append(f.mtlsFlags("uri_san"), "-tls.expiry_goaway="+before.String(), mtlsQuiet)...)
	leaf := fleet.Issue(t, testutil.CertOpts{URIs: []string{"spiffe://fleet/a"}, Client: true, NotAfter: time.Now().Add(2*before + time.Second)})
	notAfter := leaf.Cert.NotAfter // whole seconds: what the server reads
	p := dialAgent(t, s, f, leaf, "spiffe://fleet/a")

	g := expectGoawayCredentials(t, p, time.Until(notAfter)+5*time.Second, before*5/4+time.Second)
	at := time.Now()
	if !at.Before(notAfter) {
		t.Fatalf("GOAWAY at %s, not before NotAfter %s", at.Format(time.StampMilli), notAfter.Format(time.StampMilli))
	}
	// A generous slack below, for a GOAWAY delayed on a busy machine is no fault;
	// one sent at HELLO, ignoring the lead, is.
	if early := notAfter.Add(-before * 5 / 4).Add(-500 * time.Millisecond); at.Before(early) {
		t.Fatalf("GOAWAY at %s, earlier than NotAfter %s less expiry_goaway %s and its jitter", at.Format(time.StampMilli), notAfter.Format(time.StampMilli), before)
	}
	t.Logf("GOAWAY %s before NotAfter: %+v", time.Until(notAfter), g)

	e := expectUnauthorizedClose(t, p, time.Until(notAfter)+10*time.Second)
	if now := time.Now(); now.Before(notAfter.Add(-time.Second)) || now.After(notAfter.Add(5*time.Second)) {
		t.Fatalf("closed at %s (%s), want at NotAfter %s", now.Format(time.StampMilli), e.Message, notAfter.Format(time.StampMilli))
	}
}

// CA rotation with hawkc under load, as an agent fleet lives it: the agent's
// certificate files are renewed from CA-new while it runs, then CA-old leaves
// the bundle (SIGUSR1); its connection is told GOAWAY credentials, it reconnects
// presenting the renewed certificate (hawkc re-reads -tls-cert per connection),
// and no report fails, is lost or is stored twice.
//
// One certificate names one id, and every HELLO must name it, so the load runs
// one client: hawkc load's ids are PREFIX-i, the certificate's CN agent-0.
func TestMTLSCARotationUnderLoad(t *testing.T) {
	f := newTLSFiles(t)
	caOld, caNew := testutil.NewCA(t, "CA-old"), testutil.NewCA(t, "CA-new")
	f.writeClientCAs(t, caOld, caNew)
	s := startServer(t, bin.serverV1, append(f.mtlsFlags("cn"), "-drain.timeout=3s")...)
	admin := s.adminAddr()
	agentDir := t.TempDir()
	old := agentLeaf(t, caOld, "agent-0", "spiffe://fleet/agent-0")
	crt := testutil.WriteFile(t, agentDir, "agent.crt", old.CertPEM)
	key := testutil.WriteFile(t, agentDir, "agent.key", old.KeyPEM)
	load := startLoad(t, s.addr(), "-tls-ca", f.caFile, "-tls-cert", crt, "-tls-key", key, "-id-prefix", "agent",
		"-c", "1", "-w", "8", "-s", "256", "-rate", "2000", "-d", "10m")
	s.waitProgress(500)

	// The renewal, key first as tooling that writes two files does: hawkc must
	// keep the last good pair while they do not match.
	renewed := agentLeaf(t, caNew, "agent-0", "spiffe://fleet/agent-0")
	testutil.WriteFile(t, agentDir, filepath.Base(key), renewed.KeyPEM)
	testutil.WriteFile(t, agentDir, filepath.Base(crt), renewed.CertPEM)
	f.writeClientCAs(t, caNew)
	s.signal(s.pid(), syscall.SIGUSR1)
	told := s.waitLog(15*time.Second, func(l logLine) bool {
		return l.str("msg") == "GOAWAY credentials" && l.str("client_id") == "agent-0"
	})
	// The client retires the old connection once its replacement (which the
	// server admits only with the CA-new certificate) has taken over.
	s.waitLog(15*time.Second, func(l logLine) bool {
		return l.str("msg") == "connection closed" && l.num("conn_id") == told.num("conn_id")
	})
	s.waitProgress(500)

	sum := load.stop()
	t.Logf("CA rotation under load: %+v", sum)
	if sum.Errors != 0 || sum.ConnectErrs != 0 || sum.DialFailures != 0 || sum.Nacked != 0 {
		t.Fatalf("the agent noticed the rotation: %+v\nload stderr:\n%s\nserver log:\n%s", sum, load.stderr, s.logTextDump())
	}
	if sum.Goaways < 1 || sum.Reconnects < 1 {
		t.Fatalf("%+v: the agent must have moved by GOAWAY credentials", sum)
	}
	if sum.Acked != sum.Sent || sum.Acked == 0 {
		t.Fatalf("sent %d, acked %d: every report sent must be acked", sum.Sent, sum.Acked)
	}
	if n := metric(t, admin, "hawk_tls_handshake_failures_total"); n != 0 {
		t.Fatalf("%v TLS handshakes failed: the agent presented a certificate the server refused\nserver log:\n%s", n, s.logTextDump())
	}
	acked := load.acked()
	s.stopAll()
	checkCleanSpool(t, s.spool, acked, true)
}

// One change of the client CA bundle, announced by SIGUSR1, is read once: the
// file poll does not load it again after the signal's reload. And a reload counts
// only the GOAWAYs it sends: a connection told by an earlier reload, still there
// within its deadline, is not counted again. A second change, found by the poll,
// is the marker that the poll has run since.
func TestMTLSOneChangeOneReload(t *testing.T) {
	f := newTLSFiles(t)
	caOld, caNew := testutil.NewCA(t, "CA-old"), testutil.NewCA(t, "CA-new")
	f.writeClientCAs(t, caOld, caNew)
	s := startServer(t, bin.serverV1, append(f.mtlsFlags("uri_san"), "-drain.timeout=10s", mtlsQuiet)...)
	a := dialAgent(t, s, f, agentLeaf(t, caOld, "old", "spiffe://fleet/old"), "spiffe://fleet/old")
	f.writeClientCAs(t, caNew)
	s.signal(s.pid(), syscall.SIGUSR1)
	expectGoawayCredentials(t, a, 15*time.Second, 10*time.Second)
	reloaded := func(l logLine) bool { return l.str("msg") == "TLS files reloaded" }
	s.waitLog(10*time.Second, func(l logLine) bool { return reloaded(l) && l.str("trigger") == "SIGUSR1" })
	time.Sleep(1500 * time.Millisecond) // the window in which a second reload of the same change would come: the poll runs every second
	f.writeClientCAs(t, caNew)          // the same bundle, a new file: the poll's marker
	testutil.Eventually(t, 10*time.Second, func() bool {
		return len(s.findLogs(func(l logLine) bool { return reloaded(l) && l.str("trigger") == "tls file changed" })) > 0
	}, "the poll to reload the rewritten bundle")

	var after []string // triggers of the reloads from the signal's on
	told := 0.0
	for _, l := range s.findLogs(reloaded) {
		if l.str("trigger") == "SIGUSR1" || len(after) > 0 {
			after = append(after, l.str("trigger"))
		}
		told += l.num("connections_told_goaway_credentials")
	}
	if len(after) != 2 || after[1] != "tls file changed" {
		t.Fatalf("reloads from SIGUSR1 on: %q, want SIGUSR1 then one poll reload (for the second change)", after)
	}
	if sent := len(s.findLogs(func(l logLine) bool { return l.str("msg") == "GOAWAY credentials" })); sent != 1 || told != 1 {
		t.Fatalf("reloads logged %v connections told GOAWAY credentials; %d GOAWAY credentials were sent, want 1 and 1", told, sent)
	}
}
