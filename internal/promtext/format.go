package promtext

import (
	"math"
	"strconv"
)

// appendSample writes one line: name+suffix{pairs,extra="ev"} v, the layout of
// client_golang's text encoder (the extra label, le or quantile, last).
func appendSample(b []byte, name, suffix, pairs, extra string, ev, v float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if pairs != "" || extra != "" {
		b = append(b, '{')
		b = append(b, pairs...)
		if extra != "" {
			if pairs != "" {
				b = append(b, ',')
			}
			b = append(b, extra...)
			b = append(b, '=', '"')
			b = appendFloat(b, ev)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendFloat(b, v)
	return append(b, '\n')
}

// appendFloat formats v as the text format (and client_golang) does.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case v == 1:
		return append(b, '1')
	case v == 0:
		return append(b, '0')
	case v == -1:
		return append(b, "-1"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, +1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendEscaped escapes a HELP text (backslash, newline) or, with quote, a label
// value (and the double quote).
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
