package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the accepted size suffixes, matched case-insensitively. IEC units are
// powers of 1024, SI units powers of 1000, as their names say: "16MB" is 16,000,000
// bytes and "16MiB" is 16,777,216.
var sizeUnits = []struct {
	name string
	mult int64
}{
	{"b", 1},
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
}

var errSize = errors.New("invalid size")

// ParseSize parses a byte count: a non-negative integer ("1048576"), optionally followed
// by a unit, with or without a space: B, KiB, MiB, GiB, TiB (×1024) or kB, MB, GB, TB
// (×1000), case-insensitive ("64MiB", "16 MB", "1kib"). Fractions ("1.5MiB") and bare
// "K"/"M"/"G" are refused: they are ambiguous.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errSize
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, errSize
	}
	unit := strings.ToLower(strings.TrimSpace(t[i:]))
	if unit == "" {
		return n, nil
	}
	for _, u := range sizeUnits {
		if u.name == unit {
			if n > math.MaxInt64/u.mult {
				return 0, errSize
			}
			return n * u.mult, nil
		}
	}
	return 0, errSize
}

// FormatSize renders a byte count the way ParseSize reads it, with the largest IEC unit
// that divides it exactly: 67108864 → "64MiB", 1000 → "1000".
func FormatSize(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
