package client

import (
	"bytes"
	"crypto/tls"
	"sync"
)

// goawayCredentials is the GOAWAY reason that asks for the agent's current
// certificate: the next connection must not resume the session of the old one.
const goawayCredentials = "credentials"

// tlsResume keeps a Client's TLS session so that a reconnect resumes it, and
// forgets it where a resumption would present an identity the agent no longer
// holds: after GOAWAY credentials, and once GetClientCertificate gives another
// certificate than the one the session was made with (a resumed handshake asks
// for no certificate).
type tlsResume struct {
	cache   tls.ClientSessionCache
	key     string // crypto/tls's key for the session: the ServerName, always set
	getCert func(*tls.CertificateRequestInfo) (*tls.Certificate, error)

	mu        sync.Mutex
	info      *tls.CertificateRequestInfo // the server's last request for a certificate
	presented []byte                      // the leaf last presented, DER
}

// newTLSResume sets cfg (the Client's clone) up to resume; nil without TLS.
func newTLSResume(cfg *tls.Config) *tlsResume {
	if cfg == nil {
		return nil
	}
	if cfg.ClientSessionCache == nil {
		// One entry: every connection of a Client goes to one server name.
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	}
	r := &tlsResume{cache: cfg.ClientSessionCache, key: cfg.ServerName, getCert: cfg.GetClientCertificate}
	if r.getCert != nil {
		cfg.GetClientCertificate = r.certificate
	}
	return r
}

// certificate is the agent's GetClientCertificate, remembering what it presented.
func (r *tlsResume) certificate(info *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	cert, err := r.getCert(info)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.info, r.presented = info, nil
	if err == nil && cert != nil && len(cert.Certificate) > 0 {
		r.presented = cert.Certificate[0]
	}
	return cert, err
}

// beforeHandshake forgets the session if the agent's certificate changed since
// the handshake that made it.
func (r *tlsResume) beforeHandshake() {
	if r == nil || r.getCert == nil {
		return
	}
	r.mu.Lock()
	info, presented := r.info, r.presented
	r.mu.Unlock()
	if info == nil {
		return // no certificate asked for yet: nothing to compare
	}
	cert, err := r.getCert(info)
	if err != nil || cert == nil || len(cert.Certificate) == 0 || !bytes.Equal(cert.Certificate[0], presented) {
		r.forget()
	}
}

// forget drops the session: the next handshake is a full one.
func (r *tlsResume) forget() {
	if r != nil {
		r.cache.Put(r.key, nil)
	}
}
