package conn

import (
	"net/netip"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/auth"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// AuthObserver is implemented by an Observer that also counts HELLOs by the
// credential that decided them (hawk_auth_*). The Manager asks once per HELLO.
type AuthObserver interface {
	// Authenticated counts a HELLO admitted with credential ("" on an open server).
	Authenticated(credential string)
	// AuthRefused counts a HELLO refused for reason; credential is "" when the
	// token matched none.
	AuthRefused(credential string, reason auth.Reason)
}

// authPeer is what auth.Check needs of c besides its token and client id.
func (c *Conn) authPeer(s *Settings) auth.Peer {
	p := auth.Peer{Open: s.AuthOpen}
	if ap, err := netip.ParseAddrPort(c.remote); err == nil {
		p.Addr = ap.Addr()
	}
	if v, ok := c.m.tlsConns.Load(c); ok {
		ti := v.(*tlsInfo)
		p.CertVerified = ti.chain != nil && ti.certErr == nil
	}
	return p
}

// authorize decides whether token may speak for id on c under s. A refusal is
// logged (never the token), counted and answered with ERROR unauthorized; the
// caller closes nothing else and touches no state of the client named.
func (c *Conn) authorize(s *Settings, token, id string) bool {
	v := s.Auth.Check(token, id, c.authPeer(s))
	ao, _ := c.m.obs.(AuthObserver)
	if v.Reason == auth.OK {
		if ao != nil {
			ao.Authenticated(v.Name())
		}
		return true
	}
	if ao != nil {
		ao.AuthRefused(v.Name(), v.Reason)
	}
	c.m.handshakeFailed(c, string(v.Reason), zap.String("client_id", id), zap.String("credential", v.Name()))
	c.fail(ReasonHandshake, protocol.CodeUnauthorized, v.Message(id))
	return false
}

// stillAuthorized re-checks an established connection under new settings (a
// reload, or the process that adopted it); one no longer covered is told ERROR
// token_revoked and closed.
func (c *Conn) stillAuthorized(s *Settings) bool {
	v := s.Auth.Check(c.token, c.clientID, c.authPeer(s))
	if v.Reason == auth.OK {
		return true
	}
	msg := "the token this connection authenticated with was revoked"
	if v.Reason == auth.NotCovered {
		msg = "credential " + v.Name() + " no longer covers this connection's client_id"
	} else if v.Reason == auth.OpenRemote {
		msg = "the server has no credentials any more and serves loopback agents only (auth.open is false)"
	}
	c.fail(ReasonRevoked, protocol.CodeTokenRevoked, msg)
	return false
}
