package main

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/upgrade"
)

// upgrader is the serving phase's upgrade actor. Each request (a SIGHUP) runs an
// upgrade on a goroutine of its own, so that a second SIGHUP reaches tableflip while
// the first still runs and is refused at once, not queued; the actor waits for those
// goroutines before it returns. It returns errUpgraded once a successor is ready.
//
// Its interrupt stops the upgrader, once, for the process: with no successor that
// kills an upgrade still starting and refuses new ones; after a successful upgrade
// there is nothing left to stop. Exit is closed by Stop too, which is why the actor
// stops watching it before calling Stop.
func (s *server) upgrader(requests <-chan struct{}) (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
			var running sync.WaitGroup
			defer running.Wait()
			for {
				select {
				case <-s.upg.Exit():
					return errUpgraded
				case <-requests:
					running.Go(s.upgrade)
				case <-ctx.Done():
					return nil
				}
			}
		}, func(error) {
			cancel()
			s.upg.Stop()
		}
}

// upgrade runs one upgrade and reports how it went.
func (s *server) upgrade() {
	start := time.Now()
	s.log.Info("upgrade requested (SIGHUP): starting the new binary", zap.String("binary", os.Args[0]))
	ho := s.passHandoff()
	err := s.upg.Upgrade()
	s.upgraded(ho, err)
	switch {
	case err == nil:
		s.met.Upgrade("success")
		s.log.Info("upgrade succeeded: new process is ready; draining this one", zap.Duration("sighup_to_ready", time.Since(start)))
	case upgrade.IsRefusal(err):
		s.refuseUpgrade(err)
	default:
		s.met.Upgrade("failure")
		s.log.Error("upgrade failed: this process keeps serving", zap.Error(err), zap.Duration("after", time.Since(start)))
	}
}

// errDraining is the refusal of a SIGHUP that arrives once the drain has begun.
var errDraining = errors.New("this process is draining and about to exit; signal the new process once this one has exited")

func (s *server) refuseUpgrade(err error) {
	s.met.Upgrade("refused")
	s.log.Warn("upgrade refused", zap.Error(err))
}
