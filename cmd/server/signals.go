package main

import (
	"context"
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
// They arrive on s.sigs, registered once in start and read by one actor per phase.
// run.SignalHandler does not fit: it returns on the first signal it is given, so it
// cannot take SIGHUP and SIGUSR1 as requests, and its own signal.Notify ends with
// its actor, which would leave a stop signal arriving between the two phases to its
// default action (killing a process that is about to drain). The stop is still
// reported as oklog/run's run.SignalError.

// signalRouter is the serving phase's signal actor.
func (s *server) signalRouter(upgrades chan<- struct{}) (func() error, func(error)) {
	return s.signalActor(func(ctx context.Context, sig os.Signal) error {
		switch sig {
		case syscall.SIGHUP:
			select {
			case upgrades <- struct{}{}:
			case <-ctx.Done():
			}
		case syscall.SIGUSR1:
			s.reload("SIGUSR1")
		default:
			return run.SignalError{Signal: sig}
		}
		return nil
	})
}

// drainSignals is the draining phase's signal actor: there is nothing left to
// upgrade, reload or stop, but the operator must hear why nothing happens.
func (s *server) drainSignals() (func() error, func(error)) {
	return s.signalActor(func(_ context.Context, sig os.Signal) error {
		switch sig {
		case syscall.SIGHUP:
			s.refuseUpgrade(errDraining)
		case syscall.SIGUSR1:
			s.log.Warn("config reload refused: this process is draining")
		default:
			s.log.Warn("already draining; the drain ends by its deadline", zap.String("signal", sig.String()))
		}
		return nil
	})
}

// signalActor is an oklog/run actor that hands each signal to handle until handle
// returns an error (which ends the group) or the actor is interrupted.
func (s *server) signalActor(handle func(ctx context.Context, sig os.Signal) error) (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case sig := <-s.sigs:
				if err := handle(ctx, sig); err != nil {
					return err
				}
			}
		}
	}, func(error) { cancel() }
}
