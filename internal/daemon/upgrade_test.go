package daemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/hawk-agents/hawk/internal/upgrade"
)

// Each outcome of an upgrade gets its verdict: what hawk upgrade prints, what
// hawk status shows as the last upgrade, the metric and whether a successor now
// serves.
func TestUpgradeVerdict(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		stopping bool
		result   string // hawk_upgrades_total's label; "" for success, counted by the new process
		last     string
		returned string
	}{
		{name: "success", last: " success"},
		{name: "refused", err: upgrade.ErrInProgress, result: "refused", last: " upgrade refused: " + upgrade.ErrInProgress.Error() + "; this process keeps serving",
			returned: upgrade.ErrInProgress.Error()},
		{name: "failed", err: errors.New("the new binary exited"), result: "failure",
			last: " upgrade failed: the new binary exited; this process keeps serving", returned: "the new binary exited"},
		{name: "abandoned", err: upgrade.ErrStopped, stopping: true, result: "refused",
			last: " upgrade refused: abandoned: the server is stopping", returned: "abandoned: the server is stopping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			td := newTestDaemon(t, "")
			td.upg.err = tc.err
			td.up.stopping.Store(tc.stopping)
			err := td.upgrade("test")
			if (err == nil) != (tc.err == nil) || (err != nil && !strings.Contains(err.Error(), tc.returned)) {
				t.Fatalf("upgrade returned %v, want one naming %q", err, tc.returned)
			}
			if got := td.up.lastUpgrade(); !strings.Contains(got, tc.last) {
				t.Errorf("last upgrade %q, want it to say %q", got, tc.last)
			}
			if td.up.upgraded.Load() != (tc.err == nil) {
				t.Errorf("upgraded %v after %v", td.up.upgraded.Load(), tc.err)
			}
			for _, r := range []string{"success", "failure", "refused"} {
				want := 0.0
				if r == tc.result {
					want = 1
				}
				if got := td.counter(t, "hawk_upgrades_total", r); got != want {
					t.Errorf("hawk_upgrades_total{result=%q} = %v, want %v", r, got, want)
				}
			}
		})
	}
}

// hawk upgrade, once the serving phase is over, is refused at once with the
// reason, not queued.
func TestControlUpgradeWhileDraining(t *testing.T) {
	td := newTestDaemon(t, "")
	close(td.up.servingDone)
	rep := controlHandler{td.Daemon}.Upgrade()
	if rep.OK || rep.Message != "upgrade refused: "+errDraining.Error() {
		t.Fatalf("reply %+v", rep)
	}
}

// The upgrade actor runs a request and ends the serving phase once the successor
// is ready (Exit), with errUpgraded.
func TestUpgraderEndsThePhaseOnExit(t *testing.T) {
	td := newTestDaemon(t, "")
	run, interrupt := td.upgrader(td.up.requests)
	done := make(chan error, 1)
	go func() { done <- run() }()
	reply := make(chan error, 1)
	td.up.requests <- upgradeRequest{trigger: "test", reply: reply}
	if err := <-reply; err != nil {
		t.Fatal(err)
	}
	close(td.upg.exit)
	if err := <-done; !errors.Is(err, errUpgraded) {
		t.Fatalf("the actor returned %v, want errUpgraded", err)
	}
	interrupt(nil)
}
