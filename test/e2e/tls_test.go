package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// tlsFiles are a CA and a server certificate for 127.0.0.1 signed by it, in a
// test's directory, and for mutual TLS the client CA bundle (writeClientCAs).
type tlsFiles struct {
	ca                *testutil.CA
	dir               string
	caFile, cert, key string
	clientCAs         string // tls.client_ca_file; "" until writeClientCAs
}

func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	f := &tlsFiles{ca: testutil.NewCA(t, "e2e CA"), dir: t.TempDir()}
	leaf := f.ca.ServerLeaf(t)
	f.caFile = testutil.WriteFile(t, f.dir, "ca.pem", f.ca.PEM)
	f.cert = testutil.WriteFile(t, f.dir, "server.crt", leaf.CertPEM)
	f.key = testutil.WriteFile(t, f.dir, "server.key", leaf.KeyPEM)
	return f
}

func (f *tlsFiles) serverFlags() []string {
	return []string{"-tls.cert_file=" + f.cert, "-tls.key_file=" + f.key, "-tls.min_version=1.3"}
}

// writeClientCAs writes the client CA bundle (tls.client_ca_file) holding cas,
// over the previous one and by rename, as an operator's tooling rotating CAs would.
func (f *tlsFiles) writeClientCAs(t *testing.T, cas ...*testutil.CA) {
	t.Helper()
	f.clientCAs = writeBundle(t, f.dir, "clients-ca.pem", cas...)
}

// mtlsFlags are serverFlags with mutual TLS: every client presents a certificate
// chaining to the client CA bundle, and the id its HELLO names is taken from the
// certificate's field from (uri_san, dns_san, cn).
func (f *tlsFiles) mtlsFlags(from string) []string {
	return append(f.serverFlags(), "-tls.client_ca_file="+f.clientCAs, "-tls.client_auth=required", "-tls.client_id_from="+from)
}

// rotate writes a new server certificate (same CA) over the old files, key first:
// between the two renames the pair does not match, and the server must keep the
// last good one.
func (f *tlsFiles) rotate(t *testing.T) *x509.Certificate {
	t.Helper()
	leaf := f.ca.ServerLeaf(t)
	testutil.WriteFile(t, f.dir, "server.key", leaf.KeyPEM)
	testutil.WriteFile(t, f.dir, "server.crt", leaf.CertPEM)
	return leaf.Cert
}

// An upgrade with TLS 1.3 clients under load: the connections move to the new
// process with their sessions (no GOAWAY, no new handshake); nothing is lost or
// stored twice.
func TestTLSUpgradeUnderLoad(t *testing.T) {
	f := newTLSFiles(t)
	s := startServer(t, bin.serverV1, f.serverFlags()...)
	load := startLoad(t, s.addr(), "-tls-ca", f.caFile, "-c", "100", "-w", "8", "-s", "256", "-rate", "10000", "-d", "10m")
	s.waitProgress(3000)
	s.upgradeTo(bin.serverV2)
	s.waitProgress(3000)
	sum := load.stop()
	t.Logf("TLS upgrade: %+v", sum)
	if sum.Errors != 0 || sum.DialFailures != 0 || sum.Nacked != 0 {
		t.Fatalf("clients noticed the upgrade: %+v\nload stderr:\n%s\nserver log:\n%s", sum, load.stderr, s.logTextDump())
	}
	if sum.Acked != sum.Sent || sum.Acked == 0 {
		t.Fatalf("sent %d, acked %d: every report sent must be acked", sum.Sent, sum.Acked)
	}
	if sum.Goaways != 0 || sum.Reconnects != 0 {
		t.Fatalf("%d GOAWAYs, %d reconnects seen by 100 TLS 1.3 clients: their sessions must move with them", sum.Goaways, sum.Reconnects)
	}
	acked := load.acked()
	s.stopAll()
	checkSpool(t, spoolRecords(t, s.spool), acked, true)
}

// The server certificate rotated under load: established connections go on, new
// handshakes get the new certificate, a half-written pair keeps the last good one,
// and the clients see no error and no reconnect.
func TestTLSServerCertificateRotatedUnderLoad(t *testing.T) {
	f := newTLSFiles(t)
	s := startServer(t, bin.serverV1, f.serverFlags()...)
	admin := s.adminAddr()
	load := startLoad(t, s.addr(), "-tls-ca", f.caFile, "-c", "50", "-w", "8", "-s", "256", "-rate", "5000", "-d", "10m")
	s.waitProgress(2000)

	// A bad certificate file: refused, the last good pair stays.
	testutil.WriteFile(t, f.dir, "server.crt", []byte("not a certificate"))
	s.signal(s.pid(), syscall.SIGUSR1)
	testutil.Eventually(t, 10*time.Second, func() bool {
		return metric(t, admin, `hawk_tls_reloads_total{result="failure"}`) >= 1
	}, "a failed TLS reload counted")
	if s.welcomeTLSCert(t, f) == nil {
		t.Fatal("no handshake after a bad certificate file")
	}

	next := f.rotate(t)
	testutil.Eventually(t, 10*time.Second, func() bool {
		c := s.welcomeTLSCert(t, f)
		return c != nil && c.Equal(next)
	}, "new handshakes to present the rotated certificate")
	if got := metric(t, admin, "hawk_tls_cert_not_after_seconds"); int64(got) != next.NotAfter.Unix() {
		t.Fatalf("hawk_tls_cert_not_after_seconds %v, want %d", got, next.NotAfter.Unix())
	}
	s.waitProgress(2000)
	sum := load.stop()
	t.Logf("rotation under load: %+v", sum)
	if sum.Errors != 0 || sum.Reconnects != 0 || sum.DialFailures != 0 || sum.Acked != sum.Sent {
		t.Fatalf("clients noticed the rotation: %+v\nload stderr:\n%s\nserver log:\n%s", sum, load.stderr, s.logTextDump())
	}
}

// welcomeTLSCert completes a TLS handshake and HELLO with the server and returns
// the certificate it presented (nil if either failed).
func (s *server) welcomeTLSCert(t *testing.T, f *tlsFiles) *x509.Certificate {
	t.Helper()
	p, err := testutil.DialTLSErr(t, s.addr(), tlsClientConfig(f))
	if err != nil {
		return nil
	}
	defer p.Conn.Close()
	p.Hello("e2e-tls-probe", "")
	return p.Conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
}

func tlsClientConfig(f *tlsFiles) *tls.Config {
	return &tls.Config{RootCAs: f.ca.Pool(), ServerName: "127.0.0.1"}
}

// mtlsClientConfig presents leaf (nil: no certificate) whatever CAs the server
// names, as a misconfigured agent would: Go's client otherwise withholds a
// certificate the server's CertificateRequest says it cannot verify, and the
// refusal tests would test the client instead of the server.
func mtlsClientConfig(f *tlsFiles, leaf *testutil.Leaf) *tls.Config {
	cfg := tlsClientConfig(f)
	if leaf != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &leaf.TLS, nil }
	}
	return cfg
}
