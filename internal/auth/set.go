package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/netip"
)

// Set is the credentials in force: immutable, swapped whole by a reload.
type Set struct {
	byHash  map[[sha256.Size]byte]*Credential
	names   []string
	unbound int
}

// NewSet builds a set. Two credentials may not share a name (metrics and logs
// could not tell them apart) nor a secret (a HELLO could not tell which applies).
func NewSet(creds []Credential) (*Set, error) {
	s := &Set{byHash: make(map[[sha256.Size]byte]*Credential, len(creds))}
	byName := make(map[string]bool, len(creds))
	for i := range creds {
		c := &creds[i]
		if byName[c.Name] {
			return nil, fmt.Errorf("two credentials are named %q", c.Name)
		}
		byName[c.Name] = true
		if o := s.byHash[c.hash]; o != nil {
			return nil, fmt.Errorf("credentials %q and %q have the same secret", o.Name, c.Name)
		}
		s.byHash[c.hash] = c
		s.names = append(s.names, c.Name)
		if c.Unbound {
			s.unbound++
		}
	}
	return s, nil
}

// Empty reports whether the set holds no credential: nothing binds client ids to
// tokens, and the listener is open (see Verdict).
func (s *Set) Empty() bool { return s == nil || len(s.byHash) == 0 }

// Len is the number of credentials.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byHash)
}

// Unbound is the number of credentials that cover every client id because they
// came from the plain auth.tokens list.
func (s *Set) Unbound() int {
	if s == nil {
		return 0
	}
	return s.unbound
}

// Names lists the credentials' names, in the order they were given.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	return s.names
}

// Reason is why a HELLO was refused; it labels hawk_auth_refusals_total.
type Reason string

const (
	OK Reason = ""
	// UnknownToken: the token matches no credential (a missing token included).
	UnknownToken Reason = "unknown_token"
	// NotCovered: the credential exists but does not cover the client id.
	NotCovered Reason = "not_covered"
	// OpenRemote: the server has no credentials, auth.open is off, and the agent
	// is not on a loopback address.
	OpenRemote Reason = "open_remote"
)

// Verdict is Check's answer: the credential (nil for an open server or a refusal
// by UnknownToken), and why it was refused, if it was.
type Verdict struct {
	Credential *Credential
	Reason     Reason
}

// Name is the credential's name, or "" when none was found.
func (v Verdict) Name() string {
	if v.Credential == nil {
		return ""
	}
	return v.Credential.Name
}

// Message is the text of the ERROR unauthorized a refusal sends. It names the rule
// that failed and the client's own id, never another id or a secret.
func (v Verdict) Message(clientID string) string {
	switch v.Reason {
	case UnknownToken:
		return "unauthorized: unknown token"
	case NotCovered:
		return fmt.Sprintf("unauthorized: credential %q does not cover client_id %q", v.Credential.Name, clientID)
	case OpenRemote:
		return "unauthorized: this server has no credentials configured and serves loopback agents only (auth.open is false)"
	}
	return ""
}

// Peer is what Check knows of the connection besides its HELLO.
type Peer struct {
	Addr netip.Addr
	// CertVerified is set when the peer presented a client certificate that
	// verified: it authenticates the peer (its id is checked by the TLS layer).
	CertVerified bool
	// Open is auth.open: an empty set serves non-loopback peers too.
	Open bool
}

// Check decides whether token may speak for clientID from peer. With credentials
// configured the token must match one (in constant time over its hash) that covers
// clientID. Without any, the server is open, and serves only loopback or
// certificate-verified peers unless peer.Open.
func (s *Set) Check(token, clientID string, peer Peer) Verdict {
	if s.Empty() {
		return openVerdict(peer)
	}
	return s.checkHash(Hash(token), clientID)
}

// CheckBytes is Check for a token held in a byte slice (a datagram's): the same
// decision, without copying the token.
func (s *Set) CheckBytes(token []byte, clientID string, peer Peer) Verdict {
	if s.Empty() {
		return openVerdict(peer)
	}
	return s.checkHash(sha256.Sum256(token), clientID)
}

// openVerdict is Check's decision without credentials.
func openVerdict(peer Peer) Verdict {
	if peer.Open || peer.CertVerified || peer.Addr.Unmap().IsLoopback() {
		return Verdict{}
	}
	return Verdict{Reason: OpenRemote}
}

// checkHash is Check's decision for a token whose hash is h.
func (s *Set) checkHash(h [sha256.Size]byte, clientID string) Verdict {
	c := s.byHash[h]
	// The map finds the candidate by hash; the comparison that admits is constant
	// time, so nothing about a near miss shows in the time a refusal takes.
	if c == nil || subtle.ConstantTimeCompare(c.hash[:], h[:]) != 1 {
		return Verdict{Reason: UnknownToken}
	}
	if !c.Covers(clientID) {
		return Verdict{Credential: c, Reason: NotCovered}
	}
	return Verdict{Credential: c}
}

// Equal reports whether s and o hold the same credentials (names, secrets and
// patterns), so that a reload that did not touch them re-checks no connection.
func (s *Set) Equal(o *Set) bool {
	if s.Len() != o.Len() {
		return false
	}
	if s.Empty() {
		return true
	}
	for h, c := range s.byHash {
		oc := o.byHash[h]
		if oc == nil || oc.String() != c.String() || oc.Unbound != c.Unbound {
			return false
		}
	}
	return true
}

// MustSet builds a set from NAME SECRET ID-PATTERN... lines and panics on a bad
// one: for tests and fixed tables, never for configuration.
func MustSet(lines ...string) *Set {
	creds := make([]Credential, len(lines))
	for i, l := range lines {
		c, err := ParseLine(l)
		if err != nil {
			panic(err)
		}
		creds[i] = c
	}
	s, err := NewSet(creds)
	if err != nil {
		panic(err)
	}
	return s
}
