package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The conversions decodeHook applies, one per kind of value: each takes a raw value (a
// YAML scalar or list, or text from the environment and flags) and returns the value or
// a reason, worded for whoever wrote it and never quoting a list's elements (secrets).

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
	return integer(raw, kindInt, func(s string) (int64, error) { return strconv.ParseInt(strings.TrimSpace(s), 10, 64) },
		"invalid integer %q")
}

func decodeSize(raw any) (any, string) {
	return integer(raw, kindSize, ParseSize, "invalid size %q (bytes, or with a unit: KiB, MiB, GiB, kB, MB, GB)")
}

// integer takes a YAML number, or text that parse reads.
func integer(raw any, k kind, parse func(string) (int64, error), invalid string) (any, string) {
	if n, ok, reason := yamlInt(raw); ok || reason != "" {
		return n, reason
	}
	str, ok := raw.(string)
	if !ok {
		return nil, mustBe(k, raw)
	}
	n, err := parse(str)
	if err != nil {
		return nil, fmt.Sprintf(invalid, str)
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
