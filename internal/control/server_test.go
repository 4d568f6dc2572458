package control

import (
	"errors"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type handler struct{ upgrades atomic.Int64 }

func (h *handler) Status() Status { return Status{PID: 7, Version: "v"} }
func (h *handler) Reload() Reply {
	return Reply{OK: true, Message: "reloaded", Changes: []string{"log.level: info -> debug"}}
}
func (h *handler) Upgrade() Reply {
	h.upgrades.Add(1)
	return Reply{Message: "upgrade refused: test"}
}

// failing is a listener whose first Accepts fail as an exhausted descriptor table
// makes them fail.
type failing struct {
	net.Listener
	fails atomic.Int64
}

func (l *failing) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, errors.New("accept: too many open files")
	}
	return l.Listener.Accept()
}

func listen(t *testing.T) (string, net.Listener) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	return path, ln
}

// Each command gets its reply; an unknown one is named.
func TestServeAnswersCommands(t *testing.T) {
	path, ln := listen(t)
	h := &handler{}
	s := Serve(ln, h, zap.NewNop())
	defer s.Close()
	for cmd, check := range map[string]func(*Reply) bool{
		"status":  func(r *Reply) bool { return r.OK && r.Status != nil && r.Status.PID == 7 },
		"reload":  func(r *Reply) bool { return r.OK && len(r.Changes) == 1 },
		"upgrade": func(r *Reply) bool { return !r.OK && r.Message == "upgrade refused: test" },
		"dance":   func(r *Reply) bool { return !r.OK && r.Message == `unknown command "dance" (upgrade, reload, status)` },
	} {
		rep, err := Query(path, cmd, 5*time.Second)
		if err != nil || !check(rep) {
			t.Errorf("%s: %+v, %v", cmd, rep, err)
		}
	}
	if h.upgrades.Load() != 1 {
		t.Errorf("%d upgrades run, want 1", h.upgrades.Load())
	}
	s.Wait(5 * time.Second)
}

// An accept error that is not a close does not stop the socket for good: the
// loop retries, and the next command is answered.
func TestServeRetriesAfterAcceptError(t *testing.T) {
	path, ln := listen(t)
	fl := &failing{Listener: ln}
	fl.fails.Store(3)
	s := Serve(fl, &handler{}, zap.NewNop())
	defer s.Close()
	rep, err := Query(path, "status", 5*time.Second)
	if err != nil || !rep.OK {
		t.Fatalf("status after accept errors: %+v, %v", rep, err)
	}
	if fl.fails.Load() >= 0 {
		t.Fatalf("the accept errors were not met (%d left)", fl.fails.Load()+1)
	}
}

func TestQueryWithoutSocket(t *testing.T) {
	if _, err := Query("", "status", time.Second); err == nil {
		t.Fatal("a query without a socket path succeeded")
	}
}
