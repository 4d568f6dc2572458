package config

import (
	"flag"
	"strings"
)

// RegisterFlags defines one flag per config key on fs, named exactly as the key:
// -listen=:7373, -log.level=debug, -limits.max_conns=10, -limits.max_frame_size=1MiB,
// -admin.pprof (a bare boolean means true), -auth.tokens=a,b (comma separated; flags
// show in ps, so prefer the file or HAWK_AUTH_TOKENS for tokens).
//
// A malformed value fails at fs.Parse, naming the flag. The defaults shown by -help are
// those of defaults.yaml; they are never merged: Loader takes only the flags the user
// set, so an unset flag cannot mask the file or the environment.
func RegisterFlags(fs *flag.FlagSet) {
	def := defaultConfig
	for i := range keys {
		k := &keys[i]
		v := &flagValue{k: k}
		if !k.Secret {
			v.raw = k.format(k.get(def))
		}
		usage := strings.TrimSuffix(k.Doc, ".")
		if k.Secret {
			usage += "; comma separated (prefer the file or " + k.Env() + ": flags show in ps)"
		}
		class := "live"
		if k.Reload == RestartOnly {
			class = "restart-only"
		}
		// The back-quoted word is what -help shows as the value's name.
		if k.kind != kindBool {
			class = "`" + flagTypeNames[k.kind] + "`, " + class
		}
		fs.Var(v, k.Name, usage+" ("+class+")")
	}
}

var flagTypeNames = map[kind]string{
	kindString: "string", kindDuration: "duration", kindInt: "int", kindSize: "size", kindList: "list",
	kindObjects: "yaml",
}

// flagValue holds a flag's text; Loader decodes it like an environment variable.
type flagValue struct {
	k   *Key
	raw string
}

func (v *flagValue) String() string {
	if v == nil {
		return ""
	}
	return v.raw
}

// Set checks the value now, so that a bad flag fails at parse time with the flag's
// name. Token lists are not checked here: the flag package would quote the whole value
// (secrets and all) in its error; Load reports them by index instead.
func (v *flagValue) Set(s string) error {
	if !v.k.Secret {
		if _, reason := v.k.decode(s); reason != "" {
			return flagError(reason)
		}
	}
	v.raw = s
	return nil
}

// IsBoolFlag lets -admin.pprof stand alone.
func (v *flagValue) IsBoolFlag() bool { return v != nil && v.k != nil && v.k.kind == kindBool }

type flagError string

func (e flagError) Error() string { return strings.TrimSpace(string(e)) }

// flagLayer takes the flags that were set, and only those naming a key: fs.Visit, not
// VisitAll. (koanf's basicflag provider walks VisitAll: it merges every flag's default
// unless its key already exists, and merges unrelated flags such as -config as keys.)
func flagLayer(fs *flag.FlagSet) (map[string]any, map[string]string) {
	flat := make(map[string]any)
	src := make(map[string]string)
	if fs == nil {
		return flat, src
	}
	fs.Visit(func(f *flag.Flag) {
		if keyByName[f.Name] == nil {
			return
		}
		flat[f.Name] = f.Value.String()
		src[f.Name] = sourceFlag + f.Name
	})
	return flat, src
}
