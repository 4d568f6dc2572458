package e2e

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/client"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/ticketkeys"
)

// A TLS 1.2 connection stays in crypto/tls and falls back to GOAWAY at an
// upgrade; its reconnect to the new process resumes the session (the ticket keys
// went with the upgrade) instead of a full handshake.
func TestTLSFallbackReconnectResumes(t *testing.T) {
	f := newTLSFiles(t)
	s := startServer(t, bin.serverV1, "-tls.cert_file="+f.cert, "-tls.key_file="+f.key)
	admin := s.adminAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{Addr: s.addr(), ClientID: "resume-1",
		TLS: &tls.Config{RootCAs: f.ca.Pool(), ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Report(ctx, []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	s.upgradeTo(bin.serverV2)
	testutil.Eventually(t, 15*time.Second, func() bool { return c.Stats().Reconnects >= 1 }, "the client to reconnect after the GOAWAY fallback")
	if _, err := c.Report(ctx, []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Goaways != 1 || st.TLSResumed != 1 {
		t.Fatalf("client stats %+v: want 1 GOAWAY and its reconnect resumed\nserver log:\n%s", st, s.logTextDump())
	}
	if got := metric(t, admin, `hawk_tls_handshakes_total{session="resumed"}`); got != 1 {
		t.Fatalf("new process: %v resumed handshakes, want 1", got)
	}
	if s.findLogs(func(l logLine) bool {
		return strings.Contains(l.str("msg"), "ticket keys passed by the previous process")
	}) == nil {
		t.Fatal("the new process did not log the inherited ticket keys")
	}
	s.stopAll()
}

// Two instances sharing a keys file resume each other's tickets; a bad keys file
// is refused, naming the key, and the keys in force stay; a new good file is
// taken live.
func TestTLSSharedTicketKeysFile(t *testing.T) {
	f := newTLSFiles(t)
	keys := testutil.WriteFile(t, f.dir, "ticket.keys", []byte("# e2e\n"+hexKey(ticketkeys.NewKey())+"\n"))
	flags := append(f.serverFlags(), "-tls.ticket_keys_file="+keys)
	a := startServer(t, bin.serverV1, flags...)
	b := startServer(t, bin.serverV1, flags...)
	adminB := b.adminAddr()
	cfg := tlsClientConfig(f)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	resumes := func(s *server) bool {
		p := testutil.DialTLS(t, s.addr(), cfg)
		defer p.Conn.Close()
		p.Hello("shared-keys", "") // reading WELCOME takes the session ticket too
		return p.Conn.(*tls.Conn).ConnectionState().DidResume
	}
	if resumes(a) {
		t.Fatal("a first handshake resumed")
	}
	if !resumes(b) {
		t.Fatal("a ticket of instance a did not resume on instance b")
	}

	os.WriteFile(keys, []byte("not a key\n"), 0o600) // in place: a new inode is not needed
	testutil.Eventually(t, 10*time.Second, func() bool {
		return metric(t, adminB, `hawk_tls_ticket_key_changes_total{result="failure"}`) >= 1
	}, "a bad keys file counted")
	l := b.waitLog(5*time.Second, func(l logLine) bool {
		return strings.HasPrefix(l.str("msg"), "TLS session ticket keys not reloaded")
	})
	if !strings.Contains(l.str("error"), "tls.ticket_keys_file") {
		t.Fatalf("the error does not name the key: %v", l)
	}
	if !resumes(b) {
		t.Fatal("the keys in force did not stay after a bad keys file")
	}

	testutil.WriteFile(t, f.dir, "ticket.keys", []byte(hexKey(ticketkeys.NewKey())+"\n"))
	testutil.Eventually(t, 10*time.Second, func() bool {
		return metric(t, adminB, `hawk_tls_ticket_key_changes_total{result="reloaded"}`) >= 1
	}, "the new keys file taken")
	if resumes(b) {
		t.Fatal("a ticket of keys no longer in the file resumed")
	}
	a.stopAll()
	b.stopAll()
}

func hexKey(k ticketkeys.Key) string { return hex.EncodeToString(k[:]) }
