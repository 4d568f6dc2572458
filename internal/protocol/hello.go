package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// helloKeys are the HELLO field names, exactly as they must appear on the wire, in
// the order of the Hello struct.
var helloKeys = [...]string{"client_id", "token", "client_version", "ack"}

// ParseHello parses a HELLO payload strictly, as docs/PROTOCOL.md section 4.1
// specifies. Unlike ParseJSON (encoding/json), which would fold distinct inputs into
// the same Hello, it refuses:
//
//   - a payload that is not valid UTF-8, checked on the raw bytes before any
//     decoding (encoding/json would turn each bad byte into U+FFFD, so that
//     "coll\xffX" and "coll\xfeX" became the same client_id);
//   - a \uXXXX escape that decodes to a lone surrogate (a high surrogate not
//     followed by a low one, or a low one on its own), in any key or string value
//     anywhere in the payload, nested values included;
//   - anything but one JSON object, optionally surrounded by whitespace (no trailing
//     data);
//   - a top-level key that equals a HELLO field name only when case is ignored
//     ("Client_ID", "TOKEN"): keys are case-sensitive;
//   - the same top-level key twice (compared after unescaping, so "client_id" and
//     "client\u005fid" are the same key), known or not;
//   - a HELLO field whose value is not a string or null.
//
// Unknown top-level keys (that are not a case variant of a HELLO field) are ignored,
// with any JSON value, for forward compatibility. A null value is the same as the key
// being absent. ParseHello does not check the client_id's content (empty, too long,
// control characters): the connection code does.
//
// Every error is a *DecodeError with Code CodeBadPayload whose message names the
// problem (its Error() starts with "protocol: HELLO payload").
func ParseHello(payload []byte) (Hello, error) {
	h, err := parseHello(payload)
	if err != nil {
		return Hello{}, err
	}
	return h, nil
}

func parseHello(payload []byte) (Hello, error) {
	var h Hello
	if !utf8.Valid(payload) {
		return h, helloError(" is not valid UTF-8 at byte %d", invalidUTF8At(payload))
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	tok, err := dec.Token()
	if err != nil {
		return h, helloSyntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return h, helloError(" is not a JSON object")
	}
	var seen [len(helloKeys)]bool
	var others map[string]struct{} // unknown keys seen so far, for the duplicate check
	var raw json.RawMessage        // each value's bytes; reused
	for dec.More() {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return h, helloSyntaxError(err)
		}
		key, ok := tok.(string)
		if !ok { // Token refuses a non-string key itself; this is belt and braces
			return h, helloError(" has a non-string key at byte %d", start)
		}
		keyEnd := dec.InputOffset()
		// payload[start:keyEnd] is the key with the ',' and whitespace before it.
		if off, esc, bad := loneSurrogate(payload[start:keyEnd]); bad {
			return h, helloError(": key %q has a lone surrogate escape %s at byte %d", key, esc, start+int64(off))
		}
		if err := dec.Decode(&raw); err != nil {
			return h, helloSyntaxError(err)
		}
		if off, esc, bad := loneSurrogate(raw); bad {
			return h, helloError(": value of %q has a lone surrogate escape %s at byte %d", key, esc, dec.InputOffset()-int64(len(raw))+int64(off))
		}
		i := helloKeyIndex(key)
		if i < 0 {
			for _, k := range helloKeys {
				if strings.EqualFold(key, k) {
					return h, helloError(": key %q is not a HELLO field (keys are case-sensitive: did you mean %q?)", key, k)
				}
			}
			if _, dup := others[key]; dup {
				return h, helloError(": duplicate key %q", key)
			}
			if others == nil {
				others = make(map[string]struct{})
			}
			others[key] = struct{}{}
			continue
		}
		if seen[i] {
			return h, helloError(": duplicate key %q", key)
		}
		seen[i] = true
		var s string
		switch raw[0] {
		case '"':
			if bytes.IndexByte(raw, '\\') < 0 {
				// No escapes: the bytes between the quotes are the string (they are
				// valid UTF-8 without control characters, checked above).
				s = string(raw[1 : len(raw)-1])
			} else if err := json.Unmarshal(raw, &s); err != nil { // cannot fail: Decode checked the syntax
				return h, helloError(": value of %q: %v", key, err)
			}
		case 'n': // null: as if absent
		default:
			return h, helloError(": value of %q is %s, want a string", key, jsonKind(raw[0]))
		}
		switch i {
		case 0:
			h.ClientID = s
		case 1:
			h.Token = s
		case 2:
			h.ClientVersion = s
		case 3:
			h.Ack = s
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return h, helloSyntaxError(err)
	}
	end := int(dec.InputOffset())
	if rest := bytes.TrimLeft(payload[end:], " \t\r\n"); len(rest) > 0 {
		return h, helloError(" has trailing data after the JSON object at byte %d", len(payload)-len(rest))
	}
	return h, nil
}

func helloKeyIndex(key string) int {
	for i, k := range helloKeys {
		if key == k {
			return i
		}
	}
	return -1
}

func helloError(format string, args ...any) error {
	return &DecodeError{Code: CodeBadPayload, Msg: "HELLO payload" + fmt.Sprintf(format, args...)}
}

func helloSyntaxError(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return &DecodeError{Code: CodeBadPayload, Msg: fmt.Sprintf("HELLO payload is not valid JSON: %v", err)}
}

// invalidUTF8At returns the offset of the first byte of b that does not start a
// valid UTF-8 sequence, or len(b).
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// loneSurrogate reports the first \uXXXX escape in b that is a lone UTF-16
// surrogate: its offset in b and its text. b must be valid JSON text, or a run of
// it that starts outside a string or at a string's opening quote: in JSON a
// backslash only ever appears inside a string, starting an escape, so escapes can
// be found without tracking quotes.
func loneSurrogate(b []byte) (off int, esc string, bad bool) {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 >= len(b) || b[i+1] != 'u' {
			i++ // a two-byte escape such as \\ or \"
			continue
		}
		r, ok := hex4(b[i+2:])
		if !ok {
			i++ // not valid JSON; the syntax check reports it
			continue
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF: // low surrogate without a high one before it
			return i, string(b[i : i+6]), true
		case r >= 0xD800 && r <= 0xDBFF:
			if i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				if lo, ok := hex4(b[i+8:]); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					i += 11 // the pair; the loop adds 1
					continue
				}
			}
			return i, string(b[i : i+6]), true
		}
		i += 5
	}
	return 0, "", false
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// jsonKind names the kind of the JSON value whose first byte is c.
func jsonKind(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	default:
		return "a number"
	}
}
