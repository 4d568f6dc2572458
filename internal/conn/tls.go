package conn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/tlsconf"
)

// TLS connections take a separate path from plaintext ones: *tls.Conn has no usable
// RawConn, so a TLS connection has rc == nil and reads and writes through crypto/tls
// (readTLS, writeTLS), over a transport that gives it the plaintext path's idle
// memory and write progress (tlstransport.go). The plaintext path is unchanged, and Conn keeps
// its size (the reaper's cache-line layout): what only TLS connections need lives in
// Manager.tlsConns.

// TLSObserver is implemented by observers that count TLS handshake failures.
type TLSObserver interface {
	TLSHandshakeFailed()
}

// ResumeObserver is implemented by observers that count TLS handshakes by
// whether they resumed a session (a session ticket was accepted).
type ResumeObserver interface {
	TLSHandshake(resumed bool)
}

// GoawayCredentials is the GOAWAY reason of a connection whose client certificate
// expires soon or whose issuing CA was removed: the client reconnects and presents
// its current certificate.
const GoawayCredentials = "credentials"

// tlsInfo is what the server keeps about a TLS connection's client certificate,
// for a connection that has one or whose session stays in crypto/tls.
type tlsInfo struct {
	chain    []*x509.Certificate // verified chain, leaf first; nil: no client certificate
	notAfter time.Time
	certID   string // the id the certificate names (Settings.ClientIDFrom), "" if none
	certErr  error  // why the certificate names no id
	stay     error  // why the session stays in crypto/tls (TLS 1.2); nil: it is in the record layer
	timer    *time.Timer
}

// isTLS reports whether c reads and writes through crypto/tls.
func (c *Conn) isTLS() bool { return c.rc == nil }

// readTLS is read for a TLS connection. Holding no partial frame, it takes what
// crypto/tls has already decrypted or received, and only then waits, inside
// crypto/tls, with the transport's small buffer rather than a read buffer: an idle
// TLS connection costs no read buffer, as an idle plaintext one does not. With a
// partial frame held it reads on into the same buffer, waiting with it, as the
// plaintext path does.
func (c *Conn) readTLS() (int, error) {
	s := c.session()
	if c.rlen == 0 {
		if c.rbuf != nil {
			// Under load the session often holds whole records already: no syscall.
			n, err := s.readNoWait(*c.rbuf)
			if n > 0 {
				return n, nil // an error comes again with the next read
			}
			if !wouldBlock(err) {
				return 0, err
			}
			putReadBuf(c.rbuf)
			c.rbuf = nil
		}
		n, err := s.Read(s.t.first[:])
		if n == 0 {
			return 0, err
		}
		c.rbuf = getReadBuf()
		copy(*c.rbuf, s.t.first[:n])
		if n == len(s.t.first) {
			// The record may hold more: the session gives it without waiting. Its
			// error, if any, comes again with the next read.
			m, _ := s.readNoWait((*c.rbuf)[n:])
			n += m
		}
		return n, nil
	}
	if c.rbuf == nil {
		c.rbuf = getReadBuf()
	}
	for {
		n, err := s.Read((*c.rbuf)[c.rlen:])
		if n > 0 {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// writeTLS is write for a TLS connection. The transport's writes record each bit of
// progress while writeAt is set, as the plaintext path's do.
func (c *Conn) writeTLS(p *[]byte) (int, error) {
	c.writeAt.Store(mono.Now())
	n, err := c.nc.Write(*p)
	c.writeAt.Store(0)
	if err != nil {
		return n, fmt.Errorf("conn %d: TLS write: %w", c.id, err)
	}
	return n, nil
}

// tlsHandshake runs the TLS handshake on the connection's goroutine, bounded by the
// handshake timeout counted from accept (as HELLO is): a client that stalls
// mid-handshake is cut like one that never says HELLO. It returns false when the
// connection is over (torn down).
func (c *Conn) tlsHandshake() bool {
	sess := c.session()
	tc := sess.tc
	s := c.m.Settings()
	ctx, cancel := context.WithDeadline(context.Background(), mono.Time(c.accepted).Add(s.HandshakeTimeout))
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if o, ok := c.m.obs.(TLSObserver); ok {
			o.TLSHandshakeFailed()
		}
		c.m.handshakeFailed(c, "TLS handshake failed", zap.Error(err))
		c.closeNow(ReasonHandshake)
		c.teardown()
		return false
	}
	cs := tc.ConnectionState()
	if o, ok := c.m.obs.(ResumeObserver); ok {
		o.TLSHandshake(cs.DidResume)
	}
	ti := &tlsInfo{}
	if ti.stay = sess.switchToRecordLayer(); ti.stay != nil && cs.Version == tls.VersionTLS13 {
		c.m.log.Warn("a TLS 1.3 session stays in crypto/tls: it falls back to GOAWAY at an upgrade",
			zap.Uint64("conn_id", c.id), zap.Error(ti.stay))
	}
	if len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0 {
		ti.chain = cs.VerifiedChains[0]
		leaf := ti.chain[0]
		ti.notAfter = leaf.NotAfter
		ti.certID, ti.certErr = tlsconf.ClientID(leaf, s.ClientIDFrom)
	}
	if ti.chain != nil || ti.stay != nil {
		// Without either there is nothing to keep: every reader of tlsConns
		// takes a connection it does not find for one without a client
		// certificate, in the record layer.
		c.m.tlsConns.Store(c, ti)
	}
	return true
}

// checkCertID refuses a HELLO whose client id is not the one the client
// certificate names. Without a client certificate there is nothing to check.
func (c *Conn) checkCertID(id string) bool {
	v, ok := c.m.tlsConns.Load(c)
	if !ok {
		return true
	}
	ti := v.(*tlsInfo)
	if ti.chain == nil {
		return true
	}
	var msg string
	switch {
	case ti.certErr != nil:
		msg = "unauthorized: " + ti.certErr.Error()
	case ti.certID != id:
		msg = fmt.Sprintf("unauthorized: HELLO client_id %q is not %q, the id the client certificate names (%s)",
			id, ti.certID, c.m.Settings().ClientIDFrom)
	default:
		return true
	}
	c.m.handshakeFailed(c, "client id does not match the client certificate", zap.String("client_id", id), zap.String("cert_id", ti.certID))
	c.fail(ReasonHandshake, protocol.CodeUnauthorized, msg)
	return false
}

// armExpiry, once c is active, tells it GOAWAY credentials at once if its CA left
// the bundle since its TLS handshake, else schedules that GOAWAY before its client
// certificate's NotAfter: at NotAfter less Settings.ExpiryGoaway, less a jitter of
// up to a quarter of it (so certificates issued together do not move together). At
// NotAfter a connection that has not moved is closed.
func (c *Conn) armExpiry() {
	v, ok := c.m.tlsConns.Load(c)
	if !ok {
		return
	}
	ti := v.(*tlsInfo)
	if mat := c.m.tlsTrust.Load(); mat != nil && ti.chain != nil && !mat.Trusts(ti.chain) {
		// Its CA was removed after its TLS handshake but before its HELLO, so
		// CredentialsChanged, which looks only at active connections, passed it by.
		// c is active before this load and the material is stored before that
		// range: one of the two sees the other.
		c.m.goawayCredentials(c, c.m.Settings().DrainTimeout, caRemoved)
		return
	}
	before := c.m.Settings().ExpiryGoaway
	if ti.chain == nil || before <= 0 {
		return
	}
	if time.Until(ti.notAfter) <= before {
		// Admitted already inside the window (the agent has not renewed yet): another
		// GOAWAY would only make it reconnect again and again with the same
		// certificate. It keeps the connection until NotAfter, then is closed.
		ti.timer = time.AfterFunc(time.Until(ti.notAfter), func() {
			c.fail(ReasonCredentials, protocol.CodeUnauthorized, "unauthorized: the client certificate expired (NotAfter passed)")
		})
		return
	}
	lead := before + time.Duration(rand.Int64N(int64(before)/4+1))
	ti.timer = time.AfterFunc(max(time.Until(ti.notAfter.Add(-lead)), 0), func() {
		c.m.goawayCredentials(c, time.Until(ti.notAfter), "client certificate expires soon")
	})
}

// goawayCredentials tells c to reconnect within deadline (jittered within its
// first half), and closes it at the deadline if it has not left. It returns false
// when c was told GOAWAY already (by a drain, or an earlier reload) and is told
// nothing now.
func (m *Manager) goawayCredentials(c *Conn, deadline time.Duration, why string) bool {
	deadline = max(deadline, 0)
	if !c.goawayAt.CompareAndSwap(0, mono.Now()) {
		return false
	}
	g := &protocol.Goaway{
		Reason:           GoawayCredentials,
		DeadlineMS:       deadline.Milliseconds(),
		ReconnectAfterMS: rand.Int64N(deadline.Milliseconds()/2 + 1),
	}
	if c.send(protocol.TypeGoaway, 0, g) {
		m.obs.GoawaySent()
	}
	m.log.Info("GOAWAY credentials", zap.Uint64("conn_id", c.id), zap.String("client_id", c.Info().ClientID),
		zap.String("why", why), zap.Duration("deadline", deadline))
	time.AfterFunc(deadline, func() {
		c.fail(ReasonCredentials, protocol.CodeUnauthorized, "unauthorized: "+why+"; the connection outlived its GOAWAY credentials deadline")
	})
	return true
}

// CredentialsChanged follows a reload of the TLS material: every connection whose
// client certificate chains to a CA no longer in the bundle is told GOAWAY
// credentials with the drain timeout to move, and cannot come back with that
// certificate. It returns how many were told (not those told already).
func (m *Manager) CredentialsChanged(mat *tlsconf.Material) int {
	m.tlsTrust.Store(mat) // before the range: see armExpiry
	n := 0
	dl := m.Settings().DrainTimeout
	m.tlsConns.Range(func(k, v any) bool {
		c, ti := k.(*Conn), v.(*tlsInfo)
		if ti.chain != nil && c.state.Load() == stateActive && !mat.Trusts(ti.chain) && m.goawayCredentials(c, dl, caRemoved) {
			n++
		}
		return true
	})
	return n
}

// TrustTLS makes mat the material a connection's client certificate is checked
// against when it becomes active, before any reload: connections adopted from the
// previous process were admitted under its bundle, which may have held CAs this
// one no longer does.
func (m *Manager) TrustTLS(mat *tlsconf.Material) { m.tlsTrust.Store(mat) }

const caRemoved = "the CA that issued the client certificate was removed from tls.client_ca_file"

// forgetTLS drops c's TLS state at teardown.
func (m *Manager) forgetTLS(c *Conn) {
	if v, ok := m.tlsConns.LoadAndDelete(c); ok {
		if t := v.(*tlsInfo).timer; t != nil {
			t.Stop()
		}
	}
}
