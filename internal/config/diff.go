package config

import "sort"

// Change is one key whose value differs between two configs.
type Change struct {
	Key string
	// Old and New are the values as text ("10s", "100000", "console"); a secret shows as
	// "[redacted N tokens]" only, so a changed token list may read the same on both sides.
	Old, New string
	// RestartOnly keys cannot change in a running process: they need an upgrade (SIGHUP).
	RestartOnly bool
}

// Diff compares the running config with a candidate and returns every changed key,
// sorted by key. A nil config compares as the zero Config. Token lists compare as sets.
func Diff(old, new *Config) []Change {
	if old == nil {
		old = &Config{}
	}
	if new == nil {
		new = &Config{}
	}
	var out []Change
	for i := range keys {
		k := &keys[i]
		if k.kind == kindObjects {
			if k.Name == "udp.listeners" {
				out = append(out, diffUDPListeners(old.UDP.Listeners, new.UDP.Listeners)...)
				continue
			}
			out = append(out, diffListeners(old.Legacy.Listeners, new.Legacy.Listeners)...)
			continue
		}
		a, b := k.get(old), k.get(new)
		if k.equal(a, b) {
			continue
		}
		out = append(out, Change{Key: k.Name, Old: k.format(a), New: k.format(b), RestartOnly: k.Reload == RestartOnly})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// restartReason is the FieldError reason Prepare gives for a changed restart-only key.
const restartReason = "requires an upgrade (SIGHUP)"

// Prepare is the server's reload step: load the candidate from l, validate it, and
// diff it against running. If any key is invalid, or a restart-only key changed, it
// returns nil and a *ValidationError naming every offending key and why (a restart-only
// change reads "listen: requires an upgrade (SIGHUP)"); the running config stays.
// Otherwise it returns the candidate and its changes (possibly none). A source that
// cannot be read (the file missing or not YAML) is a plain error.
func Prepare(l *Loader, running *Config) (*Config, []Change, error) {
	c, ferrs, err := l.load()
	if err != nil {
		return nil, nil, err
	}
	changes := Diff(running, c)
	bad := make(map[string]bool, len(ferrs))
	for _, e := range ferrs {
		bad[e.Key] = true
	}
	for _, ch := range changes {
		if ch.RestartOnly && !bad[ch.Key] { // a bad value is reported once, as bad
			ferrs = append(ferrs, FieldError{Key: ch.Key, Reason: restartReason})
		}
	}
	if len(ferrs) > 0 {
		sortFieldErrors(ferrs)
		return nil, nil, &ValidationError{Errors: ferrs}
	}
	return c, changes, nil
}
