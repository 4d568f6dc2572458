package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// UDP is the udp.* section: datagram listeners (internal/udp).
type UDP struct {
	Listeners []UDPListener `koanf:"listeners"`
}

// UDPListener is one element of udp.listeners, named in errors as
// udp.listeners[i].field.
//
// A reload may change Allow, Reply and MaxPending of a listener, matched by Name;
// adding or removing a listener, or changing its Address, Format, MaxDatagram or
// ReceiveBuffer, needs an upgrade (SIGHUP), which hands the socket over.
type UDPListener struct {
	Name    string `koanf:"name" json:"name"`
	Address string `koanf:"address" json:"address"`
	Format  string `koanf:"format" json:"format"`
	// Allow lists the source networks (CIDR) whose datagrams are read: the formats
	// carry no credentials, so it is required.
	Allow []string `koanf:"allow" json:"allow"`
	// MaxDatagram is the largest datagram stored; a larger one is refused (oversize).
	MaxDatagram int `koanf:"max_datagram" unit:"bytes" json:"max_datagram"`
	// ReceiveBuffer is the socket's SO_RCVBUF; 0 keeps the kernel's default. The
	// kernel caps it at net.core.rmem_max.
	ReceiveBuffer int `koanf:"receive_buffer" unit:"bytes" json:"receive_buffer"`
	// MaxPending bounds the datagrams read but not yet durable; past it a datagram
	// is dropped and counted (UDP has no back-pressure).
	MaxPending int `koanf:"max_pending" json:"max_pending"`
	// Reply answers each stored datagram with a receipt no larger than it.
	Reply bool `koanf:"reply" json:"reply"`
}

// UDPFormats are the formats a UDP listener may have.
var UDPFormats = []string{"lines", "syslog", "report"}

// UDP listener defaults, for a field left out.
const (
	DefaultUDPMaxDatagram   = 65507 // the largest UDP payload over IPv4
	DefaultUDPReceiveBuffer = 4 << 20
	DefaultUDPMaxPending    = 65536
)

var udpFields = []string{"name", "address", "format", "allow", "max_datagram", "receive_buffer", "max_pending", "reply"}

// decodeUDPListeners is decodeHook's step for udp.listeners, as decodeListeners is
// for legacy.listeners: a YAML list of mappings, or YAML flow text.
func decodeUDPListeners(raw any) (any, string) {
	return decodeObjects(raw, []UDPListener(nil), udpFields, `[{name: u, address: ":7390", format: lines, allow: [10.0.0.0/8]}]`,
		func(m map[string]any) {
			for f, def := range map[string]any{"max_datagram": DefaultUDPMaxDatagram, "receive_buffer": DefaultUDPReceiveBuffer,
				"max_pending": DefaultUDPMaxPending, "reply": false} {
				if m[f] == nil {
					m[f] = def
				}
			}
		})
}

// validateUDP checks every UDP listener, naming each bad field as
// udp.listeners[i].field.
func validateUDP(c *Config, bad func(key, format string, args ...any)) {
	names := map[string]int{}
	for i, l := range c.UDP.Listeners {
		key := func(f string) string { return fmt.Sprintf("udp.listeners[%d].%s", i, f) }
		checkListenerName(names, "udp.listeners", i, l.Name, bad)
		if reason := checkAddr(l.Address); reason != "" {
			bad(key("address"), "%s", reason)
		} else {
			for j := range i {
				if sameListener(l.Address, c.UDP.Listeners[j].Address) {
					bad(key("address"), "must not be the address of udp.listeners[%d] (%s)", j, c.UDP.Listeners[j].Address)
				}
			}
		}
		if !slices.Contains(UDPFormats, l.Format) {
			bad(key("format"), "must be %s, not %q", strings.Join(UDPFormats, " or "), l.Format)
		}
		checkAllow(l.Allow, key("allow"), "datagrams carry no credentials", bad)
		if l.MaxDatagram < 1 || l.MaxDatagram > 65535 {
			bad(key("max_datagram"), "must be between 1 and 65535, not %d", l.MaxDatagram)
		}
		if l.ReceiveBuffer < 0 || l.ReceiveBuffer > 1<<30 {
			bad(key("receive_buffer"), "must be between 0 (the kernel's default) and 1GiB, not %d", l.ReceiveBuffer)
		}
		if l.MaxPending < 1 {
			bad(key("max_pending"), "must be positive, not %d", l.MaxPending)
		}
	}
}

// AllowPrefixes parses Allow (validated: every entry is a CIDR).
func (l *UDPListener) AllowPrefixes() ([]netip.Prefix, error) {
	return allowPrefixes(l.Allow, "udp listener "+l.Name)
}

func cloneUDPListeners(ls []UDPListener) []UDPListener {
	return cloneObjects(ls, func(l *UDPListener) *[]string { return &l.Allow })
}

// formatUDPListeners renders the list for Diff and flags' defaults.
func formatUDPListeners(ls []UDPListener) string {
	if len(ls) == 0 {
		return "[]"
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("{name: %s, address: %s, format: %s, allow: [%s], max_datagram: %d, receive_buffer: %d, max_pending: %d, reply: %t}",
			l.Name, strconv.Quote(l.Address), l.Format, strings.Join(l.Allow, ", "), l.MaxDatagram, l.ReceiveBuffer, l.MaxPending, l.Reply)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// redactedUDPListeners is the list as /v1/config shows it.
func redactedUDPListeners(ls []UDPListener) []map[string]any {
	out := make([]map[string]any, len(ls))
	for i, l := range ls {
		out[i] = map[string]any{"name": l.Name, "address": l.Address, "format": l.Format, "allow": slices.Clone(l.Allow),
			"max_datagram": int64(l.MaxDatagram), "receive_buffer": int64(l.ReceiveBuffer), "max_pending": int64(l.MaxPending), "reply": l.Reply}
	}
	return out
}

// diffUDPListeners compares two lists by listener name, as diffListeners does:
// membership and the socket's fields (address, format, max_datagram,
// receive_buffer) are restart-only; allow, reply and max_pending are live.
func diffUDPListeners(old, new []UDPListener) []Change {
	return diffObjects("udp.listeners", old, new, func(l *UDPListener) string { return l.Name },
		func(o, n *UDPListener) []fieldChange {
			return changed(fieldChange{"address", o.Address, n.Address}, fieldChange{"format", o.Format, n.Format},
				fieldChange{"max_datagram", strconv.Itoa(o.MaxDatagram), strconv.Itoa(n.MaxDatagram)},
				fieldChange{"receive_buffer", strconv.Itoa(o.ReceiveBuffer), strconv.Itoa(n.ReceiveBuffer)})
		},
		func(o, n *UDPListener) bool {
			return !slices.Equal(o.Allow, n.Allow) || o.Reply != n.Reply || o.MaxPending != n.MaxPending
		},
		formatUDPListeners)
}
