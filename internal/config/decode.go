package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/v2"
)

// unmarshal decodes every key held by ko into c with koanf's Unmarshal, and returns one
// FieldError (without a Source: the caller knows it) per key whose value does not decode.
// Such a key keeps the value it had in c.
//
// mapstructure walks Config by its koanf tags, and names each failing field by its
// key ("limits.max_conns"), which is all we need from it. The conversions are ours,
// in one decode hook: mapstructure's own would refuse sizes ("64MiB"), accept what hawk
// refuses (1.5 as the integer 1; "" as 0 with WeaklyTypedInput), and word errors in Go
// types ("expected type 'int'") instead of for whoever wrote the file; and secrets must
// never be quoted. The hook is given the target field but not its key, so it finds the
// key by the field's address in c (int and size fields share Go types).
func unmarshal(ko *koanf.Koanf, c *Config) ([]FieldError, error) {
	type fieldRef struct {
		addr uintptr
		typ  reflect.Type // a section and its first field share an address
	}
	byField := make(map[fieldRef]*Key, len(keys))
	for i := range keys {
		f := keys[i].field(c)
		byField[fieldRef{f.UnsafeAddr(), f.Type()}] = &keys[i]
	}
	hook := func(from, to reflect.Value) (any, error) {
		in := from.Interface()
		if !to.CanAddr() {
			return in, nil
		}
		k := byField[fieldRef{to.UnsafeAddr(), to.Type()}]
		if k == nil { // Config itself, a section, a list element
			return in, nil
		}
		v, reason := k.decode(in)
		if reason != "" {
			return nil, reasonError(reason)
		}
		rv := reflect.ValueOf(v)
		if to.Kind() == reflect.Int && to.OverflowInt(rv.Int()) { // int is 32 bits somewhere
			return nil, reasonError(fmt.Sprintf("%d is out of range", rv.Int()))
		}
		return rv.Convert(to.Type()).Interface(), nil
	}
	err := ko.UnmarshalWithConf("", c, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.DecodeHookFuncValue(hook),
		TagName:    "koanf",
		ZeroFields: true, // a list replaces the old one instead of being written over it
	}})
	if err == nil {
		return nil, nil
	}
	var ferrs []FieldError
	var other []error
	collectDecodeErrors(err, &ferrs, &other)
	if len(other) > 0 { // not a value's fault: a bug in the table or the hook
		return nil, fmt.Errorf("config: decode: %w", errors.Join(other...))
	}
	return ferrs, nil
}

// reasonError is a decode hook's verdict on a value: the reason, for FieldError.
type reasonError string

func (e reasonError) Error() string { return string(e) }

// collectDecodeErrors walks the tree of joined and wrapped errors mapstructure returns
// and turns each of the hook's verdicts into a FieldError named by the key.
func collectDecodeErrors(err error, ferrs *[]FieldError, other *[]error) {
	if de, ok := err.(*mapstructure.DecodeError); ok {
		if r, ok := de.Unwrap().(reasonError); ok {
			key, reason := de.Name(), string(r)
			// A list element's reason names it: "[1].allow: …" → legacy.listeners[1].allow.
			if sub, rest, ok := strings.Cut(reason, ": "); ok && strings.HasPrefix(sub, "[") {
				key, reason = key+sub, rest
			}
			*ferrs = append(*ferrs, FieldError{Key: key, Reason: reason})
			return
		}
	}
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, sub := range e.Unwrap() {
			collectDecodeErrors(sub, ferrs, other)
		}
	case interface{ Unwrap() error }:
		if sub := e.Unwrap(); sub != nil {
			collectDecodeErrors(sub, ferrs, other)
			return
		}
		*other = append(*other, err)
	default:
		*other = append(*other, err)
	}
}

// decodeDefaults decodes the embedded defaults document, which must set every key to
// a valid value.
func decodeDefaults(b []byte) (*Config, error) {
	flat, ferrs, err := parseYAML(b, sourceDefaults)
	if err != nil {
		return nil, err
	}
	if len(ferrs) > 0 {
		return nil, &ValidationError{Errors: ferrs}
	}
	for i := range keys {
		if _, ok := flat[keys[i].Name]; !ok {
			return nil, fmt.Errorf("no value for %s", keys[i].Name)
		}
	}
	ko := koanf.New(".")
	if err := loadFlat(ko, flat); err != nil {
		return nil, err
	}
	c := &Config{}
	ferrs, err = unmarshal(ko, c)
	if err != nil {
		return nil, err
	}
	if len(ferrs) > 0 {
		return nil, &ValidationError{Errors: ferrs}
	}
	if err := Validate(c); err != nil {
		return nil, err
	}
	return c, nil
}

// decode turns a raw value (from YAML, or text from env and flags) into the key's type:
// string, time.Duration, int64, bool or []string. It returns a reason on failure; a
// secret key's reason never quotes the value.
func (k *Key) decode(raw any) (any, string) {
	switch k.kind {
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
		if k.kind == kindSize {
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
	case kindObjects:
		return decodeListeners(raw)
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
	return nil, "must be " + k.kind.String() + ", not " + describe(raw)
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
