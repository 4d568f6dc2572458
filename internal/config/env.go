package config

import (
	"regexp"
	"strings"
	"sync"

	env "github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/v2"
)

const envPrefix = "HAWK_"

// envName is the environment variable for a key: limits.max_conns → HAWK_LIMITS_MAX_CONNS.
// Written byte by byte (one allocation): every new process names every key's.
func envName(key string) string {
	var b strings.Builder
	b.Grow(len(envPrefix) + len(key))
	b.WriteString(envPrefix)
	for i := range len(key) {
		switch c := key[i]; {
		case c == '.':
			b.WriteByte('_')
		case 'a' <= c && c <= 'z':
			b.WriteByte(c - 'a' + 'A')
		case c < 0x80:
			b.WriteByte(c)
		default: // not a key's name (they are ASCII), but named as before
			return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		}
	}
	return b.String()
}

// envProvider reads HAWK_* variables as keys, matching each to a known key, which makes
// the mapping unambiguous for keys with '_' in them (HAWK_SERVER_ID is server_id,
// HAWK_LIMITS_MAX_CONNS is limits.max_conns), where the provider's usual
// replace-'_'-by-'.' would not be. Values stay text for decodeHook (HAWK_AUTH_TOKENS is
// comma separated). A later duplicate wins, as in os/exec. It records the source of each
// key in prov and reports every unknown HAWK_* variable in ferrs.
func envProvider(environ []string, prov map[string]string, ferrs *[]FieldError) koanf.Provider {
	unknown := make(map[string]bool)
	return env.Provider(".", env.Opt{
		Prefix:      envPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, val string) (string, any) {
			k := index().byEnv[name]
			switch {
			case k != nil:
				prov[k.Name] = sourceEnv + name
				return k.Name, val
			case name == GenerationEnv || name == UpgradeRequestedEnv:
				// hawk's own, passed to an upgrade's new process.
			case serviceLink().MatchString(name):
				// Kubernetes' variables for a Service named hawk: not ours, not a typo.
			case !unknown[name]:
				unknown[name] = true
				*ferrs = append(*ferrs, FieldError{Key: name, Reason: "unknown environment variable" + didYouMean(name, knownEnv())})
			}
			return "", nil
		},
	})
}

// GenerationEnv carries the process generation (1, 2, 3… across upgrades) from a
// process to the one its upgrade execs. It is hawk's own, not a key.
const GenerationEnv = "HAWK_GENERATION"

// UpgradeRequestedEnv carries from a process to the one its upgrade execs when that
// upgrade was requested (upgrade.Clock, in nanoseconds), so that the new process can
// say how long its start took from the request. It is hawk's own, not a key.
const UpgradeRequestedEnv = "HAWK_UPGRADE_REQUESTED"

// serviceLink matches the variables Kubernetes injects into every pod for a Service
// named hawk in its namespace (docker links have the same shape): HAWK_SERVICE_HOST,
// HAWK_SERVICE_PORT, HAWK_SERVICE_PORT_<PORT NAME>, HAWK_PORT and
// HAWK_PORT_<port>_<TCP|UDP|SCTP>[_PROTO|_PORT|_ADDR]. They are skipped silently;
// every other unknown HAWK_* variable is still an error (a typo must not be
// ignored). No key's variable has these shapes (TestServiceLinksAreNoKeys).
// It is compiled on first use: nothing at package init.
var serviceLink = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^HAWK_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT|PORT_[0-9]+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)$`)
})

func knownEnv() []string {
	out := make([]string, len(keys))
	for i := range keys {
		out[i] = envName(keys[i].Name)
	}
	return out
}
