package config

import (
	"fmt"
	"reflect"
	"sync"
)

// Default returns a new Config holding the defaults (defaults.yaml), handy for tests.
func Default() *Config { return defaults().Clone() }

// defaults is the keys' defaults, decoded on first use: importing the package decodes nothing.
var defaults = sync.OnceValue(func() *Config {
	c, err := decodeDefaults()
	if err != nil {
		panic("config: keys table: " + err.Error())
	}
	return c
})

// decodeDefaults sets every key to the Default the keys table gives it, the text
// defaults.yaml is generated from (TestDefaultsYAMLIsTheTable holds them equal),
// converted as a flag's text is (Key.parse). Every Load starts from these, and a new
// process loads before it serves: going through the table costs a fraction of parsing
// defaults.yaml with koanf (BenchmarkDecodeDefaults).
// A default that does not convert or validate is an error, never a zero.
func decodeDefaults() (*Config, error) {
	c := &Config{}
	var ferrs []FieldError
	for i := range keys {
		k := &keys[i]
		if k.Default == "" && (k.kind == kindList || k.kind == kindObjects) {
			if k.kind == kindList { // as YAML's [] decodes: empty, not nil
				k.field(c).Set(reflect.MakeSlice(k.fieldType(), 0, 0))
			}
			continue
		}
		v, err := k.parse(k.Default)
		if err != nil {
			ferrs = append(ferrs, FieldError{Key: k.Name, Reason: err.Error(), Source: sourceDefaults})
			continue
		}
		k.field(c).Set(v)
	}
	if len(ferrs) > 0 {
		return nil, &ValidationError{Errors: ferrs}
	}
	if err := Validate(c); err != nil {
		return nil, fmt.Errorf("defaults: %w", err)
	}
	return c, nil
}
