package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// Identity against the binary: a token speaks only for the client ids its
// credential covers (auth.tokens_file, auth.credentials), the file reloads live
// with revocation, and no secret shows in a log line or an endpoint.

// writeTokens replaces path by rename, as provisioning tools do.
func writeTokens(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestIdentityAgainstBinary(t *testing.T) {
	const (
		tokA = "tokA-3f9d2c81e7b04a6c9d15" // victims: victim only
		tokB = "tokB-b71e04d95a2c43f8ae60" // fleet: web-*, stored hashed
		tokC = "tokC-0c6a9e3b5d2f41e7b8a4" // ops: from auth.credentials (environment)
		tokD = "tokD-58e2a7c1f90b4d36ae1c" // late: added to the file while running
	)
	secrets := []string{tokA, tokB, tokC, tokD, sha256Hex(tokB)}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	writeTokens(t, tokens, "# hawk credentials\nvictims "+tokA+" victim\nfleet sha256:"+sha256Hex(tokB)+" web-* other-??\n")
	t.Setenv("HAWK_AUTH_CREDENTIALS", "ops "+tokC+" ops-1")
	sock := filepath.Join(dir, "control.sock")
	s := startServer(t, bin.serverV1, "-auth.tokens_file="+tokens, "-control.socket="+sock)
	addr, admin := s.addr(), s.adminAddr()
	s.waitLog(5*time.Second, func(l logLine) bool { return strings.HasPrefix(l.str("msg"), "auth: 3 credentials, each bound") })

	// 1. The victim's first report.
	victim := testutil.Dial(t, addr)
	victim.Hello("victim", tokA)
	victim.Send(protocol.TypeReport, 1, []byte(`{"real":1}`))
	victim.Expect(protocol.TypeAck)

	// 2. Another credential's holder names the victim: refused, nothing stored.
	attacker := testutil.Dial(t, addr)
	var forged []byte
	forged = protocol.AppendJSON(forged, protocol.TypeHello, 0, &protocol.Hello{ClientID: "victim", Token: tokB, ClientVersion: "e2e"})
	for seq := uint64(2); seq <= 11; seq++ {
		forged = protocol.AppendFrame(forged, protocol.TypeReport, seq, []byte(`{"forged":true}`))
	}
	attacker.Write(forged)
	e := attacker.ExpectError(protocol.CodeUnauthorized)
	if !strings.Contains(e.Message, `credential "fleet" does not cover client_id "victim"`) {
		t.Errorf("ERROR unauthorized says %q", e.Message)
	}
	// The victim's connection is untouched.
	victim.Send(protocol.TypePing, 1, nil)
	victim.Expect(protocol.TypePong)

	// 3. The victim goes on, reconnects, goes on: every report stored, none taken
	// for a duplicate.
	for seq := uint64(2); seq <= 6; seq++ {
		victim.Send(protocol.TypeReport, seq, []byte(fmt.Sprintf(`{"real":%d}`, seq)))
		if f := victim.Expect(protocol.TypeAck); f.Seq != seq {
			t.Fatalf("ACK %d, want %d", f.Seq, seq)
		}
	}
	victim.Conn.Close()
	victim = testutil.Dial(t, addr)
	victim.Hello("victim", tokA)
	for seq := uint64(7); seq <= 11; seq++ {
		victim.Send(protocol.TypeReport, seq, []byte(fmt.Sprintf(`{"real":%d}`, seq)))
		if f := victim.Expect(protocol.TypeAck); f.Seq != seq {
			t.Fatalf("ACK %d, want %d", f.Seq, seq)
		}
	}
	// The hashed credential and the one from the environment admit their own ids.
	web := testutil.Dial(t, addr)
	web.Hello("web-1", tokB)
	ops := testutil.Dial(t, addr)
	ops.Hello("ops-1", tokC)

	// 4. The tokens file changes: victims is removed (its connection is closed),
	// late is added (usable at once). No signal: the file poll sees it.
	writeTokens(t, tokens, "fleet sha256:"+sha256Hex(tokB)+" web-* other-??\nlate "+tokD+" late-1\n")
	victim.ExpectError(protocol.CodeTokenRevoked)
	s.waitLog(5*time.Second, func(l logLine) bool {
		return l.str("msg") == "tokens file reloaded" && l.num("connections_revoked") == 1 && l.num("credentials") == 2
	})
	late := testutil.Dial(t, addr)
	late.Hello("late-1", tokD)
	web.Send(protocol.TypePing, 2, nil)
	web.Expect(protocol.TypePong)
	gone := testutil.Dial(t, addr)
	gone.Write(protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "victim", Token: tokA}))
	if e := gone.ExpectError(protocol.CodeUnauthorized); e.Message != "unauthorized: unknown token" {
		t.Errorf("a revoked token gets %q", e.Message)
	}
	// A bad version of the file keeps the last good credentials.
	writeTokens(t, tokens, "late "+tokD+"\n")
	s.waitLog(5*time.Second, func(l logLine) bool {
		return l.str("msg") == "tokens file reload failed; the last good credentials stay in force"
	})
	again := testutil.Dial(t, addr)
	again.Hello("late-1", tokD)

	// Every report the victim sent is stored once, under its id, with its payload;
	// nothing forged is stored.
	testutil.Eventually(t, 5*time.Second, func() bool { return readSpool(t, s.spool).records["victim 11"] == 1 }, "the victim's last report in the spool")
	for seq := 1; seq <= 11; seq++ {
		if n := readSpool(t, s.spool).records[fmt.Sprintf("victim %d", seq)]; n != 1 {
			t.Errorf("victim seq %d stored %d times", seq, n)
		}
	}
	files, _ := filepath.Glob(filepath.Join(s.spool, "*.jsonl"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var r struct {
				ClientID string          `json:"client_id"`
				Seq      int             `json:"seq"`
				Payload  json.RawMessage `json:"payload"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("record %q: %v", line, err)
			}
			if want := fmt.Sprintf(`{"real":%d}`, r.Seq); r.ClientID == "victim" && string(r.Payload) != want {
				t.Errorf("victim seq %d stored with payload %s, want %s", r.Seq, r.Payload, want)
			}
		}
	}

	// Metrics by credential.
	if v := metric(t, admin, `hawk_auth_refusals_total{credential="fleet",reason="not_covered"}`); v != 1 {
		t.Errorf("not_covered refusals of fleet: %v, want 1", v)
	}
	if v := metric(t, admin, `hawk_auth_refusals_total{credential="",reason="unknown_token"}`); v != 1 {
		t.Errorf("unknown_token refusals: %v, want 1", v)
	}
	if v := metric(t, admin, `hawk_auth_hellos_total{credential="victims"}`); v != 2 {
		t.Errorf("HELLOs admitted by victims: %v, want 2", v)
	}
	if v := metric(t, admin, `hawk_auth_tokens_file_reloads_total{result="failure"}`); v < 1 {
		t.Errorf("failed tokens file reloads: %v", v)
	}

	// No secret anywhere an operator looks: logs, endpoints, hawk status.
	var shown []string
	for _, path := range []string{"/metrics", "/v1/config", "/v1/connections", "/healthz", "/readyz"} {
		_, body := get(t, "http://"+admin+path)
		shown = append(shown, path+": "+body)
	}
	out, errOut, _ := hawkCmd(t, "status", "-socket", sock)
	shown = append(shown, "hawk status: "+out+errOut)
	out, errOut, _ = hawkCmd(t, "reload", "-socket", sock)
	shown = append(shown, "hawk reload: "+out+errOut)
	s.mu.Lock()
	shown = append(shown, "log: "+s.raw.String())
	s.mu.Unlock()
	for _, text := range shown {
		for _, sec := range secrets {
			if strings.Contains(text, sec) {
				name, _, _ := strings.Cut(text, ":")
				t.Errorf("%s shows the secret %s…", name, sec[:6])
			}
		}
	}
}

// -check-config and the start log say which mode is in force.
func TestAuthModeIsStated(t *testing.T) {
	cases := []struct {
		flags []string
		want  string
	}{
		{nil, "auth: open server without credentials: serving agents on loopback addresses only"},
		{[]string{"-auth.open=true"}, "auth: OPEN server (auth.open: true)"},
		{[]string{"-auth.tokens=tok-1,tok-2"}, "auth: 2 of 2 credentials are unbound auth.tokens, which let an agent speak for ANY client id"},
		{[]string{"-auth.credentials=web sha256:" + sha256Hex("x") + " web-*"}, "auth: 1 credentials, each bound"},
	}
	for _, c := range cases {
		out, errOut, code := hawkCmd(t, append([]string{"-check-config"}, c.flags...)...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("hawk -check-config %v: exit %d, stdout %q, stderr %q; want %q", c.flags, code, out, errOut, c.want)
		}
	}
	out, errOut, code := hawkCmd(t, "-check-config", "-auth.tokens_file=/nonexistent/tokens")
	if code != 1 || !strings.Contains(errOut, "auth.tokens_file") {
		t.Errorf("a missing tokens file: exit %d, %q %q", code, out, errOut)
	}
	s := startServer(t, bin.serverV1, "-auth.tokens=tok-1")
	l := s.waitLog(5*time.Second, func(l logLine) bool { return strings.HasPrefix(l.str("msg"), "auth: 1 of 1 credentials are unbound") })
	if l.str("level") != "warn" {
		t.Errorf("unbound tokens logged at %q, want warn", l.str("level"))
	}
}
