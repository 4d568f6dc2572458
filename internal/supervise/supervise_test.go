package supervise

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// The server starts its successor and exits, as an upgrade does: the supervisor
// adopts the orphan and exits with the successor's status, not the first's.
func TestAdoptsSuccessorAndExitsWithIt(t *testing.T) {
	var log testutil.Buffer
	code := Run("/bin/sh", []string{"-c", `sh -c 'sleep 0.2; exit 7' & exit 0`}, &log)
	if code != 7 {
		t.Fatalf("Run = %d, want 7 (the successor's status)\n%s", code, log.String())
	}
	if !strings.Contains(log.String(), "adopted its successor") {
		t.Errorf("no adoption logged:\n%s", log.String())
	}
}

// SIGTERM to the supervisor reaches the server (the whole group), and the
// supervisor exits with the server's status: 128+15 for a shell killed by it.
func TestForwardsStopToServer(t *testing.T) {
	var log testutil.Buffer
	done := make(chan int, 1)
	go func() { done <- Run("/bin/sh", []string{"-c", "exec sleep 30"}, &log) }()
	testutil.Eventually(t, 5*time.Second, func() bool { return strings.Contains(log.String(), "supervises server") },
		"the server to start")
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 128+int(syscall.SIGTERM) {
			t.Fatalf("Run = %d, want %d\n%s", code, 128+int(syscall.SIGTERM), log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("SIGTERM was not forwarded:\n%s", log.String())
	}
}
