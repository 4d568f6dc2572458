package config

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	kmaps "github.com/knadh/koanf/maps"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// Loader builds a Config from the same sources every time it is asked; a reload is just
// another Load. Each Load starts from a fresh koanf instance, so a key removed from the
// file falls back to its default (or to env and flags) instead of keeping a stale value.
//
// Precedence, lowest first: the keys' defaults (defaults.yaml) < File (YAML) < Env (HAWK_*) <
// the Flags the user set explicitly.
type Loader struct {
	// File is the YAML config file; "" means none. A missing file is an error.
	File string
	// Env is the environment in os.Environ form ("KEY=value"); nil means os.Environ().
	// Every HAWK_* variable must name a key: an unknown one is an error (a typo must not
	// be silently ignored). A caller using HAWK_* variables of its own (say HAWK_CONFIG
	// for the file's path) filters them out of Env first.
	Env []string
	// Flags holds flags defined by RegisterFlags (other flags in the set are ignored).
	// Only flags that were set (flag.FlagSet.Visit) override; nil means none.
	Flags *flag.FlagSet
}

// Sources as reported in FieldError.Source.
const (
	sourceDefaults = "default"
	sourceEnv      = "env "   // + variable name
	sourceFlag     = "flag -" // + flag name
	sourceFile     = "file "  // + path
)

// Load builds and validates a Config. A source that cannot be read or parsed (a missing
// file, bad YAML) is a plain error; everything wrong with keys and values (unknown keys
// and HAWK_ variables, values of the wrong type, invalid values) is collected into one
// *ValidationError that names every offending key and where its value came from.
func (l *Loader) Load() (*Config, error) {
	c, ferrs, err := l.load()
	if err != nil {
		return nil, err
	}
	if len(ferrs) > 0 {
		return nil, &ValidationError{Errors: ferrs}
	}
	return c, nil
}

// load returns the best-effort config (a key whose value is unusable keeps its default)
// together with every problem found, so that Prepare can also diff it.
//
// Each source is a koanf provider loaded into one koanf instance over the defaults
// (Default); unmarshal then decodes what the sources set. Only where a source is read is
// its name known, so its own checks run there: readYAML's, envProvider's unknown
// variables.
func (l *Loader) load() (*Config, []FieldError, error) {
	ko := koanf.New(".")
	prov := make(map[string]string) // key → source of its value; "default" if absent
	var ferrs []FieldError
	if l.File != "" {
		src := sourceFile + l.File
		flat, fe, err := readYAML(file.Provider(l.File), src)
		if err != nil {
			return nil, nil, err
		}
		ferrs = append(ferrs, fe...)
		for k := range flat {
			prov[k] = src
		}
		if err := ko.Load(confmap.Provider(flat, "."), nil); err != nil {
			return nil, nil, fmt.Errorf("config: %s: %w", src, err)
		}
	}
	environ := l.Env
	if environ == nil {
		environ = os.Environ()
	}
	if err := ko.Load(envProvider(environ, prov, &ferrs), nil); err != nil {
		return nil, nil, fmt.Errorf("config: environment: %w", err)
	}
	if err := ko.Load(flagProvider{l.Flags, prov}, nil); err != nil {
		return nil, nil, fmt.Errorf("config: flags: %w", err)
	}

	c := Default()
	fe, err := unmarshal(ko, c)
	if err != nil {
		return nil, nil, err
	}
	source := func(key string) string {
		if i := strings.IndexByte(key, '['); i >= 0 { // legacy.listeners[1].allow
			key = key[:i]
		}
		if s, ok := prov[key]; ok {
			return s
		}
		return sourceDefaults
	}
	bad := make(map[string]bool)
	for _, e := range ferrs {
		bad[e.Key] = true
	}
	for _, e := range fe {
		e.Source = source(e.Key)
		ferrs = append(ferrs, e)
		bad[e.Key] = true
	}
	if err := Validate(c); err != nil {
		for _, e := range err.(*ValidationError).Errors {
			if !bad[e.Key] { // each bad key is reported once, as it failed first
				e.Source = source(e.Key)
				ferrs = append(ferrs, e)
			}
		}
	}
	sortFieldErrors(ferrs)
	return c, ferrs, nil
}

// readYAML reads a YAML document with koanf and returns its keys, flat
// ("limits.max_conns"). It refuses what koanf would silently merge into nonsense, each
// with its source: unknown keys, a scalar where a section belongs (koanf would replace
// the whole section map and every default in it), a mapping under a key, and a key
// given twice (nested and dotted), which it leaves out. A null value ("listen:") means
// the key is not set here; an empty or null section ("log:" with its keys commented
// out) is just empty.
func readYAML(p koanf.Provider, source string) (map[string]any, []FieldError, error) {
	lk := koanf.New(".")
	if err := lk.Load(p, yaml.Parser()); err != nil {
		return nil, nil, fmt.Errorf("config: %s: %w", source, err)
	}
	// Flattened on a byte no key holds, a key's nested and dotted forms stay apart.
	paths, _ := kmaps.Flatten(lk.Raw(), nil, "\x00")
	all := make(map[string]any, len(paths))
	twice := make(map[string]bool)
	for path, v := range paths {
		key := strings.ReplaceAll(path, "\x00", ".")
		_, twice[key] = all[key]
		all[key] = v
	}
	out := make(map[string]any, len(all))
	var ferrs []FieldError
	bad := func(key, reason string) { ferrs = append(ferrs, FieldError{Key: key, Reason: reason, Source: source}) }
	for key, v := range all {
		m, isMap := v.(map[string]any)
		switch leaf := leafPrefix(key); {
		case twice[key]:
			bad(key, "set more than once (nested and dotted forms)")
		case index().byName[key] != nil:
			if v != nil {
				out[key] = v
			}
		case index().sections[key]:
			if v != nil && !(isMap && len(m) == 0) {
				bad(key, "must be a section ("+sectionKeys(key)+"), not "+describe(v))
			}
		case leaf != nil:
			if !slices.ContainsFunc(ferrs, func(e FieldError) bool { return e.Key == leaf.Name }) {
				bad(leaf.Name, "must be "+leaf.kind.String()+", not a mapping")
			}
		default:
			bad(key, "unknown key"+didYouMean(key, knownKeys()))
		}
	}
	return out, ferrs, nil
}

// leafPrefix returns the key that is a proper prefix of k ("listen" for "listen.port").
func leafPrefix(k string) *Key {
	for i := 0; i < len(k); i++ {
		if k[i] == '.' {
			if s := index().byName[k[:i]]; s != nil {
				return s
			}
		}
	}
	return nil
}

func sectionKeys(section string) string {
	var ks []string
	for i := range keys {
		if rest, ok := strings.CutPrefix(keys[i].Name, section+"."); ok {
			ks = append(ks, rest)
		}
	}
	return "keys " + strings.Join(ks, ", ")
}
