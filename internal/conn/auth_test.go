package conn

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/hawk-agents/hawk/internal/auth"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// The attack: a holder of one credential names another's client id. It is refused
// before anything names that client: the victim's connection stays, its dedup
// window is untouched (its next seq is stored, not answered as a duplicate), and
// nothing the attacker sent is stored.
func TestHelloForAnIdTheCredentialDoesNotCover(t *testing.T) {
	ts, table := startDedupServer(t)
	s := testSettings()
	s.Auth = auth.MustSet("victims tokA victim", "fleet tokB web-*")
	ts.m.Apply(s)

	victim := testutil.Dial(t, ts.addr)
	victim.Hello("victim", "tokA")
	sendReports(victim, 1)
	expectAnswers(t, victim, protocol.TypeAck, 1)

	attacker := testutil.Dial(t, ts.addr)
	attacker.Write(protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "victim", Token: "tokB"}))
	sendReports(attacker, 2, 3) // pipelined behind the HELLO: must not be stored
	e := attacker.ExpectError(protocol.CodeUnauthorized)
	if !strings.Contains(e.Message, `"fleet"`) || !strings.Contains(e.Message, `"victim"`) || strings.Contains(e.Message, "web-*") {
		t.Errorf("ERROR message %q: want the credential and the client id named, and no other id", e.Message)
	}

	victim.Send(protocol.TypePing, 7, nil)
	if f := victim.Expect(protocol.TypePong); f.Seq != 7 {
		t.Fatalf("PONG seq %d", f.Seq)
	}
	sendReports(victim, 2)
	expectAnswers(t, victim, protocol.TypeAck, 2)
	if n := ts.spoolLines(); n != 2 {
		t.Fatalf("%d records stored, want the victim's 2", n)
	}
	if d := table.Duplicates(); d != 0 {
		t.Fatalf("%d duplicates: the victim's seq 2 was taken for a resend", d)
	}
	// The covered id works with the same token.
	web := testutil.Dial(t, ts.addr)
	web.Hello("web-1", "tokB")
}

// A reload that narrows a credential closes the connections it no longer covers,
// and keeps the others; the refusal and the admissions are counted by credential.
func TestNarrowedCredentialRevokes(t *testing.T) {
	s := testSettings()
	s.Auth = auth.MustSet("fleet s3cr3t-fleet web-* db-*")
	ts := startServer(t, s)
	rec := ts.obs

	web := testutil.Dial(t, ts.addr)
	web.Hello("web-1", "s3cr3t-fleet")
	db := testutil.Dial(t, ts.addr)
	db.Hello("db-1", "s3cr3t-fleet")

	ns := *s
	ns.Auth = auth.MustSet("fleet s3cr3t-fleet web-*")
	if n := ts.m.Apply(&ns); n != 1 {
		t.Fatalf("Apply revoked %d connections, want 1", n)
	}
	e := db.ExpectError(protocol.CodeTokenRevoked)
	if !strings.Contains(e.Message, "fleet") || strings.Contains(e.Message, "s3cr3t") {
		t.Errorf("revocation message %q", e.Message)
	}
	web.Send(protocol.TypePing, 1, nil)
	web.Expect(protocol.TypePong)
	// The same settings again (a reload of something else) re-check nobody.
	same := ns
	same.Auth = auth.MustSet("fleet s3cr3t-fleet web-*")
	if n := ts.m.Apply(&same); n != 0 {
		t.Fatalf("an unchanged credential set revoked %d", n)
	}
	again := testutil.Dial(t, ts.addr)
	again.Write(protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "db-1", Token: "s3cr3t-fleet"}))
	again.ExpectError(protocol.CodeUnauthorized)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.refused["fleet/not_covered"] != 1 {
		t.Errorf("refusals counted %v, want fleet/not_covered once", rec.refused)
	}
	for _, l := range ts.logs.All() {
		for _, f := range l.Context {
			if strings.Contains(f.String, "s3cr3t") {
				t.Errorf("log line %q field %s=%q holds the token", l.Message, f.Key, f.String)
			}
		}
	}
}

func (o *closeRecorder) Authenticated(string) {}

func (o *closeRecorder) AuthRefused(credential string, reason auth.Reason) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refused == nil {
		o.refused = map[string]int{}
	}
	o.refused[credential+"/"+string(reason)]++
}

// BenchmarkHandshakeAuth is a plaintext connect, HELLO and WELCOME on an open
// server, and with 10,000 credentials given as SHA-256 hashes: the check is one
// hash and one lookup, so the handshake rate must not move.
func BenchmarkHandshakeAuth(b *testing.B) {
	lines := make([]string, 10000)
	for i := range lines {
		h := sha256.Sum256([]byte(fmt.Sprintf("token-%05d-0123456789abcdef", i)))
		lines[i] = fmt.Sprintf("c%05d sha256:%s agent-%05d-*", i, hex.EncodeToString(h[:]), i)
	}
	for _, bc := range []struct {
		name  string
		set   *auth.Set
		token string
	}{
		{"open", nil, ""},
		{"hashed", auth.MustSet(lines...), "token-04242-0123456789abcdef"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := testSettings()
			s.Auth = bc.set
			benchHandshakes(b, s, func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }, benchHellos(bc.token))
		})
	}
}
