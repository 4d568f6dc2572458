package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Credential is one NAME SECRET ID-PATTERN... line, parsed. It holds the secret's
// hash only, and prints without it.
type Credential struct {
	Name     string
	Patterns []Pattern
	// Unbound is set for the tokens of the plain auth.tokens list: they cover every
	// client id, and the server says so at start and in -check-config.
	Unbound bool

	hash [sha256.Size]byte
}

const (
	hashPrefix = "sha256:"
	// MaxTokenLen bounds a token: it travels in HELLO, which is capped at 16 KiB.
	MaxTokenLen = 4096
	maxNameLen  = 64
)

// Hash is the SHA-256 of a token, as the sha256: form of SECRET writes it in hex.
func Hash(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// ParseLine parses NAME SECRET ID-PATTERN... (fields separated by white space). Its
// errors never quote the secret.
func ParseLine(line string) (Credential, error) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return Credential{}, fmt.Errorf("want NAME SECRET ID-PATTERN..., found %d field(s)", len(f))
	}
	if err := checkName(f[0]); err != nil {
		return Credential{}, err
	}
	c := Credential{Name: f[0]}
	h, err := parseSecret(f[1])
	if err != nil {
		return Credential{}, fmt.Errorf("credential %q: %w", c.Name, err)
	}
	c.hash = h
	for _, ps := range f[2:] {
		p, err := CompilePattern(ps)
		if err != nil {
			return Credential{}, fmt.Errorf("credential %q: %w", c.Name, err)
		}
		c.Patterns = append(c.Patterns, p)
	}
	return c, nil
}

// UnboundToken is a credential for a token of the plain auth.tokens list: named
// NAME, covering every client id.
func UnboundToken(name, token string) (Credential, error) {
	if err := CheckToken(token); err != nil {
		return Credential{}, err
	}
	any, _ := CompilePattern("*")
	return Credential{Name: name, Patterns: []Pattern{any}, Unbound: true, hash: Hash(token)}, nil
}

func checkName(n string) error {
	if len(n) > maxNameLen {
		return fmt.Errorf("a credential name is longer than %d bytes", maxNameLen)
	}
	for _, r := range n {
		if !(r == '-' || r == '_' || r == '.' || r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return fmt.Errorf("credential name %q: only ASCII letters, digits, '-', '_' and '.' (it labels metrics)", n)
		}
	}
	return nil
}

func parseSecret(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	if hx, ok := strings.CutPrefix(s, hashPrefix); ok {
		if len(hx) != 2*sha256.Size {
			return h, fmt.Errorf("a sha256: secret needs %d hex digits, it has %d", 2*sha256.Size, len(hx))
		}
		if _, err := hex.Decode(h[:], []byte(hx)); err != nil {
			return h, fmt.Errorf("a sha256: secret is not hexadecimal")
		}
		return h, nil
	}
	if err := CheckToken(s); err != nil {
		return h, err
	}
	return Hash(s), nil
}

// CheckToken says what is wrong with a token, never quoting it.
func CheckToken(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("the token is empty")
	case len(t) > MaxTokenLen:
		return fmt.Errorf("the token is longer than %d bytes", MaxTokenLen)
	case !utf8.ValidString(t) || strings.IndexFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("the token contains whitespace, control characters or invalid UTF-8")
	}
	return nil
}

// Covers reports whether one of the credential's patterns matches id.
func (c *Credential) Covers(id string) bool {
	for _, p := range c.Patterns {
		if p.Match(id) {
			return true
		}
	}
	return false
}

// String names the credential and its patterns, never its secret.
func (c Credential) String() string {
	ps := make([]string, len(c.Patterns))
	for i, p := range c.Patterns {
		ps[i] = p.String()
	}
	return c.Name + " [" + strings.Join(ps, " ") + "]"
}

// GoString is String: a %#v must not print the hash either.
func (c Credential) GoString() string { return c.String() }
