package conn

import (
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/tlsconf"
)

// TestTLSReaderWaitsOnFreshGoroutine: a TLS reader that read a second or more
// after it started ends at its next wait, and a fresh goroutine waits in its
// place (serveIdleTLS, on a stack that opened no record); the connection goes
// on through it.
func TestTLSReaderWaitsOnFreshGoroutine(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthNone, false)
	ts := startServer(t, tlsSettings(f))
	p := testutil.DialTLS(t, ts.addr, f.clientConfig())
	p.Hello("agent-1", "")
	ping := waitsOnFreshGoroutine(t, p, ".serveIdleTLS(")
	ping()
}

// TestIdleTLSSessionRests: a TLS session whose reader waits on a fresh
// goroutine rests (its AEADs go, tlsrecord's Rest), and the next heartbeat is
// answered all the same.
func TestIdleTLSSessionRests(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthNone, false)
	ts := startServer(t, tlsSettings(f))
	p := testutil.DialTLS(t, ts.addr, f.clientConfig())
	p.Hello("agent-1", "")
	resting := func() bool {
		cs := ts.m.reg.Snapshot(nil) // under the registry's lock, which bind took after the switch
		return len(cs) == 1 && cs[0].session().rl.Resting()
	}
	ping := pinger(t, p)
	testutil.Eventually(t, 10*time.Second, func() bool {
		ping()
		return resting()
	}, "the idle TLS session resting")
	ping()
	ping()
}
