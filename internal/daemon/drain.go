package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/run"
	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/sdnotify"
)

// errDrained ends the draining phase's group: the connections are gone.
var errDrained = errors.New("drained")

// controlWait bounds how long the drain waits for control requests being answered.
const controlWait = 5 * time.Second

// drain is the draining phase. The listeners are closed (the serving phase's
// interrupts did it): only a successor, if any, accepts now. Clients are told
// GOAWAY, spread out, and served until they go; then the spool is closed and the
// process may exit.
func (d *Daemon) drain(reason string) {
	d.ready.SetNotReady("draining: " + reason)
	d.met.SetReady(false)
	if reason == reasonUpgrade {
		// The successor serves the admin socket now; with no successor this process
		// keeps answering (/readyz 503, /metrics) until its drain ends.
		d.admin.Close()
	} else {
		d.notify.Send(sdnotify.Stopping, sdnotify.Status(fmt.Sprintf("stopping: draining %d connections", d.conns.Count())))
	}

	var res conn.DrainResult
	var g run.Group
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error {
		d.handOffConnections(ctx, reason)                                  // what moves to the successor needs no GOAWAY
		legacyDone := d.legacy.Drain(ctx, d.conns.Settings().DrainTimeout) // alongside: legacy agents get no GOAWAY, only time
		res = d.conns.Drain(ctx, reason)
		d.conns.Close() // every close logged and counted before "exiting"
		<-legacyDone
		return errDrained
	}, func(error) { cancel() })
	g.Add(d.drainSignals(reason))
	if reason == reasonShutdown {
		st := d.conns.Settings()
		g.Add(d.notify.Stopping(st.DrainTimeout + st.WriteTimeout))
	}
	g.Run()
	d.control.Wait(controlWait) // an upgrade's verdict reaches its command first
	d.met.Drained(res.Duration)

	if reason != reasonUpgrade {
		d.admin.Close()
	}
	d.stopDedup()
	if d.stopUploads != nil {
		d.stopUploads()
	}
	flushStart := time.Now()
	// UDP is read until here: after an upgrade the new process reads the same
	// sockets, so reading on costs nothing; what was read is stored before exit.
	d.udp.Stop()
	d.dest.close(d.log)
	d.log.Info("exiting", zap.String("reason", reason), zap.Duration("drain", res.Duration),
		zap.Duration("spool_flush", time.Since(flushStart)), zap.Duration("spread", res.Spread), zap.Int("goaways", res.Goaways),
		zap.Int("closed_by_client", res.Closed), zap.Int("cut_at_deadline", res.Cut))
	if reason == reasonUpgrade {
		d.pidfile.ToSuccessor() // last: systemd reads it as this process exits
	}
}

// handOffConnections runs at the start of the drain, before the GOAWAY drain. In a
// process started by an upgrade it first waits for the parent's handoff to end, so
// the drain finds every connection adopted. After an upgrade it moves this
// process's connections to the successor (upgrade.handoff, read now); the drain
// that follows finds only those that fell back.
func (d *Daemon) handOffConnections(ctx context.Context, reason string) {
	<-d.in.Done()
	if reason != reasonUpgrade {
		return
	}
	cfg := d.cfg.Load()
	d.out.Send(ctx, cfg.Upgrade.Handoff, cfg.Upgrade.HandoffTimeout)
}
