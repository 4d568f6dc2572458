// Package tlsconf loads the native listener's TLS material and reloads it live,
// keeping the last good one in force.
//
// The material is a certificate, its key and a client CA bundle. It is reloaded
// without a restart: new handshakes use the newest good files at once (through
// GetConfigForClient), and a bad file keeps the last good material in force. It also
// derives a client's identity from its certificate.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Client authentication modes (tls.client_auth).
const (
	AuthNone     = "none"
	AuthOptional = "optional" // a certificate is verified if presented
	AuthRequired = "required"
)

// Where the client id comes from under mutual TLS (tls.client_id_from).
const (
	FromURISAN = "uri_san" // the first URI SAN, whole (spiffe://fleet/agent-42)
	FromDNSSAN = "dns_san" // the first DNS SAN
	FromCN     = "cn"      // the subject common name
)

// Files names the TLS material and how it is used.
type Files struct {
	CertFile, KeyFile string
	ClientCAFile      string // empty: no client certificates are asked for
	MinVersion        uint16 // tls.VersionTLS12 or tls.VersionTLS13
	ClientAuth        string // AuthNone, AuthOptional, AuthRequired
}

// Material is one good load of the files.
type Material struct {
	Cert     *tls.Certificate
	NotAfter time.Time // the server certificate's
	// CAs is the client CA bundle (nil without one); Pool holds the same.
	CAs  []*x509.Certificate
	Pool *x509.CertPool
	cfg  *tls.Config
}

// Reloader holds the material in force. Its Config is what the listener uses; Reload
// swaps in new files.
type Reloader struct {
	mu    sync.Mutex // serialises Reload
	files Files
	cur   atomic.Pointer[Material]
	// tickets are the session ticket keys every material gets (the first
	// encrypts); none: crypto/tls's own, per configuration.
	tickets [][32]byte
	// OnReload, if set, is called after every Reload with its error (nil: loaded).
	OnReload func(m *Material, err error)
}

// New loads f; it fails if the files are unusable.
func New(f Files) (*Reloader, error) {
	r := &Reloader{files: f}
	m, err := load(f)
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	return r, nil
}

// Current returns the material in force.
func (r *Reloader) Current() *Material { return r.cur.Load() }

// Files returns what r loads.
func (r *Reloader) Files() Files {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files
}

// Reload reads the files again (f, when non-nil, replaces their names and modes). On
// error the last good material stays in force and the error says why.
func (r *Reloader) Reload(f *Files) (*Material, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	files := r.files
	if f != nil {
		files = *f
	}
	m, err := load(files)
	if err == nil {
		if r.tickets != nil {
			m.cfg.SetSessionTicketKeys(r.tickets)
		}
		r.files = files
		r.cur.Store(m)
	}
	if r.OnReload != nil {
		r.OnReload(m, err)
	}
	return m, err
}

// SetTicketKeys makes keys (at least one) the session ticket keys of every
// handshake from now on, the first encrypting new tickets and all decrypting, and
// those of material loaded later. Without them each connection's configuration
// would have keys of its own, and no ticket could ever be used.
func (r *Reloader) SetTicketKeys(keys [][32]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tickets = keys
	r.cur.Load().cfg.SetSessionTicketKeys(keys)
}

// Config returns the listener's configuration: every handshake takes the material
// in force when it starts.
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: r.cur.Load().cfg.MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.cur.Load().cfg, nil
		},
	}
}

func load(f Files) (*Material, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("tls.cert_file and tls.key_file are both required")
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file %s / tls.key_file %s: %w", f.CertFile, f.KeyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file %s: %w", f.CertFile, err)
	}
	cert.Leaf = leaf
	m := &Material{Cert: &cert, NotAfter: leaf.NotAfter}
	min := f.MinVersion
	if min == 0 {
		min = tls.VersionTLS12
	}
	cfg := &tls.Config{MinVersion: min, Certificates: []tls.Certificate{cert}}
	if f.ClientCAFile != "" {
		data, err := os.ReadFile(f.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		if m.CAs, err = parseCerts(data); err != nil {
			return nil, fmt.Errorf("tls.client_ca_file %s: %w", f.ClientCAFile, err)
		}
		m.Pool = x509.NewCertPool()
		for _, c := range m.CAs {
			m.Pool.AddCert(c)
		}
		cfg.ClientCAs = m.Pool
		switch f.ClientAuth {
		case AuthRequired:
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		case AuthOptional:
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	m.cfg = cfg
	return m, nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate in the bundle")
	}
	return out, nil
}

// Trusts reports whether chain's issuing CA (its last element's issuer, or the
// last element itself) is in the bundle of m: after a reload removed a CA, the
// connections it admitted no longer are.
func (m *Material) Trusts(chain []*x509.Certificate) bool {
	if len(chain) == 0 {
		return true
	}
	root := chain[len(chain)-1]
	for _, ca := range m.CAs {
		if ca.Equal(root) {
			return true
		}
	}
	return false
}

// ClientID returns the client id the certificate names, by from.
func ClientID(cert *x509.Certificate, from string) (string, error) {
	switch from {
	case FromURISAN:
		if len(cert.URIs) == 0 {
			return "", errors.New("the client certificate has no URI SAN (tls.client_id_from is uri_san)")
		}
		return cert.URIs[0].String(), nil
	case FromDNSSAN:
		if len(cert.DNSNames) == 0 {
			return "", errors.New("the client certificate has no DNS SAN (tls.client_id_from is dns_san)")
		}
		return cert.DNSNames[0], nil
	case FromCN, "":
		if cert.Subject.CommonName == "" {
			return "", errors.New("the client certificate has no subject CN (tls.client_id_from is cn)")
		}
		return cert.Subject.CommonName, nil
	}
	return "", fmt.Errorf("tls.client_id_from %q is not uri_san, dns_san or cn", from)
}
