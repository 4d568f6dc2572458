package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hawk-agents/hawk/internal/legacy/formats"
)

// Legacy is the legacy.* section: listeners for the older wire formats
// (internal/legacy, docs/PROTOCOL.md "Legacy formats").
type Legacy struct {
	Listeners []LegacyListener `koanf:"listeners"`
}

// LegacyListener is one element of legacy.listeners. Unlike every other key, the
// list is one key whose value is a list of objects; its elements are named in errors
// as legacy.listeners[i].field.
//
// A reload may change Allow, MaxFrameSize (new connections) and IdleTimeout of a
// listener, matched by Name; adding or removing a listener, or changing its Address
// or Format, needs an upgrade (SIGHUP).
type LegacyListener struct {
	Name    string `koanf:"name" json:"name"`
	Address string `koanf:"address" json:"address"`
	Format  string `koanf:"format" json:"format"`
	// Allow lists the source networks (CIDR) permitted to connect: these formats
	// carry no credentials, so it is required.
	Allow        []string      `koanf:"allow" json:"allow"`
	MaxFrameSize int           `koanf:"max_frame_size" unit:"bytes" json:"max_frame_size"`
	IdleTimeout  time.Duration `koanf:"idle_timeout" json:"idle_timeout"`
}

var legacyFields = []string{"name", "address", "format", "allow", "max_frame_size", "idle_timeout"}

// decodeListeners is decodeHook's step for legacy.listeners: it takes a YAML list of
// mappings from a file, or the same as YAML flow text (JSON works) from the
// environment, a flag or a quoted string, and returns the list for mapstructure to
// decode element by element (with decodeHook: errors name legacy.listeners[i].field).
// A missing max_frame_size or idle_timeout takes the format's default. A reason for one
// element starts with "[i].field: ", which decodeErrors turns into its key.
func decodeListeners(raw any) (any, string) {
	return decodeObjects(raw, []LegacyListener(nil), legacyFields, `[{name: m, address: ":7380", format: ffff, allow: [10.0.0.0/8]}]`,
		func(m map[string]any) {
			if def, ok := formats.Lookup(fmt.Sprint(m["format"])); ok {
				if m["max_frame_size"] == nil {
					m["max_frame_size"] = def.DefaultMaxFrameSize
				}
				if m["idle_timeout"] == nil {
					m["idle_timeout"] = def.DefaultIdleTimeout.String()
				}
			}
		})
}

// legacyNameRE is compiled on first use: nothing at package init.
var legacyNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`) })

// validateLegacy checks every listener, naming each bad field as
// legacy.listeners[i].field.
func validateLegacy(c *Config, bad func(key, format string, args ...any)) {
	names := map[string]int{}
	for i, l := range c.Legacy.Listeners {
		key := func(f string) string { return fmt.Sprintf("legacy.listeners[%d].%s", i, f) }
		checkListenerName(names, "legacy.listeners", i, l.Name, bad)
		if reason := checkAddr(l.Address); reason != "" {
			bad(key("address"), "%s", reason)
		} else {
			switch {
			case sameListener(l.Address, c.Listen):
				bad(key("address"), "must not be the protocol listener's address (%s)", c.Listen)
			case c.Admin.Addr != "" && sameListener(l.Address, c.Admin.Addr):
				bad(key("address"), "must not be the admin listener's address (%s)", c.Admin.Addr)
			}
			for j := range i {
				if sameListener(l.Address, c.Legacy.Listeners[j].Address) {
					bad(key("address"), "must not be the address of legacy.listeners[%d] (%s)", j, c.Legacy.Listeners[j].Address)
				}
			}
		}
		f, okFormat := formats.Lookup(l.Format)
		if !okFormat {
			bad(key("format"), "must be ffff, c8c9, headers or file, not %q", l.Format)
		}
		if l.Format == formats.File && !c.Uploads.Enabled {
			bad(key("format"), "file stores what it receives as uploads: set uploads.enabled: true")
		}
		checkAllow(l.Allow, key("allow"), "these formats carry no credentials", bad)
		if okFormat && (l.MaxFrameSize < 1 || l.MaxFrameSize > f.MaxData) {
			bad(key("max_frame_size"), "must be between 1 and %d for %s, not %d", f.MaxData, l.Format, l.MaxFrameSize)
		}
		if l.IdleTimeout <= 0 {
			bad(key("idle_timeout"), "must be positive, not %s", l.IdleTimeout)
		}
	}
}

// AllowPrefixes parses Allow (validated: every entry is a CIDR).
func (l *LegacyListener) AllowPrefixes() ([]netip.Prefix, error) {
	return allowPrefixes(l.Allow, "legacy listener "+l.Name)
}

func cloneListeners(ls []LegacyListener) []LegacyListener {
	return cloneObjects(ls, func(l *LegacyListener) *[]string { return &l.Allow })
}

// formatListeners renders the list for Diff and flags' defaults.
func formatListeners(ls []LegacyListener) string {
	if len(ls) == 0 {
		return "[]"
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("{name: %s, address: %s, format: %s, allow: [%s], max_frame_size: %d, idle_timeout: %s}",
			l.Name, strconv.Quote(l.Address), l.Format, strings.Join(l.Allow, ", "), l.MaxFrameSize, l.IdleTimeout)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// redactedListeners is the list as /v1/config shows it.
func redactedListeners(ls []LegacyListener) []map[string]any {
	out := make([]map[string]any, len(ls))
	for i, l := range ls {
		out[i] = map[string]any{"name": l.Name, "address": l.Address, "format": l.Format, "allow": slices.Clone(l.Allow),
			"max_frame_size": int64(l.MaxFrameSize), "idle_timeout": l.IdleTimeout.String()}
	}
	return out
}

// diffListeners compares two lists by listener name. Adding or removing a listener
// is one restart-only change of legacy.listeners; a changed address or format is a
// restart-only change of legacy.listeners[i].address or .format (i in the new
// list); changes of allow, max_frame_size and idle_timeout are one live change of
// legacy.listeners.
func diffListeners(old, new []LegacyListener) []Change {
	return diffObjects("legacy.listeners", old, new, func(l *LegacyListener) string { return l.Name },
		func(o, n *LegacyListener) []fieldChange {
			return changed(fieldChange{"address", o.Address, n.Address}, fieldChange{"format", o.Format, n.Format})
		},
		func(o, n *LegacyListener) bool {
			return !slices.Equal(o.Allow, n.Allow) || o.MaxFrameSize != n.MaxFrameSize || o.IdleTimeout != n.IdleTimeout
		},
		formatListeners)
}
