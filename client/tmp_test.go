package client

import (
	"log/slog"
	"os"
	"testing"
	"time"
)

func TestTmpHB(t *testing.T) {
	srv := newFakeServer(t)
	srv.hbMS = 100
	srv.start()
	opts := testOptions(srv, "agent-1")
	start := time.Now()
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.OnEvent = func(e Event) { t.Logf("%v %+v", time.Since(start), e) }
	c := dial(t, opts)
	waitFor(t, 5*time.Second, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.pings >= 3
	}, "PINGs from an idle client")
	t.Logf("%v stats %+v", time.Since(start), c.Stats())
}
