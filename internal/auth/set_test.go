package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func hashOf(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return "sha256:" + hex.EncodeToString(h[:])
}

var (
	loopback = Peer{Addr: netip.MustParseAddr("127.0.0.1")}
	remote   = Peer{Addr: netip.MustParseAddr("192.0.2.7")}
)

func TestCheck(t *testing.T) {
	s := MustSet("victims tokA victim", "fleet "+hashOf("tokB")+" web-* db-?")
	cases := []struct {
		token, id string
		reason    Reason
		cred      string
	}{
		{"tokA", "victim", OK, "victims"},
		{"tokB", "web-1", OK, "fleet"},          // found by its hash
		{"tokB", "db-7", OK, "fleet"},           // ? is one character
		{"tokB", "victim", NotCovered, "fleet"}, // the attack: another credential's id
		{"tokA", "web-1", NotCovered, "victims"},
		{"tokB", "db-17", NotCovered, "fleet"},
		{"tokC", "victim", UnknownToken, ""},
		{"", "victim", UnknownToken, ""},
		{"sha256:" + strings.Repeat("0", 64), "victim", UnknownToken, ""}, // a hash is not a token
	}
	for _, c := range cases {
		v := s.Check(c.token, c.id, remote)
		if v.Reason != c.reason || v.Name() != c.cred {
			t.Errorf("Check(%q, %q) = %q by %q, want %q by %q", c.token, c.id, v.Reason, v.Name(), c.reason, c.cred)
		}
		if vb := s.CheckBytes([]byte(c.token), c.id, remote); vb != v {
			t.Errorf("CheckBytes(%q, %q) = %v, Check = %v", c.token, c.id, vb, v)
		}
		msg := v.Message(c.id)
		if (c.token != "" && strings.Contains(msg, c.token)) || (c.reason == NotCovered && !strings.Contains(msg, c.cred)) {
			t.Errorf("message %q quotes a secret or does not name the credential", msg)
		}
		if c.reason == NotCovered && (strings.Contains(msg, "web-*") || strings.Contains(msg, "db-?")) {
			t.Errorf("message %q lists the ids the credential covers", msg)
		}
	}
}

func TestOpenServer(t *testing.T) {
	var empty *Set
	for _, s := range []*Set{empty, MustSet()} {
		if v := s.Check("", "a", loopback); v.Reason != OK {
			t.Errorf("loopback agent refused by an open server: %v", v.Reason)
		}
		if v := s.CheckBytes(nil, "a", remote); v.Reason != OpenRemote {
			t.Errorf("CheckBytes, remote agent on an open server: %q", v.Reason)
		}
		if v := s.Check("", "a", Peer{Addr: netip.MustParseAddr("::1")}); v.Reason != OK {
			t.Errorf("::1 refused: %v", v.Reason)
		}
		if v := s.Check("", "a", Peer{Addr: netip.MustParseAddr("::ffff:127.0.0.1")}); v.Reason != OK {
			t.Errorf("a v4-mapped loopback agent refused: %v", v.Reason)
		}
		if v := s.Check("any", "a", remote); v.Reason != OpenRemote {
			t.Errorf("remote agent on an open server: %q, want open_remote", v.Reason)
		}
		if v := s.Check("", "a", Peer{}); v.Reason != OpenRemote {
			t.Errorf("unknown address on an open server: %q, want open_remote", v.Reason)
		}
		if v := s.Check("", "a", Peer{Addr: remote.Addr, Open: true}); v.Reason != OK {
			t.Errorf("auth.open: %q", v.Reason)
		}
		if v := s.Check("", "a", Peer{Addr: remote.Addr, CertVerified: true}); v.Reason != OK {
			t.Errorf("certificate-verified agent: %q", v.Reason)
		}
	}
	// With credentials, neither loopback nor auth.open lets a token-less agent in.
	s := MustSet("a tok *")
	if v := s.Check("", "x", Peer{Addr: loopback.Addr, Open: true}); v.Reason != UnknownToken {
		t.Errorf("no token with credentials configured: %q", v.Reason)
	}
}

func TestNewSetRefusesClashes(t *testing.T) {
	mk := func(l string) Credential {
		c, err := ParseLine(l)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := NewSet([]Credential{mk("a t1 x"), mk("a t2 y")}); err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("two credentials named a: %v", err)
	}
	_, err := NewSet([]Credential{mk("a t1 x"), mk("b " + hashOf("t1") + " y")})
	if err == nil || strings.Contains(err.Error(), "t1") {
		t.Errorf("one secret twice (once hashed): %v", err)
	}
}

func TestParseLineNeverQuotesTheSecret(t *testing.T) {
	for _, l := range []string{
		"name s3cr3t-token",                // no pattern
		"na/me s3cr3t-token x",             // bad name
		"name s3cr3t-token bad\x01pattern", // bad pattern
		"name sha256:s3cr3t x",             // short hash
		"name sha256:" + strings.Repeat("z", 64) + " x",
	} {
		_, err := ParseLine(l)
		if err == nil {
			t.Errorf("%q parsed", l)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "zzzz") {
			t.Errorf("error quotes the secret: %v", err)
		}
	}
	c, err := ParseLine("fleet  s3cr3t-token   web-*  db-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{c.String(), c.GoString()} {
		if strings.Contains(s, "s3cr3t") || !strings.Contains(s, "web-*") {
			t.Errorf("credential prints as %q", s)
		}
	}
}

func TestEqual(t *testing.T) {
	a := MustSet("a t1 x", "b t2 y*")
	if !a.Equal(MustSet("b t2 y*", "a t1 x")) {
		t.Error("the same credentials in another order differ")
	}
	for _, o := range []*Set{MustSet("a t1 x"), MustSet("a t1 x", "b t3 y*"), MustSet("a t1 x", "b t2 z*"), MustSet("a t1 x", "c t2 y*"), nil} {
		if a.Equal(o) {
			t.Errorf("%v equals %v", a.Names(), o.Names())
		}
	}
	var empty *Set
	if !empty.Equal(MustSet()) {
		t.Error("nil and empty differ")
	}
}

// A HELLO's check costs one SHA-256 of the token and a map lookup, whatever the
// number of credentials: hashed tokens keep the handshake rate of plain ones.
func BenchmarkCheck(b *testing.B) {
	lines := make([]string, 10000)
	for i := range lines {
		lines[i] = "c" + strings.Repeat("0", 5-len(itoa(i))) + itoa(i) + " " + hashOf("token-"+itoa(i)) + " agent-" + itoa(i) + "-*"
	}
	s := MustSet(lines...)
	tok := "token-4242"
	b.ReportAllocs()
	for b.Loop() {
		if v := s.Check(tok, "agent-4242-a", remote); v.Reason != OK {
			b.Fatal(v.Reason)
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}

// Whatever a line holds, ParseLine does not panic, and neither its error nor a
// parsed credential's printing quotes the secret field.
func FuzzParseLine(f *testing.F) {
	for _, l := range []string{"web tok web-*", "a sha256:" + strings.Repeat("ab", 32) + " x y", "a b", "n\x00 t x", "ñ t x"} {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		fields := strings.Fields(line)
		c, err := ParseLine(line)
		if len(fields) < 2 || len(fields[1]) < 10 {
			return // too short a secret to tell from the words of a message
		}
		secret := fields[1]
		if err != nil {
			if strings.Contains(err.Error(), secret) && !strings.Contains(strconv.Quote(fields[0]), secret) {
				t.Fatalf("error %q quotes the secret %q", err, secret)
			}
			return
		}
		for _, p := range fields[2:] {
			if strings.Contains(p, secret) || strings.Contains(fields[0], secret) {
				return // the secret is also a pattern or the name: printing it is printing those
			}
		}
		if strings.Contains(c.String(), secret) {
			t.Fatalf("%q prints as %q", line, c.String())
		}
	})
}
