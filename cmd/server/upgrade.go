package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/sdnotify"
	"github.com/hawk-agents/hawk/internal/upgrade"
)

// upgradeRequest is one request for an upgrade: a SIGHUP (no reply) or hawk
// upgrade over the control socket, which waits for the verdict on reply.
type upgradeRequest struct {
	trigger string
	reply   chan<- error // buffered; nil for a SIGHUP
}

// upgrader is the serving phase's upgrade actor. Each request runs an upgrade on a
// goroutine of its own, so that a second request reaches tableflip while the first
// still runs and is refused at once, not queued; the actor waits for those
// goroutines before it returns. It returns errUpgraded once a successor is ready.
//
// Its interrupt stops the upgrader, once, for the process: with no successor that
// kills an upgrade still starting and refuses new ones; after a successful upgrade
// there is nothing left to stop. Exit is closed by Stop too, which is why the actor
// stops watching it before calling Stop.
func (s *server) upgrader(requests <-chan upgradeRequest) (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
			var running sync.WaitGroup
			defer running.Wait()
			for {
				select {
				case <-s.upg.Exit():
					return errUpgraded
				case req := <-requests:
					running.Go(func() {
						err := s.upgrade(req.trigger)
						if req.reply != nil {
							req.reply <- err
						}
					})
				case <-ctx.Done():
					return nil
				}
			}
		}, func(error) {
			cancel()
			s.upg.Stop()
		}
}

// upgrade runs one upgrade and reports how it went. Success is counted by the new
// process (hawk_upgrades_total{result="success"}), which is the one whose metrics
// are scraped from then on; this one only logs it.
func (s *server) upgrade(trigger string) error {
	start := time.Now()
	s.log.Info("upgrade requested ("+trigger+"): starting the new binary", zap.String("binary", os.Args[0]))
	s.notify(sdnotify.Status(fmt.Sprintf("upgrading (%s): starting %s", trigger, os.Args[0])))
	moved := s.warnListenerMoves()
	ho := s.handoff.out.Pass(s.upg.PassFile)
	err := s.upg.Upgrade()
	if err == nil && moved != "" {
		s.log.Warn("upgrade moved the protocol listener: established connections are handed to the new process and stay "+
			"connected (upgrade.handoff); any that fall back are told GOAWAY and reconnect to the address they know, "+
			"which closes with this drain", zap.String("moved", moved))
	}
	s.handoff.out.Passed(ho, err)
	switch {
	case err == nil:
		s.upgraded.Store(true)
		s.log.Info("upgrade succeeded: new process is ready; draining this one", zap.Duration("sighup_to_ready", time.Since(start)),
			zap.Int("new_generation", s.generation+1))
	case s.stopping.Load():
		// A stop signal came during the upgrade: the service stops, the new process
		// with it (Stop killed it if it was still starting). Not a failure of the
		// new binary, and this process does not keep serving.
		s.met.Upgrade("refused")
		s.log.Warn("upgrade abandoned: a stop signal came while it ran; the new process was stopped and this one is shutting down",
			zap.Error(err), zap.Duration("after", time.Since(start)))
		err = fmt.Errorf("abandoned: the server is stopping: %w", err)
	case upgrade.IsRefusal(err):
		s.refuseUpgrade(err)
	default:
		s.met.Upgrade("failure")
		s.log.Error("upgrade failed: this process keeps serving", zap.Error(err), zap.Duration("after", time.Since(start)))
		s.notify(sdnotify.Status("serving; upgrade failed: " + err.Error()))
	}
	verdict := "success"
	if err != nil {
		verdict = upgradeVerdict(err)
	}
	sum := time.Now().UTC().Format(time.RFC3339) + " " + verdict
	s.lastUpgrade.Store(&sum)
	return err
}

// warnListenerMoves says, before the new process starts, that it will serve the
// protocol on another address than this one (listen changed in the file): the
// socket this process's agents use is not inherited and closes with the drain.
// It returns "A -> B", or "" when listen stays (or the file cannot be read: the
// new process will say why).
func (s *server) warnListenerMoves() string {
	if s.loader.File == "" {
		return ""
	}
	s.reloadMu.Lock() // the loader is the reloads' too
	next, err := s.loader.Load()
	s.reloadMu.Unlock()
	running := s.cfg.Load()
	if err != nil || next.Listen == running.Listen {
		return ""
	}
	moved := running.Listen + " -> " + next.Listen
	s.log.Warn("upgrade moves the protocol listener: the new process opens the new address; the "+
		strconv.Itoa(s.conns.Count())+" agents connected here are told GOAWAY and must reconnect to it", zap.String("moved", moved))
	return moved
}

// upgradeVerdict is the line hawk upgrade prints for a failed or refused upgrade.
func upgradeVerdict(err error) string {
	if upgrade.IsRefusal(err) {
		return "upgrade refused: " + err.Error() + "; this process keeps serving"
	}
	return "upgrade failed: " + err.Error() + "; this process keeps serving"
}

// errDraining is the refusal of a SIGHUP that arrives once the drain has begun.
var errDraining = errors.New("this process is draining and about to exit; signal the new process once this one has exited")

func (s *server) refuseUpgrade(err error) {
	s.met.Upgrade("refused")
	s.log.Warn("upgrade refused", zap.Error(err))
}
