package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
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
	case reflect.TypeFor[[]UDPListener]():
		conv = decodeUDPListeners
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
