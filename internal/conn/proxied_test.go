package conn

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// proxyV2 is a PROXY protocol v2 header for a TCP/IPv4 connection from src.
func proxyV2(src netip.AddrPort) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c")
	b = append(b, src.Addr().AsSlice()...)
	b = append(b, 127, 0, 0, 1)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, 7373)
}

func hello(id string) []byte {
	return protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: id})
}

// Connections from a listen_proxy_from balancer are the agents' the header
// names: in the connection list, and for auth.open's loopback rule.
func TestProxiedConnectionsAreTheAgents(t *testing.T) {
	ts := startServer(t, testSettings(), func(o *Options) {
		o.ProxyFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})

	agent := netip.MustParseAddrPort("127.0.0.9:4242")
	p := testutil.Dial(t, ts.addr)
	p.Write(append(proxyV2(agent), hello("behind-balancer")...))
	p.Expect(protocol.TypeWelcome)
	testutil.Eventually(t, 5*time.Second, func() bool {
		for _, c := range ts.m.Connections(0, 10) {
			if c.ClientID == "behind-balancer" {
				return c.Remote == agent.String()
			}
		}
		return false
	}, "the connection listed as coming from %s", agent)

	// Not on loopback: without credentials and auth.open, refused (the balancer
	// itself is on loopback).
	far := testutil.Dial(t, ts.addr)
	far.Write(append(proxyV2(netip.MustParseAddrPort("192.0.2.7:5000")), hello("far")...))
	far.ExpectError(protocol.CodeUnauthorized)

	// From the balancer without a header: closed before any answer.
	bare := testutil.Dial(t, ts.addr)
	bare.Write(hello("bare"))
	bare.ExpectClosed()
}

// From an address not in listen_proxy_from, a header is not believed: it is
// read as a frame, and is not one.
func TestProxyHeaderFromOthersRefused(t *testing.T) {
	ts := startServer(t, testSettings(), func(o *Options) {
		o.ProxyFrom = []netip.Prefix{netip.MustParsePrefix("10.9.9.9/32")}
	})
	p := testutil.Dial(t, ts.addr)
	p.Write(append(proxyV2(netip.MustParseAddrPort("127.0.0.9:1")), hello("spoof")...))
	p.ExpectClosed()
	for _, c := range ts.m.Connections(0, 10) {
		if c.ClientID == "spoof" {
			t.Errorf("a header from a non-balancer was believed: %+v", c)
		}
	}
}
