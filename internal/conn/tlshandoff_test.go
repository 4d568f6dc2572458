package conn

import (
	"crypto/tls"
	"fmt"
	"testing"

	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/tlsconf"
)

// startTLSHandoffServer is startHandoffServer serving f's TLS material.
func startTLSHandoffServer(t *testing.T, f *tlsFixture) *testServer {
	ts := startHandoffServer(t)
	s := tlsSettings(f)
	s.MaxConns = 1000
	ts.m.Apply(s)
	return ts
}

// TLS 1.3 connections, half of them with a client certificate, each stopped in
// the middle of a frame, move from one Manager to another with their sessions:
// the clients (crypto/tls) finish the frame and go on on the same session, with
// no GOAWAY, alert or new handshake, through a second move back again. A TLS 1.2
// connection falls back for "tls". After the moves, removing the CA of the
// moved mutual-TLS connections tells them GOAWAY credentials.
func TestHandoffMovesTLS13Sessions(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthOptional, true)
	f.files.MinVersion = tls.VersionTLS12
	r, err := tlsconf.New(f.files)
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	a, b := startTLSHandoffServer(t, f), startTLSHandoffServer(t, f)
	const n = 20
	peers := make([]*testutil.Peer, n)
	for i := range peers {
		id := fmt.Sprintf("spiffe://fleet/agent-%d", i)
		cfg := f.clientConfig()
		if i%2 == 0 {
			cfg = f.clientConfig(f.other.Issue(t, testutil.CertOpts{URIs: []string{id}, Client: true}).TLS)
		}
		cfg.MaxVersion = tls.VersionTLS13
		peers[i] = testutil.DialTLS(t, a.addr, cfg)
		peers[i].Hello(id, "")
		sendReports(peers[i], 1, 2)
		expectAnswers(t, peers[i], protocol.TypeAck, 1, 2)
	}
	old12 := f.clientConfig()
	old12.MaxVersion = tls.VersionTLS12
	p12 := testutil.DialTLS(t, a.addr, old12)
	p12.Hello("tls12-agent", "")

	seq := uint64(3)
	for round, from, to := 0, a, b; round < 2; round, from, to = round+1, to, from {
		frame := protocol.AppendFrame(nil, protocol.TypeReport, seq, []byte(`{"x":1}`))
		cut := protocol.HeaderSize + 3
		for _, p := range peers {
			p.Write(frame[:cut])
		}
		waitFor(t, "every reader to hold its partial frame", func() bool {
			for _, c := range from.m.reg.Snapshot(nil) {
				if c.clientID != "tls12-agent" && c.frameHave.Load()>>32 != uint64(cut) {
					return false
				}
			}
			return true
		})
		res := handOver(t, from, to)
		want12 := 0
		if round == 0 {
			want12 = 1
		}
		if res.Moved != n || res.Lost != 0 || res.Fallback[handoff.ReasonTLS] != want12 || res.FallenBack() != want12 || res.Err != nil {
			t.Fatalf("round %d: handoff %+v, want %d moved and %d fallen back for tls", round, res, n, want12)
		}
		for _, p := range peers {
			p.Write(frame[cut:])
			sendReports(p, seq+1)
			expectAnswers(t, p, protocol.TypeAck, seq, seq+1)
		}
		seq += 2
	}
	// The TLS 1.2 connection stayed, and is served.
	p12.Send(protocol.TypePing, 1, nil)
	p12.Expect(protocol.TypePong)

	// The mutual-TLS connections are in a (moved twice); their CA goes.
	testutil.WriteFile(t, f.dir, "ca.pem", f.ca.PEM)
	mat, err := f.r.Reload(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.m.CredentialsChanged(mat); got != n/2 {
		t.Fatalf("%d moved connections told GOAWAY credentials, want %d", got, n/2)
	}
	for i, p := range peers {
		if i%2 == 0 {
			expectGoaway(t, p, GoawayCredentials)
		} else {
			p.Send(protocol.TypePing, 1, nil)
			p.Expect(protocol.TypePong)
		}
	}
}

// A Manager that adopts mutual-TLS connections checks their chains against the
// bundle in force (TrustTLS) at adoption, before any reload: the connection whose
// CA that bundle lacks is told GOAWAY credentials at once, the other is served.
func TestAdoptChecksClientCAInForce(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthOptional, true)
	a, b := startTLSHandoffServer(t, f), startTLSHandoffServer(t, f)
	pg, pk, _ := dialGoneAndKept(t, f, a.addr, "spiffe://fleet/gone", "spiffe://fleet/kept")

	// b's bundle no longer holds the other CA.
	testutil.WriteFile(t, f.dir, "ca.pem", f.ca.PEM)
	r, err := tlsconf.New(f.files)
	if err != nil {
		t.Fatal(err)
	}
	b.m.TrustTLS(r.Current())
	moveAll(t, a, b, 2)
	expectGoaway(t, pg, GoawayCredentials)
	pk.Send(protocol.TypePing, 1, nil)
	pk.Expect(protocol.TypePong)
}
