package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestSendOneDatagram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	s := FromEnv()
	if !s.Enabled() {
		t.Fatal("NOTIFY_SOCKET set, not enabled")
	}
	if err := s.Send(MainPID(42), Ready, Status("a\nb"), ExtendTimeout(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(buf[:n]), "MAINPID=42\nREADY=1\nSTATUS=a b\nEXTEND_TIMEOUT_USEC=1500000\n"; got != want {
		t.Fatalf("sent %q, want %q", got, want)
	}
}

func TestNoSocketSendsNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if s := FromEnv(); s.Enabled() || s.Send(Ready) != nil {
		t.Fatal("without NOTIFY_SOCKET: enabled, or Send failed")
	}
}

func TestAbstractSocketName(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "@hawk-test")
	if s := FromEnv(); s.addr.Name != "\x00hawk-test" {
		t.Fatalf("abstract name %q", s.addr.Name)
	}
}

// A socket nobody listens on is an error the caller can log, not a panic.
func TestSendErrorIsReported(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	if err := FromEnv().Send(Ready); err == nil {
		t.Fatal("send to a missing socket succeeded")
	}
}
