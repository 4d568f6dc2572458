package conn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/tlsconf"
	"github.com/hawk-agents/hawk/internal/tlsrecord"
)

// tlsSession is c.nc of a TLS connection. crypto/tls does the handshake; a TLS
// 1.3 session then goes on in hawk's record layer (internal/tlsrecord), which can
// hand it to the next process, and crypto/tls is not used again. A TLS 1.2
// session stays in crypto/tls.
//
// The reader sets rl, once, after the handshake and before any output is queued
// (output starts with WELCOME, after HELLO): the flusher, which starts after
// that, sees it. Close and deadlines that come from other goroutines (the
// reaper, a drain) never race with it: deadlines go to the socket, and Close is
// the record layer's only once rl is set.
type tlsSession struct {
	tc  *tls.Conn
	t   *tlsTransport
	rt  *tlsrecord.Transport
	sec *tlsrecord.Secrets
	rl  *tlsrecord.Conn
}

// newTLSSession is a TLS connection over t with cfg (its GetConfigForClient, if
// any, gives the material in force); each connection's key log is its own.
func newTLSSession(t *tlsTransport, cfg *tls.Config) *tlsSession {
	s := &tlsSession{t: t, sec: &tlsrecord.Secrets{}}
	s.rt = tlsrecord.NewTransport(t, s.sec)
	s.tc = tls.Server(s.rt, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		base := cfg
		if cfg.GetConfigForClient != nil {
			c, err := cfg.GetConfigForClient(h)
			if err != nil {
				return nil, err
			}
			if c != nil {
				base = c
			}
		}
		return tlsrecord.Capture(base, s.sec), nil
	}})
	return s
}

// switchToRecordLayer, on the reader right after the handshake, takes a TLS 1.3
// session from crypto/tls. A session it cannot take stays in crypto/tls and
// falls back to GOAWAY at a handoff; err says why.
func (s *tlsSession) switchToRecordLayer() error {
	st, err := tlsrecord.Switch(s.tc, s.rt)
	if err != nil {
		s.rt.Passthrough()
		s.rt = nil
		return err
	}
	s.rt = nil
	rl, err := tlsrecord.New(s.t, st)
	st.Drop()
	if err != nil {
		return err
	}
	s.rl = rl
	// crypto/tls is not used again: its connection, with its record and
	// handshake buffers, keys and per-connection configuration, goes.
	s.tc, s.sec = nil, nil
	return nil
}

func (s *tlsSession) Read(p []byte) (int, error) {
	if s.rl != nil {
		return s.rl.Read(p)
	}
	return s.tc.Read(p)
}

func (s *tlsSession) Write(p []byte) (int, error) {
	if s.rl != nil {
		return s.rl.Write(p)
	}
	return s.tc.Write(p)
}

func (s *tlsSession) Close() error {
	if s.rl != nil {
		return s.rl.Close()
	}
	return s.tc.Close()
}

func (s *tlsSession) CloseWrite() error {
	if s.rl != nil {
		return s.rl.CloseWrite()
	}
	return s.tc.CloseWrite()
}

func (s *tlsSession) LocalAddr() net.Addr                { return s.t.LocalAddr() }
func (s *tlsSession) RemoteAddr() net.Addr               { return s.t.RemoteAddr() }
func (s *tlsSession) SetDeadline(t time.Time) error      { return s.t.SetDeadline(t) }
func (s *tlsSession) SetReadDeadline(t time.Time) error  { return s.t.SetReadDeadline(t) }
func (s *tlsSession) SetWriteDeadline(t time.Time) error { return s.t.SetWriteDeadline(t) }

// readNoWait reads what the session holds already (opened, or whole records
// received) into p; errWouldBlock when it holds nothing.
func (s *tlsSession) readNoWait(p []byte) (int, error) {
	if s.rl != nil {
		if !s.rl.Ready() {
			return 0, errWouldBlock
		}
		return s.rl.Read(p)
	}
	return s.t.readNoWait(s.tc, p)
}

// session returns c's TLS session; c is a TLS connection.
func (c *Conn) session() *tlsSession { return c.nc.(*tlsSession) }

// tlsMovable reports whether c's TLS session can move: it is past HELLO (the
// reader switched it before storing that state) and in the record layer.
func (c *Conn) tlsMovable() bool {
	return c.state.Load() == stateActive && c.session().rl != nil
}

// tlsHandoffState is c's TLS session and client chain at its quiet point, on the
// reader. A session State refuses (it failed meanwhile) goes as a state without
// secrets: the new process refuses it and closes that connection only.
func (c *Conn) tlsHandoffState() *handoff.TLSState {
	ts := &handoff.TLSState{}
	if st, err := c.session().rl.State(); err == nil {
		ts.Suite, ts.InSecret, ts.OutSecret, ts.InSeq, ts.OutSeq, ts.Input = st.Suite, st.InSecret, st.OutSecret, st.InSeq, st.OutSeq, st.Input
	}
	if v, ok := c.m.tlsConns.Load(c); ok {
		for _, cert := range v.(*tlsInfo).chain {
			ts.Chain = append(ts.Chain, cert.Raw)
		}
	}
	return ts
}

// adoptTLS makes c, adopted from the previous process over nc, carry on the TLS
// session ts describes, with its client's chain and identity.
func (c *Conn) adoptTLS(nc net.Conn, rc syscall.RawConn, ts *handoff.TLSState) error {
	t := &tlsTransport{Conn: nc, c: c, rc: rc}
	st := tlsrecord.State{Suite: ts.Suite, InSecret: ts.InSecret, OutSecret: ts.OutSecret,
		InSeq: ts.InSeq, OutSeq: ts.OutSeq, Input: ts.Input}
	rl, err := tlsrecord.New(t, st)
	st.Drop()
	if err != nil {
		return err
	}
	ti := &tlsInfo{}
	for _, der := range ts.Chain {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("client certificate chain: %w", err)
		}
		ti.chain = append(ti.chain, cert)
	}
	if len(ti.chain) > 0 {
		ti.notAfter = ti.chain[0].NotAfter
		ti.certID, ti.certErr = tlsconf.ClientID(ti.chain[0], c.m.Settings().ClientIDFrom)
	}
	c.nc = &tlsSession{t: t, rl: rl}
	c.rc = nil
	if ti.chain != nil {
		c.m.tlsConns.Store(c, ti) // see tlsHandshake
	}
	return nil
}
