package ingest

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// ParseKey returns the client_id and seq of one record line as Batch.Add writes it
// (client_id and seq are always the first two keys), with or without its '\n'. It
// reads nothing past the seq, so that reading a spool's keys back costs a fraction
// of decoding its lines. id aliases line when the client_id has no escapes;
// otherwise it is unescaped, as encoding/json would, into buf (whose storage it may
// reuse). ok is false for anything else.
func ParseKey(line, buf []byte) (id []byte, seq uint64, ok bool) {
	if !bytes.HasPrefix(line, []byte(clientIDKey+`"`)) {
		return nil, 0, false
	}
	start := len(clientIDKey) + 1
	i := start
	escaped := false
	for ; i < len(line); i++ {
		c := line[i]
		if c == '"' {
			break
		}
		if c == '\\' {
			escaped = true
			i++
			continue
		}
		if c < 0x20 {
			return nil, 0, false
		}
	}
	if i >= len(line) {
		return nil, 0, false
	}
	raw := line[start:i]
	rest := line[i+1:]
	if !bytes.HasPrefix(rest, []byte(seqKey)) {
		return nil, 0, false
	}
	rest = rest[len(seqKey):]
	j := 0
	for ; j < len(rest) && rest[j] >= '0' && rest[j] <= '9'; j++ {
		d := uint64(rest[j] - '0')
		if seq > (1<<64-1-d)/10 {
			return nil, 0, false // overflows a uint64
		}
		seq = seq*10 + d
	}
	if j == 0 || j < len(rest) && rest[j] != ',' && rest[j] != '}' || j == len(rest) || j > 1 && rest[0] == '0' {
		return nil, 0, false
	}
	if !escaped {
		if !utf8.Valid(raw) {
			return nil, 0, false
		}
		return raw, seq, true
	}
	id, ok = unescape(raw, buf[:0])
	return id, seq, ok
}

// unescape decodes the body of a JSON string as encoding/json does: a lone
// surrogate becomes U+FFFD.
func unescape(s, dst []byte) ([]byte, bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false
			}
			dst = append(dst, s[i:i+size]...)
			i += size
			continue
		}
		if i+1 >= len(s) {
			return nil, false
		}
		switch s[i+1] {
		case '"', '\\', '/':
			dst = append(dst, s[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s[i+2:])
			if !ok {
				return nil, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(-1), false
				if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2, ok2 = hex4(s[i+2:])
				}
				if d := utf16.DecodeRune(r, r2); ok2 && d != utf8.RuneError {
					i += 6
					r = d
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return nil, false
		}
		i += 2
	}
	return dst, true
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
