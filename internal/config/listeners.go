package config

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
)

// What legacy.listeners and udp.listeners share: both are one key holding a list
// of named listeners with a required allow list.

// decodeObjects is decodeHook's step for a list of listeners: it takes a YAML list
// of mappings from a file, or the same as YAML flow text (JSON works) from the
// environment, a flag or a quoted string, checks each element's fields against
// fields and lets defaults fill what an element leaves out. empty is the list's
// nil value; example is a valid list, for the error that wants one. A reason for
// one element starts with "[i].field: ", which decodeErrors turns into its key.
func decodeObjects(raw any, empty any, fields []string, example string, defaults func(m map[string]any)) (any, string) {
	if s, ok := raw.(string); ok {
		if strings.TrimSpace(s) == "" {
			return empty, ""
		}
		m, err := yaml.Parser().Unmarshal([]byte("v: " + s))
		if err != nil {
			return nil, "must be a YAML list of listeners such as " + example + ": " + err.Error()
		}
		raw = m["v"]
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, "must be a list of listeners (" + strings.Join(fields, ", ") + "), not " + describe(raw)
	}
	if len(list) == 0 {
		return empty, ""
	}
	out := make([]any, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Sprintf("[%d]: must be a mapping (%s), not %s", i, strings.Join(fields, ", "), describe(e))
		}
		for _, f := range slices.Sorted(maps.Keys(m)) {
			if !slices.Contains(fields, f) {
				return nil, fmt.Sprintf("[%d].%s: unknown field%s", i, f, didYouMean(f, fields))
			}
		}
		m = maps.Clone(m)
		defaults(m)
		out[i] = m
	}
	return out, ""
}

// checkListenerName checks the i-th listener's name of section (legacy.listeners)
// against the pattern and the names before it, recorded in names.
func checkListenerName(names map[string]int, section string, i int, name string, bad func(key, format string, args ...any)) {
	key := fmt.Sprintf("%s[%d].name", section, i)
	switch j, dup := names[name]; {
	case !legacyNameRE().MatchString(name):
		bad(key, "must be 1-64 of a-z, 0-9, _ and - (starting with a letter or digit), not %q", name)
	case dup:
		bad(key, "%q is also the name of %s[%d]", name, section, j)
	default:
		names[name] = i
	}
}

// checkAllow checks a listener's required allow list; why says why it is required.
func checkAllow(allow []string, key, why string, bad func(key, format string, args ...any)) {
	if len(allow) == 0 {
		bad(key, "must list the source networks permitted (CIDR, e.g. 10.0.0.0/8): %s", why)
	}
	for _, a := range allow {
		if _, err := netip.ParsePrefix(a); err != nil {
			bad(key, "%q is not a CIDR (such as 10.0.0.0/8 or 192.0.2.7/32)", a)
		}
	}
}

// allowPrefixes parses a validated allow list; what names the listener in errors.
func allowPrefixes(allow []string, what string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(allow))
	for _, a := range allow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("%s: allow: %w", what, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// cloneObjects deep-copies a list of listeners: allow gives each one's list.
func cloneObjects[T any](ls []T, allow func(*T) *[]string) []T {
	if ls == nil {
		return nil
	}
	out := slices.Clone(ls)
	for i := range out {
		a := allow(&out[i])
		*a = slices.Clone(*a)
	}
	return out
}

// fieldChange is one restart-only field of a listener that differs: its name and
// both values as text.
type fieldChange struct{ field, old, new string }

// diffObjects compares two lists of listeners by name. Adding or removing a
// listener is one restart-only change of section; a changed field restart gives
// is a restart-only change of section[i].field (i in the new list); live changes
// (live says whether a listener has any) are one live change of section.
func diffObjects[T any](section string, old, new []T, name func(*T) string, restart func(o, n *T) []fieldChange,
	live func(o, n *T) bool, format func([]T) string) []Change {
	byName := make(map[string]*T, len(old))
	for i := range old {
		byName[name(&old[i])] = &old[i]
	}
	var out []Change
	membership, anyLive := len(old) != len(new), false
	for i := range new {
		n := &new[i]
		o := byName[name(n)]
		if o == nil {
			membership = true
			continue
		}
		for _, f := range restart(o, n) {
			out = append(out, Change{Key: fmt.Sprintf("%s[%d].%s", section, i, f.field), Old: f.old, New: f.new, RestartOnly: true})
		}
		anyLive = anyLive || live(o, n)
	}
	if membership {
		out = append(out, Change{Key: section, Old: format(old), New: format(new), RestartOnly: true})
	}
	if anyLive {
		out = append(out, Change{Key: section, Old: format(old), New: format(new)})
	}
	return out
}

// changed lists the fields whose values differ.
func changed(fs ...fieldChange) []fieldChange {
	var out []fieldChange
	for _, f := range fs {
		if f.old != f.new {
			out = append(out, f)
		}
	}
	return out
}
