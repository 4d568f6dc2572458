// Package proxyproto reads the PROXY protocol v2 header a load balancer sends first, and not one byte past it.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// signature opens every v2 header (the spec, section 2.2).
var signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// headerSize is the fixed part: the signature, version and command, family and
// protocol, and the length of what follows.
const headerSize = 16

// ErrNotProxy is returned when the connection does not start with a v2 header.
var ErrNotProxy = errors.New("proxyproto: no PROXY protocol v2 header")

// Read reads one v2 header from r with exact reads (io.ReadFull of the fixed part,
// then of the length it gives), so that r's next byte is the peer's first: r may be
// a socket read raw afterwards. src is the source address the header carries, the
// agent's; ok is false for a LOCAL header (the balancer's own connection, a
// health check) or a family without an IP address (UNSPEC, UNIX): the
// connection's own address stands then.
func Read(r io.Reader) (src netip.AddrPort, ok bool, err error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return src, false, fmt.Errorf("proxyproto: reading the header: %w", err)
	}
	if !bytes.Equal(h[:12], signature) {
		return src, false, ErrNotProxy
	}
	if h[12]>>4 != 2 {
		return src, false, fmt.Errorf("proxyproto: version %d, want 2", h[12]>>4)
	}
	cmd := h[12] & 0xf
	if cmd > 1 {
		return src, false, fmt.Errorf("proxyproto: unknown command %d", cmd)
	}
	rest := make([]byte, binary.BigEndian.Uint16(h[14:]))
	if _, err := io.ReadFull(r, rest); err != nil {
		return src, false, fmt.Errorf("proxyproto: reading the addresses: %w", err)
	}
	if cmd == 0 { // LOCAL
		return src, false, nil
	}
	switch h[13] >> 4 {
	case 1: // AF_INET: source, destination, source port, destination port
		if len(rest) < 12 {
			return src, false, fmt.Errorf("proxyproto: %d address bytes for IPv4, want 12", len(rest))
		}
		ip := netip.AddrFrom4([4]byte(rest[0:4]))
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(rest[8:])), true, nil
	case 2: // AF_INET6
		if len(rest) < 36 {
			return src, false, fmt.Errorf("proxyproto: %d address bytes for IPv6, want 36", len(rest))
		}
		ip := netip.AddrFrom16([16]byte(rest[0:16])).Unmap()
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(rest[32:])), true, nil
	}
	return src, false, nil // UNSPEC or UNIX: no IP address to use
}
