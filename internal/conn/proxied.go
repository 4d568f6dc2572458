package conn

import (
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/proxyproto"
)

// A load balancer in front of hawk (listen_proxy_from) makes every agent come
// from its address: per-source rules (the admission shares, auth.open's loopback
// rule, the logs) would see one source. The balancer says who connected in a
// PROXY protocol v2 header before the agent's first byte; only balancers named
// in listen_proxy_from are believed, so an agent cannot claim another address.

// fromBalancer reports whether nc comes from a listen_proxy_from network.
func (m *Manager) fromBalancer(nc net.Conn) bool {
	if len(m.proxyFrom) == 0 {
		return false
	}
	ip, ok := ipOf(nc.RemoteAddr())
	if !ok {
		return false
	}
	for _, p := range m.proxyFrom {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// acceptProxied reads the PROXY header of a connection from a balancer, on a
// goroutine of its own (a balancer slow to send it must not stall the accept
// loop), within handshake.timeout, then accepts the connection as the agent's.
func (m *Manager) acceptProxied(nc net.Conn) {
	timeout := m.Settings().HandshakeTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	nc.SetReadDeadline(time.Now().Add(timeout))
	src, ok, err := proxyproto.Read(nc)
	nc.SetReadDeadline(time.Time{})
	if err != nil {
		m.log.Warn("connection from a balancer closed: no valid PROXY protocol v2 header",
			zap.String("balancer", nc.RemoteAddr().String()), zap.Error(err))
		m.obs.Closed(ReasonProtocol, false)
		nc.Close()
		return
	}
	remote := nc.RemoteAddr()
	if ok {
		remote = net.TCPAddrFromAddrPort(src)
	}
	m.acceptFrom(nc, remote)
}
