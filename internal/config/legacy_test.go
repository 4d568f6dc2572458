package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Errors in legacy.listeners name the element and the field, and where the value
// came from.
func TestLegacyListenerErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{`[{name: m, address: ":7380", format: ffff, allow: [10.0.0.0/8]}, {name: n, address: ":7381", format: ffff, allow: ["10.0.0.0/33"]}]`,
			`legacy.listeners[1].allow: "10.0.0.0/33" is not a CIDR`},
		{`[{name: m, address: ":7380", format: ffff}]`, `legacy.listeners[0].allow: must list the source networks`},
		{`[{name: m, address: ":7380", format: ffff, allow: []}]`, `legacy.listeners[0].allow: must list`},
		{`[{name: m, address: ":7380", format: xml, allow: [10.0.0.0/8]}]`, `legacy.listeners[0].format: must be ffff, c8c9, headers or file, not "xml"`},
		{`[{name: m, address: ":7380", format: file, allow: [10.0.0.0/8]}]`, `legacy.listeners[0].format: file stores what it receives as uploads: set uploads.enabled`},
		{`[{name: m, address: ":7380", format: ffff, allow: [10.0.0.0/8], max_frame_size: 70000}]`, `legacy.listeners[0].max_frame_size: must be between 1 and 65535 for ffff`},
		{`[{name: m, address: ":7380", format: ffff, allow: [10.0.0.0/8], idle_timeout: ten}]`, `legacy.listeners[0].idle_timeout: invalid duration "ten"`},
		{`[{name: m, address: ":7380", format: ffff, allow: [10.0.0.0/8], alow: []}]`, `legacy.listeners[0].alow: unknown field (did you mean allow?)`},
		{`[{name: m, address: ":7380", format: ffff, allow: [10.0.0.0/8]}, {name: m, address: ":7381", format: ffff, allow: [10.0.0.0/8]}]`,
			`legacy.listeners[1].name: "m" is also the name of legacy.listeners[0]`},
		{`[{name: m, address: ":7380", format: ffff, allow: [10.0.0.0/8]}, {name: n, address: "127.0.0.1:7380", format: ffff, allow: [10.0.0.0/8]}]`,
			`legacy.listeners[1].address: must not be the address of legacy.listeners[0]`},
		{`[{name: m, address: "127.0.0.1:7373", format: ffff, allow: [10.0.0.0/8]}]`, `legacy.listeners[0].address: must not be the protocol listener's address`},
		{`[{name: "", address: ":7380", format: ffff, allow: [10.0.0.0/8]}]`, `legacy.listeners[0].name: must be 1-64`},
	} {
		file := tempConfig(t, "legacy:\n  listeners: "+tc.yaml+"\n")
		_, err := (&Loader{File: file, Env: []string{}}).Load()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "(file "+file+")") {
			t.Errorf("%s:\n got %v\nwant %s (file …)", tc.yaml, err, tc.want)
		}
	}
}

// Defaults per format, and the list in YAML block form.
func TestLegacyListenerDefaults(t *testing.T) {
	file := tempConfig(t, `legacy:
  listeners:
    - name: metrics
      address: ":7380"
      format: ffff
      allow: [10.0.0.0/8]
    - name: devices
      address: ":7381"
      format: c8c9
      allow: [192.0.2.0/24]
      max_frame_size: 64KiB
`)
	c := mustLoad(t, &Loader{File: file, Env: []string{}})
	ls := c.Legacy.Listeners
	if len(ls) != 2 || ls[0].MaxFrameSize != 65535 || ls[0].IdleTimeout != 10*time.Second || ls[1].MaxFrameSize != 64<<10 || ls[1].IdleTimeout != 5*time.Minute {
		t.Fatalf("%+v", ls)
	}
	if r := c.Redacted()["legacy.listeners"].([]map[string]any); len(r) != 2 || r[0]["idle_timeout"] != "10s" {
		t.Errorf("Redacted: %v", r)
	}
}

// A reload may change allow, idle_timeout and max_frame_size (one live change of
// legacy.listeners); it refuses a new address or format naming the element, and an
// added or removed listener naming the key.
func TestLegacyListenerReload(t *testing.T) {
	base := `[{name: m, address: ":7380", format: ffff, allow: [10.0.0.0/8]}]`
	running := mustLoad(t, &Loader{File: tempConfig(t, "legacy:\n  listeners: "+base+"\n"), Env: []string{}})
	for _, tc := range []struct{ yaml, refused string }{
		{`[{name: m, address: ":7380", format: ffff, allow: [10.0.0.0/8, 127.0.0.1/32], idle_timeout: 3s, max_frame_size: 1000}]`, ""},
		{`[{name: m, address: ":7390", format: ffff, allow: [10.0.0.0/8]}]`, "legacy.listeners[0].address: requires an upgrade (SIGHUP)"},
		{`[{name: m, address: ":7380", format: c8c9, allow: [10.0.0.0/8]}]`, "legacy.listeners[0].format: requires an upgrade (SIGHUP)"},
		{`[]`, "legacy.listeners: requires an upgrade (SIGHUP)"},
		{`[{name: n, address: ":7380", format: ffff, allow: [10.0.0.0/8]}]`, "legacy.listeners: requires an upgrade (SIGHUP)"},
	} {
		next, changes, err := Prepare(&Loader{File: tempConfig(t, "legacy:\n  listeners: "+tc.yaml+"\n"), Env: []string{}}, running)
		if tc.refused == "" {
			if err != nil || next == nil || len(changes) != 1 || changes[0].Key != "legacy.listeners" || changes[0].RestartOnly {
				t.Errorf("%s: %v %v", tc.yaml, changes, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || next != nil || !strings.Contains(err.Error(), tc.refused) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.refused)
		}
	}
}
