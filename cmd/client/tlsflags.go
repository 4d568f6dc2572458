package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"
)

// tlsFlags are the TLS flags send, load and idle share.
type tlsFlags struct {
	on                bool
	ca, name          string
	certFile, keyFile string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "tls", false, "connect over TLS (implied by -tls-ca and -tls-cert)")
	fs.StringVar(&f.ca, "tls-ca", "", "PEM `FILE` of the CAs to verify the server with (default: the system roots)")
	fs.StringVar(&f.name, "tls-server-name", "", "`NAME` the server certificate must carry (default: the host of -addr)")
	fs.StringVar(&f.certFile, "tls-cert", "", "client certificate PEM `FILE` for mutual TLS (re-read when it changes: each new connection presents the current one)")
	fs.StringVar(&f.keyFile, "tls-key", "", "key PEM `FILE` of -tls-cert")
}

// config returns the client TLS configuration, nil when TLS is off.
func (f *tlsFlags) config() (*tls.Config, error) {
	if !f.on && f.ca == "" && f.certFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: f.name}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, fmt.Errorf("-tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-ca %s: no PEM certificate", f.ca)
		}
	}
	if (f.certFile == "") != (f.keyFile == "") {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	if f.certFile != "" {
		kp := &rotatingPair{cert: f.certFile, key: f.keyFile}
		if _, err := kp.get(nil); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = kp.get
	}
	return cfg, nil
}

// rotatingPair loads a key pair and loads it again when either file changes, so
// that an agent whose certificate was renewed presents the new one on its next
// connection (after GOAWAY credentials, say).
type rotatingPair struct {
	cert, key string
	mu        sync.Mutex
	stamp     [2]time.Time
	cur       *tls.Certificate
}

func (p *rotatingPair) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	var stamp [2]time.Time
	for i, name := range []string{p.cert, p.key} {
		fi, err := os.Stat(name)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		stamp[i] = fi.ModTime()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil && stamp == p.stamp {
		return p.cur, nil
	}
	c, err := tls.LoadX509KeyPair(p.cert, p.key)
	if err != nil {
		if p.cur != nil {
			return p.cur, nil // a half-written renewal: keep the last good pair
		}
		return nil, fmt.Errorf("-tls-cert %s / -tls-key %s: %w", p.cert, p.key, err)
	}
	p.cur, p.stamp = &c, stamp
	return p.cur, nil
}
