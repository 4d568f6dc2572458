package main

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

// drain is the draining phase. The listeners are closed (the serving phase's
// interrupts did it): only a successor, if any, accepts now. Clients are told
// GOAWAY, spread out, and served until they go; then the spool is closed and the
// process may exit.
func (s *server) drain(reason string) {
	s.ready.SetNotReady("draining: " + reason)
	s.met.SetReady(false)
	if reason == reasonUpgrade {
		// The successor serves the admin socket now; with no successor this process
		// keeps answering (/readyz 503, /metrics) until its drain ends.
		s.admin.close()
	} else {
		s.notify(sdnotify.Stopping, sdnotify.Status(fmt.Sprintf("stopping: draining %d connections", s.conns.Count())))
	}

	var res conn.DrainResult
	var g run.Group
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error {
		s.handOffConnections(ctx, reason) // what moves to the successor needs no GOAWAY
		legacyDone := s.drainLegacy(ctx)  // alongside: legacy agents get no GOAWAY, only time
		res = s.conns.Drain(ctx, reason)
		s.conns.Close() // every close logged and counted before "exiting"
		<-legacyDone
		return errDrained
	}, func(error) { cancel() })
	g.Add(s.drainSignals(reason))
	g.Add(s.drainNotify(reason))
	g.Run()
	s.control.wait(5 * time.Second) // an upgrade's verdict reaches its command first
	s.met.Drained(res.Duration)

	if reason != reasonUpgrade {
		s.admin.close()
	}
	s.stopDedup()
	flushStart := time.Now()
	s.closeDestination()
	s.log.Info("exiting", zap.String("reason", reason), zap.Duration("drain", res.Duration),
		zap.Duration("spool_flush", time.Since(flushStart)), zap.Duration("spread", res.Spread), zap.Int("goaways", res.Goaways),
		zap.Int("closed_by_client", res.Closed), zap.Int("cut_at_deadline", res.Cut))
	if reason == reasonUpgrade {
		s.pidFileToSuccessor() // last: systemd reads it as this process exits
	}
}
