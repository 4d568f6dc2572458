package auth

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// globMatch is the reference: * any run of characters, ? any one, by plain
// recursion over runes. CompilePattern must agree with it on every input.
func globMatch(p, s []rune) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for i := 0; i <= len(s); i++ {
				if globMatch(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
		default:
			if len(s) == 0 || s[0] != p[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return len(s) == 0
}

func TestPatterns(t *testing.T) {
	cases := []struct {
		pattern string
		match   []string
		not     []string
	}{
		{"victim", []string{"victim"}, []string{"victim2", "Victim", "", "xvictim"}},
		{"web-*", []string{"web-", "web-1", "web-a/b.c"}, []string{"web", "xweb-1", "db-1"}},
		{"*", []string{"", "a", "anything at all"}, nil},
		{"rack?-*", []string{"rack1-a", "racké-"}, []string{"rack12-a", "rack-a"}},
		{"*.eu", []string{"a.eu", ".eu"}, []string{"a.eux", "aeu"}},
		{"a.b", []string{"a.b"}, []string{"axb"}}, // a dot is literal, not a regexp
		{"(x)+", []string{"(x)+"}, []string{"x", "xx"}},
		{"*[*]*", []string{"[a]", "x[y]z"}, []string{"[a", "a]"}},
	}
	for _, c := range cases {
		p, err := CompilePattern(c.pattern)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		for _, id := range c.match {
			if !p.Match(id) {
				t.Errorf("%q does not match %q", c.pattern, id)
			}
		}
		for _, id := range c.not {
			if p.Match(id) {
				t.Errorf("%q matches %q", c.pattern, id)
			}
		}
	}
}

func TestBadPatterns(t *testing.T) {
	for _, p := range []string{"", "a b", "tab\there", "nl\n", "\x7f", "\xff", strings.Repeat("x", 257)} {
		if _, err := CompilePattern(p); err == nil {
			t.Errorf("%q compiled", p)
		}
	}
}

func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{{"web-*", "web-1"}, {"*a?b*", "xxaybzz"}, {"a", "a"}, {"?", "é"}, {"**", ""}, {"a*b*c", "abbbc"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, id string) {
		p, err := CompilePattern(pattern)
		if err != nil {
			return
		}
		if !utf8.ValidString(id) {
			return // client ids are valid UTF-8 (ParseHello refuses others)
		}
		if got, want := p.Match(id), globMatch([]rune(pattern), []rune(id)); got != want {
			t.Fatalf("pattern %q, id %q: Match %v, reference %v", pattern, id, got, want)
		}
		if p.Any() && !p.Match(id) {
			t.Fatalf("pattern %q is Any but does not match %q", pattern, id)
		}
	})
}
