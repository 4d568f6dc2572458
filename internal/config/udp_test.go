package config

import (
	"strings"
	"testing"
)

func TestUDPListenerErrors(t *testing.T) {
	ok := `{name: u, address: "127.0.0.1:7390", format: lines, allow: [10.0.0.0/8]}`
	for _, tc := range []struct{ list, key, reason string }{
		{`[{name: "U!", address: ":1", format: lines, allow: [10.0.0.0/8]}]`, "udp.listeners[0].name", "must be 1-64"},
		{"[" + ok + ", " + ok + "]", "udp.listeners[1].name", "also the name"},
		{`[{name: u, address: "x", format: lines, allow: [10.0.0.0/8]}]`, "udp.listeners[0].address", "host:port"},
		{`[{name: u, address: ":1", format: ffff, allow: [10.0.0.0/8]}]`, "udp.listeners[0].format", "lines or syslog or report"},
		{`[{name: u, address: ":1", format: lines}]`, "udp.listeners[0].allow", "must list"},
		{`[{name: u, address: ":1", format: lines, allow: [nope]}]`, "udp.listeners[0].allow", "not a CIDR"},
		{`[{name: u, address: ":1", format: lines, allow: [10.0.0.0/8], max_datagram: 70000}]`, "udp.listeners[0].max_datagram", "between 1 and 65535"},
		{`[{name: u, address: ":1", format: lines, allow: [10.0.0.0/8], receive_buffer: -1}]`, "udp.listeners[0].receive_buffer", "between 0"},
		{`[{name: u, address: ":1", format: lines, allow: [10.0.0.0/8], max_pending: 0}]`, "udp.listeners[0].max_pending", "positive"},
		{`[{name: u, address: ":1", format: lines, allow: [10.0.0.0/8], colour: red}]`, "udp.listeners", "unknown field"},
	} {
		_, err := (&Loader{Env: []string{"HAWK_UDP_LISTENERS=" + tc.list}}).Load()
		if err == nil || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: got %v, want %s: %s", tc.list, err, tc.key, tc.reason)
		}
	}
}

func TestUDPListenerDiff(t *testing.T) {
	base := []UDPListener{{Name: "u", Address: ":1", Format: "lines", Allow: []string{"10.0.0.0/8"}, MaxDatagram: 100, MaxPending: 5}}
	live := cloneUDPListeners(base)
	live[0].Allow, live[0].Reply, live[0].MaxPending = []string{"10.0.0.0/16"}, true, 6
	ch := diffUDPListeners(base, live)
	if len(ch) != 1 || ch[0].Key != "udp.listeners" || ch[0].RestartOnly {
		t.Errorf("live change: %+v", ch)
	}
	moved := cloneUDPListeners(base)
	moved[0].Address, moved[0].MaxDatagram = ":2", 200
	ch = diffUDPListeners(base, moved)
	if len(ch) != 2 || ch[0].Key != "udp.listeners[0].address" || ch[1].Key != "udp.listeners[0].max_datagram" || !ch[0].RestartOnly || !ch[1].RestartOnly {
		t.Errorf("restart-only change: %+v", ch)
	}
	if ch = diffUDPListeners(base, nil); len(ch) != 1 || !ch[0].RestartOnly {
		t.Errorf("removal: %+v", ch)
	}
}
