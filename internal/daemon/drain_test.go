package daemon

import (
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// startDrain serves one client, as the serving phase does, ends the serving
// (the listener closes) and starts the drain for reason. drained is closed once
// the drain has returned.
func startDrain(t *testing.T, td *testDaemon, clientID, reason string) (p *testutil.Peer, drained chan struct{}) {
	t.Helper()
	served := make(chan struct{})
	go func() { td.conns.Serve(td.ln); close(served) }()
	p = testutil.Dial(t, td.ln.Addr().String())
	p.Hello(clientID, "")
	td.ln.Close()
	<-served
	drained = make(chan struct{})
	go func() { td.drain(reason); close(drained) }()
	return p, drained
}

// A stop's drain tells each client GOAWAY, waits for it to leave, closes the
// destination and logs "exiting"; the process is not ready from its start.
func TestDrainShutdown(t *testing.T) {
	td := newTestDaemon(t, "drain:\n  timeout: 30s\n  spread: 10ms\n")
	p, drained := startDrain(t, td, "agent", reasonShutdown)
	p.Expect(protocol.TypeGoaway)
	if ready, why := td.ready.Ready(); ready || why != "draining: shutdown" {
		t.Errorf("during the drain: ready %v (%q)", ready, why)
	}
	p.Conn.Close()
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("the drain did not end once the client left")
	}
	if !td.logged("exiting") {
		t.Error(`no "exiting" line`)
	}
	if td.conns.Count() != 0 {
		t.Errorf("%d connections after the drain", td.conns.Count())
	}
}

// A second stop signal during a stop's drain ends it at once: a client that does
// not leave is not waited for until drain.timeout.
func TestDrainSecondStopSignal(t *testing.T) {
	td := newTestDaemon(t, "drain:\n  timeout: 1m\n  spread: 10ms\n")
	p, drained := startDrain(t, td, "stays", reasonShutdown)
	p.Expect(protocol.TypeGoaway) // and stays
	td.sigs <- syscall.SIGTERM    // the second: the serving phase's was the first
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("a second stop signal did not end the drain")
	}
	if !td.logged("second stop signal: ending the drain now; connections still open are closed and " +
		"their unacknowledged reports are the clients' to resend") {
		t.Error("the early end is not logged")
	}
	p.ExpectClosed()
}

// An upgrade's drain refuses a SIGHUP and a SIGUSR1 with the reason; the first
// stop signal does not end it.
func TestDrainUpgradeRefusesRequests(t *testing.T) {
	td := newTestDaemon(t, "drain:\n  timeout: 1m\n  spread: 10ms\n")
	p, drained := startDrain(t, td, "stays", reasonUpgrade)
	p.Expect(protocol.TypeGoaway) // no successor took it: no handoff channel was passed
	td.sigs <- syscall.SIGHUP
	td.sigs <- syscall.SIGUSR1
	td.sigs <- syscall.SIGTERM
	testutil.Eventually(t, 5*time.Second, func() bool {
		return td.logged("upgrade refused") && td.logged("config reload refused: this process is draining") &&
			td.logged("stop signal during the drain: it goes on until its deadline; a second one ends it now")
	}, "the refusals logged")
	select {
	case <-drained:
		t.Fatal("the first stop signal ended an upgrade's drain")
	default:
	}
	td.sigs <- syscall.SIGTERM
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("a second stop signal did not end the drain")
	}
	if got := td.counter(t, "hawk_upgrades_total", "refused"); got != 1 {
		t.Errorf("hawk_upgrades_total{result=refused} = %v, want 1", got)
	}
}
