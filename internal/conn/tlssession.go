package conn

import (
	"crypto/tls"
	"net"
	"time"

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
