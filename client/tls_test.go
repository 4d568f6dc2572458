package client

import (
	"context"
	"crypto/tls"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// Reports flow over TLS, and a connection told GOAWAY is replaced by one that
// presents the client certificate GetClientCertificate gives then: an agent that
// rotated its certificate is seen with the new one.
func TestTLSReportsAndRotatedClientCertificate(t *testing.T) {
	ca := testutil.NewCA(t, "client test CA")
	srvLeaf := ca.ServerLeaf(t)
	first := ca.Issue(t, testutil.CertOpts{CN: "agent-1", Client: true})
	second := ca.Issue(t, testutil.CertOpts{CN: "agent-1", Client: true})

	srv := newFakeServer(t)
	srv.ln = tls.NewListener(srv.ln, &tls.Config{
		Certificates: []tls.Certificate{srvLeaf.TLS},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	})
	srv.goawayAfter(40)
	srv.start()

	var cur atomic.Pointer[tls.Certificate]
	cur.Store(&first.TLS)
	var calls atomic.Int32
	opts := testOptions(srv, "agent-1")
	opts.TLS = &tls.Config{
		RootCAs: ca.Pool(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			calls.Add(1)
			return cur.Load(), nil
		},
	}
	c := dial(t, opts)
	cur.Store(&second.TLS) // the agent rotates; the next connection presents it
	seqs := reportAll(t, c, 8, 200, nil)
	if len(seqs) != 200 {
		t.Fatalf("%d reports acked, want 200", len(seqs))
	}
	peer := func(i int) []byte {
		tc := srv.conn(i).nc.(*tls.Conn)
		return tc.ConnectionState().PeerCertificates[0].Raw
	}
	if string(peer(0)) != string(first.Cert.Raw) {
		t.Fatal("the first connection did not present the first certificate")
	}
	if string(peer(1)) != string(second.Cert.Raw) {
		t.Fatal("the connection after GOAWAY did not present the rotated certificate")
	}
	if n := calls.Load(); n < 2 {
		t.Fatalf("GetClientCertificate called %d times, want one per connection", n)
	}
	if st := c.Stats(); st.DialFailures != 0 {
		t.Fatalf("%d dial failures over TLS", st.DialFailures)
	}
}

// A server whose certificate the client's roots do not trust is never talked to.
func TestTLSUntrustedServerRefused(t *testing.T) {
	ca, other := testutil.NewCA(t, "server CA"), testutil.NewCA(t, "client roots")
	srv := newFakeServer(t)
	srv.ln = tls.NewListener(srv.ln, &tls.Config{Certificates: []tls.Certificate{ca.ServerLeaf(t).TLS}})
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.TLS = &tls.Config{RootCAs: other.Pool()}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c, err := Dial(ctx, opts)
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded against an untrusted server")
	}
}

// A reconnect after GOAWAY resumes the TLS session, unless the GOAWAY asked for
// the agent's current credentials: then the handshake is a full one, and the
// certificate is presented again.
func TestTLSReconnectResumes(t *testing.T) {
	ca := testutil.NewCA(t, "client test CA")
	srvLeaf := ca.ServerLeaf(t)
	leaf := ca.Issue(t, testutil.CertOpts{CN: "agent-1", Client: true})
	for _, tc := range []struct {
		reason  string
		resumed uint64
	}{{"upgrade", 1}, {"credentials", 0}} {
		t.Run(tc.reason, func(t *testing.T) {
			srv := newFakeServer(t)
			srv.ln = tls.NewListener(srv.ln, &tls.Config{
				Certificates: []tls.Certificate{srvLeaf.TLS},
				ClientCAs:    ca.Pool(),
				ClientAuth:   tls.RequireAndVerifyClientCert,
			})
			srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
				fc.ack(seq)
				if fc.idx == 0 && len(fc.receivedSeqs()) == 20 {
					fc.queueJSON(protocol.TypeGoaway, &protocol.Goaway{Reason: tc.reason, DeadlineMS: 10_000})
					fc.flush()
				}
			}
			srv.start()
			opts := testOptions(srv, "agent-1")
			opts.TLS = &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{leaf.TLS}}
			c := dial(t, opts)
			if seqs := reportAll(t, c, 4, 100, nil); len(seqs) != 100 {
				t.Fatalf("%d reports acked, want 100", len(seqs))
			}
			testutil.Eventually(t, 5*time.Second, func() bool { return c.Stats().Reconnects == 1 }, "the reconnect after GOAWAY")
			st := c.Stats()
			if st.Reconnects != 1 || st.TLSResumed != tc.resumed {
				t.Fatalf("after GOAWAY %s: %d reconnects, %d resumed; want 1, %d", tc.reason, st.Reconnects, st.TLSResumed, tc.resumed)
			}
			if got := srv.conn(1).nc.(*tls.Conn).ConnectionState().DidResume; got != (tc.resumed == 1) {
				t.Fatalf("the server saw DidResume %v", got)
			}
		})
	}
}
