package config

import (
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	env "github.com/knadh/koanf/providers/env/v2"
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
func (l *Loader) load() (*Config, []FieldError, error) {
	var (
		ko    = koanf.New(".")
		prov  = make(map[string]string, len(specs)) // key → source of its value
		ferrs []FieldError
	)
	merge := func(flat map[string]any, src map[string]string, def string) error {
		if len(flat) == 0 {
			return nil
		}
		// Keys are flat and already checked; confmap unflattens them for koanf, and
		// the later layer wins key by key.
		if err := ko.Load(confmap.Provider(flat, "."), nil); err != nil {
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
	// default, so cross-key checks below see sane values.
	c := Default()
	bad := make(map[string]bool)
	for _, e := range ferrs {
		bad[e.Key] = true
	}
	for i := range specs {
		s := &specs[i]
		if bad[s.key] {
			continue
		}
		raw := ko.Get(s.key)
		if raw == nil { // cannot happen: nulls are dropped and defaults hold every key
			continue
		}
		v, reason := s.decode(raw)
		if reason == "" {
			reason = s.set(c, v)
		}
		if reason != "" {
			ferrs = append(ferrs, FieldError{Key: s.key, Reason: reason, Source: prov[s.key]})
			bad[s.key] = true
		}
	}
	if err := Validate(c); err != nil {
		for _, e := range err.(*ValidationError).Errors {
			if bad[e.Key] {
				continue
			}
			e.Source = prov[e.Key]
			ferrs = append(ferrs, e)
		}
	}
	sortFieldErrors(ferrs)
	return c, ferrs, nil
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
		case specByKey[key] != nil:
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
				if !seen[leaf.key] {
					seen[leaf.key] = true
					ferrs = append(ferrs, FieldError{Key: leaf.key, Reason: "must be " + leaf.kind.String() + ", not a mapping", Source: source})
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
func leafPrefix(k string) *spec {
	for i := 0; i < len(k); i++ {
		if k[i] == '.' {
			if s := specByKey[k[:i]]; s != nil {
				return s
			}
		}
	}
	return nil
}

func sectionKeys(section string) string {
	var ks []string
	for i := range specs {
		if rest, ok := strings.CutPrefix(specs[i].key, section+"."); ok {
			ks = append(ks, rest)
		}
	}
	return "keys " + strings.Join(ks, ", ")
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
			s := specByEnv[name]
			if s == nil {
				if !unknown[name] {
					unknown[name] = true
					ferrs = append(ferrs, FieldError{Key: name, Reason: "unknown environment variable" + didYouMean(name, knownEnv())})
				}
				return "", nil
			}
			src[s.key] = sourceEnv + name
			return s.key, val
		},
	})
	flat, err := p.Read() // no delimiter: the map stays flat, keyed as merge wants
	if err != nil {
		ferrs = append(ferrs, FieldError{Key: "environment", Reason: err.Error()})
	}
	return flat, src, ferrs
}

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
		if specByKey[f.Name] == nil {
			return
		}
		flat[f.Name] = f.Value.String()
		src[f.Name] = sourceFlag + f.Name
	})
	return flat, src
}

// decode turns a raw value (from YAML, or a string from env and flags) into the key's
// type: string, time.Duration, int64, bool or []string. It returns a reason on failure;
// a secret key's reason never quotes the value.
func (s *spec) decode(raw any) (any, string) {
	switch s.kind {
	case kindString:
		switch v := raw.(type) {
		case string:
			return v, ""
		case int, int64, uint64, float64, bool:
			return fmt.Sprint(v), ""
		}
	case kindDuration:
		var str string
		switch v := raw.(type) {
		case string:
			str = v
		case int, int64, uint64:
			str = fmt.Sprint(v) // "0" is fine; "10" is refused: no unit
		default:
			return nil, `must be a duration such as "10s", not ` + describe(raw)
		}
		d, err := time.ParseDuration(strings.TrimSpace(str))
		if err != nil {
			if _, e := strconv.ParseFloat(strings.TrimSpace(str), 64); e == nil {
				return nil, fmt.Sprintf(`invalid duration %q (missing unit, e.g. "10s")`, str)
			}
			return nil, fmt.Sprintf("invalid duration %q", str)
		}
		return d, ""
	case kindInt, kindSize:
		if n, ok, reason := yamlInt(raw); ok || reason != "" {
			return n, reason
		}
		str, isStr := raw.(string)
		if !isStr {
			break
		}
		if s.kind == kindSize {
			n, err := ParseSize(str)
			if err != nil {
				return nil, fmt.Sprintf("invalid size %q (bytes, or with a unit: KiB, MiB, GiB, kB, MB, GB)", str)
			}
			return n, ""
		}
		n, err := strconv.ParseInt(strings.TrimSpace(str), 10, 64)
		if err != nil {
			return nil, fmt.Sprintf("invalid integer %q", str)
		}
		return n, ""
	case kindBool:
		switch v := raw.(type) {
		case bool:
			return v, ""
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Sprintf("invalid boolean %q (use true or false)", v)
			}
			return b, ""
		}
	case kindList:
		switch v := raw.(type) {
		case string:
			parts := strings.Split(v, ",")
			for i := range parts {
				parts[i] = strings.TrimSpace(parts[i])
			}
			return parts, ""
		case []any:
			out := make([]string, len(v))
			for i, e := range v {
				str, ok := e.(string)
				if !ok {
					return nil, fmt.Sprintf("element %d must be a string, not %s (quote it)", i, describe(e))
				}
				out[i] = str
			}
			return out, ""
		}
	}
	return nil, "must be " + s.kind.String() + ", not " + describe(raw)
}

// yamlInt accepts YAML's integer forms (and integral floats such as 1e6). ok is false
// with no reason when raw is not a number at all.
func yamlInt(raw any) (n int64, ok bool, reason string) {
	switch v := raw.(type) {
	case int:
		return int64(v), true, ""
	case int64:
		return v, true, ""
	case uint64:
		if v > math.MaxInt64 {
			return 0, false, fmt.Sprintf("%d is out of range", v)
		}
		return int64(v), true, ""
	case float64:
		if v != math.Trunc(v) || v < math.MinInt64 || v >= math.MaxInt64 {
			return 0, false, fmt.Sprintf("%v is not an integer in range", v)
		}
		return int64(v), true, ""
	}
	return 0, false, ""
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, uint64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a mapping"
	case time.Time:
		return "a timestamp (quote it)"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func knownKeys() []string {
	out := make([]string, len(specs))
	for i := range specs {
		out[i] = specs[i].key
	}
	return out
}

func knownEnv() []string {
	out := make([]string, len(specs))
	for i := range specs {
		out[i] = envName(specs[i].key)
	}
	return out
}

// didYouMean suggests the closest candidate for a probable typo.
func didYouMean(got string, candidates []string) string {
	best, bestD := "", math.MaxInt
	for _, c := range candidates {
		d := editDistance(strings.ToLower(got), strings.ToLower(c))
		if strings.HasSuffix(c, "."+got) || strings.HasSuffix(c, "_"+got) {
			d = 1 // "max_conns" at the top level means limits.max_conns
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > 3 || bestD > len(got)/3+1 {
		return ""
	}
	return " (did you mean " + best + "?)"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortFieldErrors(e []FieldError) {
	sort.SliceStable(e, func(i, j int) bool { return e[i].Key < e[j].Key })
}
