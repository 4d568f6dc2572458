package auth

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pattern is one compiled ID-PATTERN: an exact id, a prefix (one trailing *), or a
// wildcard pattern, matched by the standard library's regexp (RE2: linear time in
// the id, whatever the pattern, so a pattern from a file cannot stall a handshake).
type Pattern struct {
	text   string
	exact  bool
	prefix string         // when re is nil and !exact: HasPrefix
	re     *regexp.Regexp // wildcards anywhere else
}

// maxPatternLen bounds a pattern: a client id is at most 256 bytes (PROTOCOL.md 4.1).
const maxPatternLen = 256

// CompilePattern parses an ID-PATTERN. It refuses what no client id can contain
// (control characters, whitespace, invalid UTF-8) and patterns longer than a client id.
func CompilePattern(s string) (Pattern, error) {
	switch {
	case s == "":
		return Pattern{}, fmt.Errorf("an id pattern is empty")
	case len(s) > maxPatternLen:
		return Pattern{}, fmt.Errorf("an id pattern is %d bytes, more than a client id can be (%d)", len(s), maxPatternLen)
	case !utf8.ValidString(s):
		return Pattern{}, fmt.Errorf("an id pattern is not valid UTF-8")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return Pattern{}, fmt.Errorf("an id pattern contains whitespace or a control character")
	}
	wild := strings.IndexAny(s, "*?")
	switch {
	case wild < 0:
		return Pattern{text: s, exact: true}, nil
	case wild == len(s)-1 && s[wild] == '*':
		return Pattern{text: s, prefix: s[:wild]}, nil
	}
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for _, r := range s {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil { // QuoteMeta leaves nothing to refuse; say so if it ever does
		return Pattern{}, fmt.Errorf("an id pattern does not compile: %w", err)
	}
	return Pattern{text: s, re: re}, nil
}

// Match reports whether the pattern covers id.
func (p Pattern) Match(id string) bool {
	switch {
	case p.exact:
		return id == p.text
	case p.re == nil:
		return strings.HasPrefix(id, p.prefix)
	}
	return p.re.MatchString(id)
}

// String is the pattern as written.
func (p Pattern) String() string { return p.text }

// Any reports whether the pattern covers every client id (a lone *).
func (p Pattern) Any() bool { return !p.exact && p.re == nil && p.prefix == "" }
