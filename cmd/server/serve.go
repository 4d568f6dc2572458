package main

import (
	"context"
	"errors"
	"os/signal"

	"github.com/oklog/run"
	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
)

// errUpgraded ends the serving phase when a successor has taken over; a stop signal
// ends it with a run.SignalError. Either way the draining phase follows.
var errUpgraded = errors.New("replaced by a new process")

// Why the process stops; it labels logs, GOAWAYs and /readyz.
const (
	reasonUpgrade  = "upgrade"
	reasonShutdown = "shutdown"
)

// serve runs the process in two phases: serving, until a stop signal or a
// successful upgrade, then draining, until the last connection is gone.
func serve(loader *config.Loader, cfg *config.Config) error {
	s, err := start(loader, cfg)
	if err != nil {
		return err
	}
	defer s.log.Sync()
	defer signal.Stop(s.sigs) // after "exiting": a signal until then is answered, not fatal
	reason := s.serve()
	s.drain(reason)
	return nil
}

// serve is the serving phase: an oklog/run group whose first actor to return ends
// it, every other actor being interrupted and waited for. It returns why it ended.
func (s *server) serve() string {
	var g run.Group
	// Protocol listener. Closing it here, on the way out, is what hands new
	// connections to the successor (or refuses them when there is none).
	g.Add(func() error {
		return s.conns.Serve(s.ln)
	}, func(error) {
		s.ln.Close()
	})
	// Legacy listeners, closed on the way out like the protocol listener.
	for _, ll := range s.legacy {
		g.Add(func() error {
			return ll.l.Serve(ll.ln)
		}, func(error) {
			ll.ln.Close()
		})
	}
	// Upgrades: runs SIGHUP's and hawk upgrade's; ends the phase once a successor is ready.
	g.Add(s.upgrader(s.upgrades))
	// Signals: SIGHUP and SIGUSR1 are requests, SIGINT and SIGTERM end the phase.
	g.Add(s.signalRouter(s.upgrades))
	// Config file watch (armed in start, before Ready).
	if s.watch != nil {
		g.Add(s.watch.actor())
	}
	// The control socket is closed on the way out like the other listeners.
	if s.control != nil {
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel(); s.control.closeListener() })
	}
	if s.tls != nil {
		g.Add(s.tlsWatch())
	}
	g.Add(s.tokensWatch())
	g.Add(s.statusNotifier())
	// The previous process's exit, logged when it happens.
	if s.upg.Inherited() {
		g.Add(s.parentWatch())
	}

	stopped := g.Run()
	close(s.servingDone)
	reason := reasonShutdown
	// The upgrade flag, not which actor ended the group: a stop signal and a
	// successful upgrade may end it together, and then a successor serves: this
	// process drains as replaced (it must not answer /readyz for the service).
	if errors.Is(stopped, errUpgraded) || s.upgraded.Load() {
		reason = reasonUpgrade
	}
	s.log.Info("stopping", zap.String("reason", reason), zap.String("cause", stopped.Error()))
	var sig run.SignalError
	if reason == reasonUpgrade && errors.As(stopped, &sig) {
		s.handStopToSuccessor(sig.Signal) // the stop came as the upgrade won: it stops the new process too
	}
	return reason
}

// parentWatch is the actor that reports how the process this one replaced ended.
// It returns only when interrupted: its news does not end the serving phase.
func (s *server) parentWatch() (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
		err := s.upg.WaitForParent(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			s.log.Warn("previous process ended badly", zap.Error(err))
		default:
			s.log.Info("upgrade handoff finished: the previous process has exited")
		}
		if ctx.Err() == nil {
			s.pidFileAfterParent()
		}
		<-ctx.Done()
		return nil
	}, func(error) { cancel() }
}
