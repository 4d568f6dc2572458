package ingest

import (
	"encoding/base64"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// Record is one report as the server received it.
type Record struct {
	ClientID string
	Seq      uint64
	ConnID   uint64
	Received time.Time
	Payload  []byte
	// Listener and Format are set for a report that came in on a legacy listener
	// (internal/legacy): the listener's name and its wire format. Empty for native
	// reports, whose lines then carry neither key.
	Listener string
	Format   string
	// Source is the sender's address of a UDP report datagram, whose client_id is
	// the agent's own (the other UDP formats carry it in client_id). The zero
	// value leaves the key out.
	Source netip.AddrPort
}

// The keys a record line starts with, in this order; ParseKey reads only them.
const (
	clientIDKey = `{"client_id":`
	seqKey      = `,"seq":`
)

// appendStamp formats a receive time as records carry it.
func appendStamp(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, time.RFC3339Nano)
}

// appendRecord appends r as one record line (ending in '\n', the format in doc.go)
// to dst and returns it, with r.Received already formatted by appendStamp. It does
// not allocate when dst has room for the line.
//
// A line is appendHead, the seq, appendMiddle and appendPayload in turn: Batch keeps
// the head and middle of its last line, which the reports of one read share, and
// appends only the seq and the payload per report.
func appendRecord(dst []byte, r *Record, stamp []byte) []byte {
	dst = appendHead(dst, r.ClientID)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = appendMiddle(dst, r, stamp)
	return appendPayload(dst, r.Payload)
}

// appendHead appends what a line holds before its seq's digits.
func appendHead(dst []byte, clientID string) []byte {
	dst = append(dst, clientIDKey...)
	dst = appendString(dst, clientID)
	return append(dst, seqKey...)
}

// appendMiddle appends what a line holds between its seq's digits and its
// payload: from conn_id to the receive time's text (stamp), its closing quote left
// to appendPayload. It reads neither r.Seq nor r.Payload.
func appendMiddle(dst []byte, r *Record, stamp []byte) []byte {
	dst = append(dst, `,"conn_id":`...)
	dst = strconv.AppendUint(dst, r.ConnID, 10)
	if r.Listener != "" || r.Format != "" {
		dst = append(dst, `,"listener":`...)
		dst = appendString(dst, r.Listener)
		dst = append(dst, `,"format":`...)
		dst = appendString(dst, r.Format)
	}
	if r.Source.IsValid() {
		dst = append(dst, `,"source":"`...)
		dst = r.Source.AppendTo(dst)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"received":"`...)
	return append(dst, stamp...)
}

// appendPayload appends the end of a line: the payload and the line's end.
//
// The payload is embedded as a JSON value when it is valid JSON (json.Valid), valid
// UTF-8 and nested no deeper than MaxPayloadDepth, and otherwise written as
// "payload_b64". Valid JSON that is not valid UTF-8 goes to payload_b64 too: a JSON
// reader would replace the bad bytes with U+FFFD, and the record would silently not
// hold what the agent sent.
func appendPayload(dst, p []byte) []byte {
	if ok, lineBreak := scanJSON(p); ok {
		dst = append(dst, `","payload":`...)
		if lineBreak {
			dst = appendCompact(dst, p)
		} else {
			dst = append(dst, p...)
		}
	} else {
		dst = append(dst, `","payload_b64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, p)
		dst = append(dst, '"')
	}
	return append(dst, '}', '\n')
}

const hex = "0123456789abcdef"

// strSafe[c] is true for the ASCII bytes that stand for themselves inside a JSON
// string. HTML characters (<, >, &) are not escaped: the lines are read by log
// shippers, not embedded in web pages. 256 entries, so indexing by a byte needs
// no bounds check.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string, escaped exactly as encoding/json does
// with HTML escaping off, so that a round trip through encoding/json gives back
// the same string (invalid UTF-8 becomes U+FFFD there as here, byte by byte).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if strSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Legal in JSON but line terminators in JavaScript: escaped, as
			// encoding/json does, so a line reads the same to every consumer.
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// MaxPayloadDepth is the deepest nesting of arrays and objects a payload may have to
// be embedded in a record as JSON; a deeper one is stored as payload_b64. The record
// adds a level of its own, and every line must stay readable by common JSON readers:
// Python's json module fails from about 1,000 levels, Go's encoding/json from 10,000.
const MaxPayloadDepth = 256

// scanJSON reports whether p is exactly one JSON value that json.Valid accepts,
// that is valid UTF-8 and nested no deeper than MaxPayloadDepth, and whether it
// holds a raw '\n' or '\r' (in valid JSON those can only be whitespace between
// tokens).
//
// It exists because json.Valid costs about three times as much (its scanner calls
// a function per byte) and this runs for every report; FuzzScanJSON holds it to
// json.Valid's answers.
func scanJSON(p []byte) (ok, lineBreak bool) {
	// One bit per open container, set for an object.
	var stack [MaxPayloadDepth / 64]uint64
	depth := uint(0) // unsigned: depth/64 and depth%64 are a shift and a mask
	i := 0
	ws := func() {
		// Every whitespace byte is at most ' ': one compare for the byte that ends
		// the run, which is most often the first.
		for i < len(p) && p[i] <= ' ' {
			switch p[i] {
			case ' ', '\t':
			case '\n', '\r':
				lineBreak = true
			default:
				return
			}
			i++
		}
	}

	ws()
value:
	if i >= len(p) {
		return false, false
	}
	switch c := p[i]; {
	case c == '{' || c == '[':
		if depth == MaxPayloadDepth {
			return false, false
		}
		if c == '{' {
			stack[depth/64] |= 1 << (depth % 64)
		} else {
			stack[depth/64] &^= 1 << (depth % 64)
		}
		depth++
		i++
		ws()
		if i < len(p) && p[i] == c+2 { // '}' is '{'+2, ']' is '['+2
			depth--
			i++
			goto end
		}
		if c == '{' {
			goto key
		}
		goto value
	case c == '"':
		if i = scanString(p, i); i < 0 {
			return false, false
		}
	case c == '-' || c >= '0' && c <= '9':
		if i = scanNumber(p, i); i < 0 {
			return false, false
		}
	case c == 't':
		if i = scanLiteral(p, i, "true"); i < 0 {
			return false, false
		}
	case c == 'f':
		if i = scanLiteral(p, i, "false"); i < 0 {
			return false, false
		}
	case c == 'n':
		if i = scanLiteral(p, i, "null"); i < 0 {
			return false, false
		}
	default:
		return false, false
	}

end: // after a value
	ws()
	if depth == 0 {
		return i == len(p), lineBreak
	}
	if i >= len(p) {
		return false, false
	}
	if top := depth - 1; stack[top/64]&(1<<(top%64)) != 0 {
		switch p[i] {
		case ',':
			i++
			ws()
			goto key
		case '}':
			depth--
			i++
			goto end
		}
		return false, false
	}
	switch p[i] {
	case ',':
		i++
		ws()
		goto value
	case ']':
		depth--
		i++
		goto end
	}
	return false, false

key: // at an object member's name
	if i >= len(p) || p[i] != '"' {
		return false, false
	}
	if i = scanString(p, i); i < 0 {
		return false, false
	}
	ws()
	if i >= len(p) || p[i] != ':' {
		return false, false
	}
	i++
	ws()
	goto value
}

// scanString returns the index after the string starting with the quote at p[i],
// or -1 when it is not a valid JSON string of valid UTF-8.
func scanString(p []byte, i int) int {
	i++
	for {
		if i = plainRun(p, i); i >= len(p) {
			return -1
		}
		if c := p[i]; c < utf8.RuneSelf {
			switch c {
			case '"':
				return i + 1
			case '\\':
				if i+1 >= len(p) {
					return -1
				}
				switch p[i+1] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					i += 2
				case 'u':
					if i+6 > len(p) || !isHex(p[i+2]) || !isHex(p[i+3]) || !isHex(p[i+4]) || !isHex(p[i+5]) {
						return -1
					}
					i += 6
				default:
					return -1
				}
			default: // a control character
				return -1
			}
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			return -1
		}
		i += size
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanNumber returns the index after the number starting at p[i], or -1.
func scanNumber(p []byte, i int) int {
	if p[i] == '-' {
		i++
	}
	switch {
	case i >= len(p):
		return -1
	case p[i] == '0':
		i++
	case p[i] >= '1' && p[i] <= '9':
		i = digits(p, i)
	default:
		return -1
	}
	if i < len(p) && p[i] == '.' {
		if i++; i >= len(p) || p[i] < '0' || p[i] > '9' {
			return -1
		}
		i = digits(p, i)
	}
	if i < len(p) && (p[i] == 'e' || p[i] == 'E') {
		if i++; i < len(p) && (p[i] == '+' || p[i] == '-') {
			i++
		}
		if i >= len(p) || p[i] < '0' || p[i] > '9' {
			return -1
		}
		i = digits(p, i)
	}
	return i
}

func digits(p []byte, i int) int {
	for i < len(p) && p[i]-'0' <= 9 {
		i++
	}
	return i
}

func scanLiteral(p []byte, i int, lit string) int {
	if len(p)-i < len(lit) || string(p[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// appendCompact appends the valid JSON value p without the whitespace between
// its tokens (what json.Compact does, without its bytes.Buffer).
func appendCompact(dst, p []byte) []byte {
	start := 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case ' ', '\t', '\n', '\r':
			dst = append(dst, p[start:i]...)
			start = i + 1
		case '"':
			for i++; p[i] != '"'; i++ {
				if p[i] == '\\' {
					i++
				}
			}
		}
	}
	return append(dst, p[start:]...)
}
