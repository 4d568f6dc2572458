package notify

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/sdnotify"
)

func TestServingStatusShowsAFailedUpgrade(t *testing.T) {
	last := ""
	n := New(Options{Log: zap.NewNop(), Count: func() int { return 3 }, Generation: 2, Version: "v1", LastUpgrade: func() string { return last }})
	if got := n.ServingStatus(); got != "serving 3 connections (generation 2, version v1)" {
		t.Fatalf("status %q", got)
	}
	last = "2026-01-01T00:00:00Z success"
	if strings.Contains(n.ServingStatus(), "last upgrade") {
		t.Fatal("a successful upgrade is shown")
	}
	last = "2026-01-01T00:00:00Z upgrade failed: boom"
	if !strings.HasSuffix(n.ServingStatus(), "; last upgrade: "+last) {
		t.Fatalf("a failed upgrade is not shown: %q", n.ServingStatus())
	}
}

// A stop's drain asks systemd for more time at once.
func TestStoppingExtendsTheTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	n := New(Options{Socket: sdnotify.FromEnv(), Log: zap.NewNop(), Count: func() int { return 4 }})
	run, interrupt := n.Stopping(time.Minute)
	done := make(chan error, 1)
	go func() { done <- run() }()
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 512)
	k, err := pc.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if msg := string(b[:k]); !strings.Contains(msg, "EXTEND_TIMEOUT_USEC=") || !strings.Contains(msg, "4 connections left") {
		t.Fatalf("sent %q", msg)
	}
	interrupt(nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
