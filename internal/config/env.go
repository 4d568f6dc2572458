package config

import (
	"strings"

	env "github.com/knadh/koanf/providers/env/v2"
)

const envPrefix = "HAWK_"

// envName is the environment variable for a key: limits.max_conns → HAWK_LIMITS_MAX_CONNS.
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// envLayer maps HAWK_* variables to keys through the known key set, which makes the
// mapping unambiguous for keys with '_' in them (HAWK_SERVER_ID is server_id,
// HAWK_LIMITS_MAX_CONNS is limits.max_conns), where the provider's usual
// replace-'_'-by-'.' would not be. Values stay strings; decode parses them
// (HAWK_AUTH_TOKENS is comma separated). A later duplicate wins, as in os/exec.
func envLayer(environ []string) (map[string]any, map[string]string, []FieldError) {
	src := make(map[string]string)
	var ferrs []FieldError
	unknown := make(map[string]bool)
	p := env.Provider("", env.Opt{
		Prefix:      envPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, val string) (string, any) {
			s := keyByEnv[name]
			if s == nil {
				if !unknown[name] {
					unknown[name] = true
					ferrs = append(ferrs, FieldError{Key: name, Reason: "unknown environment variable" + didYouMean(name, knownEnv())})
				}
				return "", nil
			}
			src[s.Name] = sourceEnv + name
			return s.Name, val
		},
	})
	flat, err := p.Read() // no delimiter: the map stays flat, keyed as merge wants
	if err != nil {
		ferrs = append(ferrs, FieldError{Key: "environment", Reason: err.Error()})
	}
	return flat, src, ferrs
}

func knownEnv() []string {
	out := make([]string, len(keys))
	for i := range keys {
		out[i] = envName(keys[i].Name)
	}
	return out
}
