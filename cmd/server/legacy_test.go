package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/legacy"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// A reload applies a legacy listener's allow, idle_timeout and max_frame_size to
// the running listener, and refuses a new address, keeping the running config.
func TestReloadLegacyListener(t *testing.T) {
	ts := newTestServer(t)
	const listener = "legacy:\n  listeners:\n    - {name: m, address: \"127.0.0.1:0\", format: ffff, allow: [%s]%s}\n"
	ts.write(t, fmt.Sprintf(listener, "10.0.0.0/8", ""))
	cfg, err := ts.loader.Load()
	if err != nil {
		t.Fatal(err)
	}
	ts.initial = cfg
	ts.cfg.Store(cfg)
	st, err := legacySettings(&cfg.Legacy.Listeners[0])
	if err != nil {
		t.Fatal(err)
	}
	l, err := legacy.New(legacy.Options{Name: "m", Format: legacy.FormatFFFF, Settings: st, Destination: ts.spool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	ts.legacy = []*legacyListener{{cfg: cfg.Legacy.Listeners[0], l: l}}

	ts.write(t, fmt.Sprintf(listener, "10.0.0.0/8, 192.0.2.0/24", ", idle_timeout: 3s, max_frame_size: 100"))
	ts.reload("test")
	got := l.Settings()
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.0/24")}
	if !slices.Equal(got.Allow, want) || got.IdleTimeout != 3*time.Second || got.MaxFrameSize != 100 {
		t.Fatalf("the listener obeys %+v after the reload", got)
	}
	applied := ts.cfg.Load()

	ts.write(t, "legacy:\n  listeners:\n    - {name: m, address: \"127.0.0.1:1\", format: ffff, allow: [127.0.0.0/8]}\n")
	ts.reload("test")
	if ts.cfg.Load() != applied || !slices.Equal(l.Settings().Allow, want) {
		t.Fatal("a reload changing a legacy listener's address was applied")
	}
}

// /v1/connections lists legacy connections beside native ones, by id across both,
// with their listener and format.
func TestConnectionsListsLegacy(t *testing.T) {
	ts := newTestServer(t)
	st := &legacy.Settings{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, IdleTimeout: time.Minute, MaxFrameSize: 1024}
	l, err := legacy.New(legacy.Options{Name: "m", Format: legacy.FormatC8C9, Settings: st, Destination: ts.spool, NewID: ts.conns.NewID})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go l.Serve(ln)
	t.Cleanup(func() {
		ln.Close()
		l.Drain(context.Background(), 0)
		l.Close()
	})
	ts.legacy = []*legacyListener{{l: l, ln: ln}}
	ts.conns.NewID() // a native id taken first: the legacy one comes after it
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	testutil.Eventually(t, 5*time.Second, func() bool { return len(ts.connections(0, 10)) == 1 }, "the legacy connection listed")
	got := ts.connections(0, 10)[0]
	if got.ID != 2 || got.Listener != "m" || got.Format != "c8c9" || got.ClientID != "c8c9:"+nc.LocalAddr().String() {
		t.Errorf("listed %+v", got)
	}
	if rest := ts.connections(got.ID, 10); len(rest) != 0 {
		t.Errorf("after %d: %+v", got.ID, rest)
	}
}
