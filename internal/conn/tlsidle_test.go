package conn

import (
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/tlsconf"
)

// TestIdleTLSSessionRests: once HELLO is answered, the reader of an agent that
// sends nothing waits on a fresh goroutine (serveIdleTLS, on a stack that opened
// no record) and the session rests (its AEADs go, tlsrecord's Rest) without
// waiting for a first heartbeat; heartbeats are answered, and between them the
// session rests again.
func TestIdleTLSSessionRests(t *testing.T) {
	f := newTLSFixture(t, tlsconf.AuthNone, false)
	ts := startServer(t, tlsSettings(f))
	p := testutil.DialTLS(t, ts.addr, f.clientConfig())
	p.Hello("agent-1", "")
	resting := func() bool {
		cs := ts.m.reg.Snapshot(nil) // under the registry's lock, which bind took after the switch
		return len(cs) == 1 && cs[0].session().rl.Resting()
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return goroutineIn(".serveIdleTLS(") && resting() },
		"the reader waiting on a fresh goroutine with the session resting, with no record since HELLO")
	// A record wakes it (tlsrecord's tests); how soon it rests again depends on
	// when the reader started, so only that it does is asserted.
	ping := pinger(t, p)
	testutil.Eventually(t, 10*time.Second, func() bool {
		ping()
		return resting()
	}, "the session resting again between heartbeats")
	ping()
}
