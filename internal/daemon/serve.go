package daemon

import (
	"context"
	"errors"
	"os"

	"github.com/oklog/run"
	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/heaptrim"
	"github.com/hawk-agents/hawk/internal/sdnotify"
)

// errUpgraded ends the serving phase when a successor has taken over; a stop signal
// ends it with a run.SignalError. Either way the draining phase follows.
var errUpgraded = errors.New("replaced by a new process")

// serve is the serving phase: an oklog/run group whose first actor to return ends
// it, every other actor being interrupted and waited for. It returns why it ended.
func (d *Daemon) serve() string {
	var g run.Group
	// Protocol listener. Closing it here, on the way out, is what hands new
	// connections to the successor (or refuses them when there is none).
	g.Add(func() error {
		return d.conns.Serve(d.ln)
	}, func(error) {
		d.ln.Close()
	})
	// Legacy listeners, closed on the way out like the protocol listener.
	d.legacy.AddActors(&g)
	// Upgrades: runs SIGHUP's and hawk upgrade's; ends the phase once a successor is ready.
	g.Add(d.upgrader(d.up.requests))
	// Signals: SIGHUP and SIGUSR1 are requests, SIGINT and SIGTERM end the phase.
	g.Add(d.signalRouter(d.up.requests))
	// Config file watch (armed in start, before Ready).
	if d.watch != nil {
		g.Add(d.watch.Actor())
	}
	// The control socket is closed on the way out like the other listeners.
	if d.control != nil {
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel(); d.control.Close() })
	}
	if run, interrupt := d.reload.TLSWatch(); run != nil {
		g.Add(run, interrupt)
	}
	if run, interrupt := d.reload.TicketKeysWatch(); run != nil {
		g.Add(run, interrupt)
	}
	g.Add(d.reload.TokensWatch())
	g.Add(d.notify.Serving())
	// Free heap a burst of handshakes left, returned once allocation is quiet,
	// and a lower GOGC while it is.
	g.Add(heaptrim.New(d.log).Actor())
	// The previous process's exit, logged when it happens.
	if d.upg.Inherited() {
		g.Add(d.parentWatch())
	}

	stopped := g.Run()
	close(d.up.servingDone)
	reason := reasonShutdown
	// The upgrade flag, not which actor ended the group: a stop signal and a
	// successful upgrade may end it together, and then a successor serves: this
	// process drains as replaced (it must not answer /readyz for the service).
	if errors.Is(stopped, errUpgraded) || d.up.upgraded.Load() {
		reason = reasonUpgrade
	}
	d.log.Info("stopping", zap.String("reason", reason), zap.String("cause", stopped.Error()))
	var sig run.SignalError
	if reason == reasonUpgrade && errors.As(stopped, &sig) {
		d.handStopToSuccessor(sig.Signal) // the stop came as the upgrade won: it stops the new process too
	}
	return reason
}

// parentWatch is the actor that reports how the process this one replaced ended.
// It returns only when interrupted: its news does not end the serving phase.
func (d *Daemon) parentWatch() (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
		err := d.upg.WaitForParent(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			d.log.Warn("previous process ended badly", zap.Error(err))
		default:
			d.log.Info("upgrade handoff finished: the previous process has exited")
		}
		if ctx.Err() == nil {
			d.pidfile.AfterParent(d.parentPID, func() {
				d.notify.Send(sdnotify.MainPID(os.Getpid()), sdnotify.Status(d.notify.ServingStatus()))
				d.log.Info("told systemd MAINPID: the previous process has exited")
			})
		}
		<-ctx.Done()
		return nil
	}, func(error) { cancel() }
}
