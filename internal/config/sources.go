package config

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// Loader builds a Config from the same sources every time it is asked; a reload is just
// another Load. Each Load starts from a fresh koanf instance, so a key removed from the
// file falls back to its default (or to env and flags) instead of keeping a stale value.
//
// Precedence, lowest first: the embedded defaults.yaml < File (YAML) < Env (HAWK_*) <
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
// Each layer is checked on its own (unknown keys and variables, shapes: see parseYAML
// and envLayer) before koanf merges it, because only there is its source known; koanf
// then merges the layers key by key and unmarshals the result (see unmarshal).
func (l *Loader) load() (*Config, []FieldError, error) {
	var (
		ko    = koanf.New(".")
		prov  = make(map[string]string, len(keys)) // key → source of its value
		ferrs []FieldError
	)
	merge := func(flat map[string]any, src map[string]string, def string) error {
		if err := loadFlat(ko, flat); err != nil {
			return fmt.Errorf("config: %s: %w", def, err)
		}
		for k := range flat {
			if s, ok := src[k]; ok {
				prov[k] = s
			} else {
				prov[k] = def
			}
		}
		return nil
	}

	// Defaults.
	flat, fe, err := parseYAML(defaultsYAML, sourceDefaults)
	if err != nil || len(fe) > 0 {
		return nil, nil, fmt.Errorf("config: embedded defaults: %v %v", err, fe)
	}
	if err := merge(flat, nil, sourceDefaults); err != nil {
		return nil, nil, err
	}

	// File. file.Provider's ReadBytes is os.ReadFile; the bytes go through our own YAML
	// checks (unknown keys, nulls, mistyped sections) before koanf sees them.
	if l.File != "" {
		b, err := file.Provider(l.File).ReadBytes()
		if err != nil {
			return nil, nil, fmt.Errorf("config: %w", err)
		}
		src := sourceFile + l.File
		flat, fe, err := parseYAML(b, src)
		if err != nil {
			return nil, nil, err
		}
		ferrs = append(ferrs, fe...)
		if err := merge(flat, nil, src); err != nil {
			return nil, nil, err
		}
	}

	// Environment.
	environ := l.Env
	if environ == nil {
		environ = os.Environ()
	}
	flat, src, fe := envLayer(environ)
	ferrs = append(ferrs, fe...)
	if err := merge(flat, src, "env"); err != nil {
		return nil, nil, err
	}

	// Flags the user set.
	flat, src = flagLayer(l.Flags)
	if err := merge(flat, src, "flag"); err != nil {
		return nil, nil, err
	}

	// Decode into a Config that starts as the defaults: a key that fails keeps its
	// default, so the cross-key checks of Validate see sane values. A key already
	// reported by a layer (given twice in the file) is not decoded at all.
	bad := make(map[string]bool)
	for _, e := range ferrs {
		bad[e.Key] = true
		if keyByName[e.Key] != nil {
			ko.Delete(e.Key)
		}
	}
	c := Default()
	fe, err = unmarshal(ko, c)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range fe {
		e.Source = prov[baseKey(e.Key)]
		ferrs = append(ferrs, e)
		bad[e.Key] = true
	}
	if err := Validate(c); err != nil {
		for _, e := range err.(*ValidationError).Errors {
			if bad[e.Key] {
				continue
			}
			e.Source = prov[baseKey(e.Key)]
			ferrs = append(ferrs, e)
		}
	}
	sortFieldErrors(ferrs)
	return c, ferrs, nil
}

// baseKey is the key an error names: legacy.listeners[1].allow → legacy.listeners.
func baseKey(k string) string {
	if i := strings.IndexByte(k, '['); i >= 0 {
		return k[:i]
	}
	return k
}

// loadFlat merges flat keys ("limits.max_conns") into ko; confmap unflattens them, and
// the later layer wins key by key.
func loadFlat(ko *koanf.Koanf, flat map[string]any) error {
	if len(flat) == 0 {
		return nil
	}
	return ko.Load(confmap.Provider(flat, "."), nil)
}

// parseYAML parses a config document into flat keys ("limits.max_conns") holding the
// raw YAML values. It refuses what koanf would silently merge into nonsense: unknown
// keys, a scalar where a section belongs (koanf would replace the whole section map and
// every default in it), a mapping under a key, and a key given twice (nested and dotted).
// A null value ("listen:" with nothing after it) means the key is not set here, and an
// empty or null section ("log:" with its keys commented out) is just empty.
func parseYAML(b []byte, source string) (map[string]any, []FieldError, error) {
	doc, err := yaml.Parser().Unmarshal(b)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %s: %w", source, err)
	}
	all := make(map[string]any)
	var ferrs []FieldError
	flattenYAML("", doc, all, func(key string) {
		ferrs = append(ferrs, FieldError{Key: key, Reason: "set more than once (nested and dotted forms)", Source: source})
	})

	out := make(map[string]any, len(all))
	seen := make(map[string]bool)
	for key, v := range all {
		switch {
		case keyByName[key] != nil:
			if v != nil {
				out[key] = v
			}
		case sections[key]:
			if m, ok := v.(map[string]any); v == nil || ok && len(m) == 0 {
				continue
			}
			ferrs = append(ferrs, FieldError{Key: key, Reason: "must be a section (" + sectionKeys(key) + "), not " + describe(v), Source: source})
		default:
			if leaf := leafPrefix(key); leaf != nil {
				if !seen[leaf.Name] {
					seen[leaf.Name] = true
					ferrs = append(ferrs, FieldError{Key: leaf.Name, Reason: "must be " + leaf.kind.String() + ", not a mapping", Source: source})
				}
				continue
			}
			ferrs = append(ferrs, FieldError{Key: key, Reason: "unknown key" + didYouMean(key, knownKeys()), Source: source})
		}
	}
	return out, ferrs, nil
}

// flattenYAML flattens nested maps into dotted keys. An empty map stays a value (so an
// empty section can be told from an unknown key).
func flattenYAML(prefix string, m map[string]any, out map[string]any, dup func(string)) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if mi, ok := v.(map[any]any); ok { // YAML mapping with non-string keys
			ms := make(map[string]any, len(mi))
			for k2, v2 := range mi {
				ms[fmt.Sprint(k2)] = v2
			}
			v = ms
		}
		if ms, ok := v.(map[string]any); ok && len(ms) > 0 {
			flattenYAML(key, ms, out, dup)
			continue
		}
		if _, ok := out[key]; ok {
			dup(key)
		}
		out[key] = v
	}
}

// leafPrefix returns the key that is a proper prefix of k ("listen" for "listen.port").
func leafPrefix(k string) *Key {
	for i := 0; i < len(k); i++ {
		if k[i] == '.' {
			if s := keyByName[k[:i]]; s != nil {
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
