package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

func TestReloadKeepsLastGood(t *testing.T) {
	ca := testutil.NewCA(t, "ca")
	dir := t.TempDir()
	first := ca.ServerLeaf(t)
	f := Files{
		CertFile:   testutil.WriteFile(t, dir, "s.crt", first.CertPEM),
		KeyFile:    testutil.WriteFile(t, dir, "s.key", first.KeyPEM),
		MinVersion: tls.VersionTLS13,
	}
	var results []error
	r, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	r.OnReload = func(_ *Material, err error) { results = append(results, err) }

	// A key that does not match the certificate: refused, the first pair stays.
	second := ca.ServerLeaf(t)
	testutil.WriteFile(t, dir, "s.key", second.KeyPEM)
	if _, err := r.Reload(nil); err == nil || !strings.Contains(err.Error(), "tls.cert_file") {
		t.Fatalf("mismatched pair: err %v, want one naming tls.cert_file", err)
	}
	if !r.Current().Cert.Leaf.Equal(first.Cert) {
		t.Fatal("a bad reload replaced the certificate in force")
	}
	cfg, err := r.Config().GetConfigForClient(nil)
	if err != nil || !cfg.Certificates[0].Leaf.Equal(first.Cert) {
		t.Fatalf("handshakes do not use the last good certificate: %v", err)
	}

	testutil.WriteFile(t, dir, "s.crt", second.CertPEM)
	m, err := r.Reload(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !m.NotAfter.Equal(second.Cert.NotAfter) {
		t.Fatalf("NotAfter %s, want %s", m.NotAfter, second.Cert.NotAfter)
	}
	if cfg, _ := r.Config().GetConfigForClient(nil); !cfg.Certificates[0].Leaf.Equal(second.Cert) {
		t.Fatal("new handshakes do not use the reloaded certificate")
	}
	if len(results) != 2 || results[0] == nil || results[1] != nil {
		t.Fatalf("OnReload saw %v, want [error, nil]", results)
	}
}

func TestClientIDAndTrust(t *testing.T) {
	ca, other := testutil.NewCA(t, "ca"), testutil.NewCA(t, "other")
	leaf := ca.Issue(t, testutil.CertOpts{CN: "cn-1", DNS: []string{"dns-1.fleet"}, URIs: []string{"spiffe://fleet/uri-1"}, Client: true,
		NotAfter: time.Now().Add(time.Hour)})
	for from, want := range map[string]string{FromURISAN: "spiffe://fleet/uri-1", FromDNSSAN: "dns-1.fleet", FromCN: "cn-1"} {
		if got, err := ClientID(leaf.Cert, from); err != nil || got != want {
			t.Errorf("ClientID(%s) = %q, %v; want %q", from, got, err, want)
		}
	}
	bare := ca.Issue(t, testutil.CertOpts{CN: "only-cn", Client: true})
	if _, err := ClientID(bare.Cert, FromURISAN); err == nil {
		t.Error("a certificate without a URI SAN named an id")
	}
	m := &Material{CAs: []*x509.Certificate{ca.Cert}}
	if !m.Trusts([]*x509.Certificate{leaf.Cert, ca.Cert}) {
		t.Error("chain to a CA in the bundle not trusted")
	}
	if m.Trusts([]*x509.Certificate{leaf.Cert, other.Cert}) {
		t.Error("chain to a removed CA still trusted")
	}
	_, err := New(Files{CertFile: "/nonexistent.crt", KeyFile: "/nonexistent.key"})
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing files: %v", err)
	}
}
