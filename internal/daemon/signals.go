package daemon

import (
	"context"
	"errors"
	"os"
	"syscall"

	"github.com/oklog/run"
	"go.uber.org/zap"
)

// hawk's signals:
//
//	SIGHUP          upgrade in place
//	SIGUSR1         reload the configuration
//	SIGINT, SIGTERM stop: drain, then exit
//
// They arrive on Daemon.sigs, registered once in start and read by one actor per phase.
// run.SignalHandler does not fit: it returns on the first signal it is given, so it
// cannot take SIGHUP and SIGUSR1 as requests, and its own signal.Notify ends with
// its actor, which would leave a stop signal arriving between the two phases to its
// default action (killing a process that is about to drain). The stop is still
// reported as oklog/run's run.SignalError.

// signalRouter is the serving phase's signal actor.
func (d *Daemon) signalRouter(upgrades chan<- upgradeRequest) (func() error, func(error)) {
	return d.signalActor(func(ctx context.Context, sig os.Signal) error {
		switch sig {
		case syscall.SIGHUP:
			select {
			case upgrades <- upgradeRequest{trigger: "SIGHUP"}:
			case <-ctx.Done():
			}
		case syscall.SIGUSR1:
			d.reload.Reload("SIGUSR1")
		default:
			d.up.stopping.Store(true) // before the upgrader is interrupted: an upgrade it abandons is told why
			return run.SignalError{Signal: sig}
		}
		return nil
	})
}

// errStopNow ends a drain at once: a second stop signal.
var errStopNow = errors.New("second stop signal")

// drainSignals is the draining phase's signal actor: there is nothing left to
// upgrade or reload, but the operator must hear why nothing happens. A stop signal
// during a drain that a stop began (the second one: Ctrl-C twice) ends the drain at
// once. In an upgrade's drain the first stop signal means the service is stopping:
// outside systemd it is handed to the new process (under systemd the unit's
// KillMode=control-group has already sent it there), and this process keeps
// draining; a second one ends the drain.
func (d *Daemon) drainSignals(reason string) (func() error, func(error)) {
	stops := 0
	if reason == reasonShutdown {
		stops = 1
	}
	return d.signalActor(func(_ context.Context, sig os.Signal) error {
		switch sig {
		case syscall.SIGHUP:
			d.refuseUpgrade(errDraining)
		case syscall.SIGUSR1:
			d.log.Warn("config reload refused: this process is draining")
		default:
			stops++
			if stops >= 2 {
				d.log.Warn("second stop signal: ending the drain now; connections still open are closed and "+
					"their unacknowledged reports are the clients' to resend", zap.String("signal", sig.String()),
					zap.Int("connections", d.conns.Count()))
				return errStopNow
			}
			d.handStopToSuccessor(sig)
		}
		return nil
	})
}

// signalActor is an oklog/run actor that hands each signal to handle until handle
// returns an error (which ends the group) or the actor is interrupted.
func (d *Daemon) signalActor(handle func(ctx context.Context, sig os.Signal) error) (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case sig := <-d.sigs:
				if err := handle(ctx, sig); err != nil {
					return err
				}
			}
		}
	}, func(error) { cancel() }
}
