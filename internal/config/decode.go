package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/v2"
)

// unmarshal decodes every key held by ko into c with koanf's UnmarshalWithConf and
// returns one FieldError (Key set, Source not) per value that does not decode; such a
// key keeps the value it had in c. mapstructure names each failing field by its key
// ("limits.max_conns", "legacy.listeners[1].allow").
func unmarshal(ko *koanf.Koanf, c *Config) ([]FieldError, error) {
	return decodeErrors(ko.UnmarshalWithConf("", c, koanf.UnmarshalConf{DecoderConfig: decoderConfig(nil)}))
}

// decoderConfig decodes by koanf tags through decodeHook; a list replaces the old one
// instead of being written over it.
func decoderConfig(result any) *mapstructure.DecoderConfig {
	return &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.DecodeHookFuncType(decodeHook),
		TagName:    "koanf",
		ZeroFields: true,
		Result:     result,
	}
}

// decodeHook converts a raw value (a YAML scalar or list; text from the environment and
// flags) into the Go type of its field. The conversions are hawk's, not mapstructure's:
// those would refuse sizes ("64MiB"), accept what hawk refuses (1.5 as the integer 1, ""
// as 0) and word errors in Go types; and a secret must never be quoted. A field is a
// size when its koanf tag is accompanied by unit:"bytes" (int and size share Go types).
func decodeHook(_, to reflect.Type, raw any) (any, error) {
	var conv func(any) (any, string)
	switch to {
	case reflect.TypeFor[string]():
		conv = decodeString
	case reflect.TypeFor[time.Duration]():
		conv = decodeDuration
	case reflect.TypeFor[bool]():
		conv = decodeBool
	case reflect.TypeFor[Secrets](), reflect.TypeFor[[]string]():
		conv = decodeList
	case reflect.TypeFor[[]LegacyListener]():
		conv = decodeListeners
	default:
		switch to.Kind() {
		case reflect.Int, reflect.Int64:
			conv = decodeInt
		case reflect.Struct:
			return markSizes(to, raw), nil
		default:
			return raw, nil
		}
	}
	if s, ok := raw.(sizeValue); ok {
		conv, raw = decodeSize, s.raw
	}
	v, reason := conv(raw)
	if reason != "" {
		return nil, reasonError(reason)
	}
	if n, ok := v.(int64); ok && to.Kind() == reflect.Int && reflect.New(to).Elem().OverflowInt(n) { // int is 32 bits somewhere
		return nil, reasonError(fmt.Sprintf("%d is out of range", n))
	}
	return v, nil
}

// sizeValue marks the raw value of a size field for decodeHook.
type sizeValue struct{ raw any }

// markSizes wraps the values of to's size fields in raw (a mapping) as sizeValues.
func markSizes(to reflect.Type, raw any) any {
	m, ok := raw.(map[string]any)
	if !ok {
		return raw
	}
	var out map[string]any // a copy: raw is koanf's
	for i := range to.NumField() {
		f := to.Field(i)
		name := f.Tag.Get("koanf")
		if v, set := m[name]; set && v != nil && f.Tag.Get("unit") == "bytes" {
			if out == nil {
				out = maps.Clone(m)
			}
			out[name] = sizeValue{v}
		}
	}
	if out == nil {
		return m
	}
	return out
}

// reasonError is a decode hook's verdict on a value: the reason, for FieldError.
type reasonError string

func (e reasonError) Error() string { return string(e) }

// decodeErrors turns each of the hook's verdicts in err (mapstructure joins and wraps
// them) into a FieldError named by its key; anything else is a bug, returned as such.
func decodeErrors(err error) ([]FieldError, error) {
	var ferrs []FieldError
	var other []error
	var walk func(error)
	walk = func(err error) {
		if de, ok := err.(*mapstructure.DecodeError); ok {
			if r, ok := de.Unwrap().(reasonError); ok {
				key, reason := de.Name(), string(r)
				// A list element's reason names it: "[1].allow: …" → legacy.listeners[1].allow.
				if sub, rest, ok := strings.Cut(reason, ": "); ok && strings.HasPrefix(sub, "[") {
					key, reason = key+sub, rest
				}
				ferrs = append(ferrs, FieldError{Key: key, Reason: reason})
				return
			}
		}
		switch e := err.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, sub := range e.Unwrap() {
				walk(sub)
			}
		case interface{ Unwrap() error }:
			if sub := e.Unwrap(); sub != nil {
				walk(sub)
				return
			}
			other = append(other, err)
		default:
			other = append(other, err)
		}
	}
	walk(err)
	if len(other) > 0 {
		return nil, fmt.Errorf("config: decode: %w", errors.Join(other...))
	}
	return ferrs, nil
}

func decodeString(raw any) (any, string) {
	switch v := raw.(type) {
	case string:
		return v, ""
	case int, int64, uint64, float64, bool:
		return fmt.Sprint(v), ""
	}
	return nil, mustBe(kindString, raw)
}

func decodeDuration(raw any) (any, string) {
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
}

func decodeInt(raw any) (any, string) {
	if n, ok, reason := yamlInt(raw); ok || reason != "" {
		return n, reason
	}
	str, ok := raw.(string)
	if !ok {
		return nil, mustBe(kindInt, raw)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(str), 10, 64)
	if err != nil {
		return nil, fmt.Sprintf("invalid integer %q", str)
	}
	return n, ""
}

func decodeSize(raw any) (any, string) {
	if n, ok, reason := yamlInt(raw); ok || reason != "" {
		return n, reason
	}
	str, ok := raw.(string)
	if !ok {
		return nil, mustBe(kindSize, raw)
	}
	n, err := ParseSize(str)
	if err != nil {
		return nil, fmt.Sprintf("invalid size %q (bytes, or with a unit: KiB, MiB, GiB, kB, MB, GB)", str)
	}
	return n, ""
}

func decodeBool(raw any) (any, string) {
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
	return nil, mustBe(kindBool, raw)
}

// decodeList takes a YAML list of strings, or text separated by commas.
func decodeList(raw any) (any, string) {
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
	return nil, mustBe(kindList, raw)
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

func mustBe(k kind, raw any) string { return "must be " + k.String() + ", not " + describe(raw) }

// describe names a raw value's type for a reason, never quoting it.
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
