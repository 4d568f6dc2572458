package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
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
// goroutine of its own, so that a second request made while the first still runs
// is refused at once (startSuccessor), not queued; the actor waits for those
// goroutines before it returns. It returns errUpgraded once a successor is ready.
//
// Its interrupt stops the upgrader, once, for the process: with no successor that
// kills an upgrade still starting and refuses new ones; after a successful upgrade
// there is nothing left to stop. Exit is closed by Stop too, which is why the actor
// stops watching it before calling Stop.
func (d *Daemon) upgrader(requests <-chan upgradeRequest) (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
			var running sync.WaitGroup
			defer running.Wait()
			for {
				select {
				case <-d.upg.Exit():
					return errUpgraded
				case req := <-requests:
					running.Go(func() {
						err := d.upgrade(req.trigger)
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
			d.upg.Stop()
		}
}

// upgrade runs one upgrade and reports how it went. Success is counted by the new
// process (hawk_upgrades_total{result="success"}), which is the one whose metrics
// are scraped from then on; this one only logs it.
func (d *Daemon) upgrade(trigger string) error {
	start := time.Now()
	d.log.Info("upgrade requested ("+trigger+"): starting the new binary", zap.String("binary", os.Args[0]))
	d.notify.Send(sdnotify.Status(fmt.Sprintf("upgrading (%s): starting %s", trigger, os.Args[0])))
	err := d.startSuccessor()
	switch {
	case err == nil:
		d.up.upgraded.Store(true)
		d.log.Info("upgrade succeeded: new process is ready; draining this one", zap.Duration("sighup_to_ready", time.Since(start)),
			zap.Int("new_generation", d.generation+1))
	case d.up.stopping.Load():
		// A stop signal came during the upgrade: the service stops, the new process
		// with it (Stop killed it if it was still starting). Not a failure of the
		// new binary, and this process does not keep serving.
		d.met.Upgrade("refused")
		d.log.Warn("upgrade abandoned: a stop signal came while it ran; the new process was stopped and this one is shutting down",
			zap.Error(err), zap.Duration("after", time.Since(start)))
		err = fmt.Errorf("abandoned: the server is stopping: %w", err)
	case upgrade.IsRefusal(err):
		d.refuseUpgrade(err)
	default:
		d.met.Upgrade("failure")
		d.log.Error("upgrade failed: this process keeps serving", zap.Error(err), zap.Duration("after", time.Since(start)))
		d.notify.Send(sdnotify.Status("serving; upgrade failed: " + err.Error()))
	}
	verdict := "success"
	if err != nil {
		verdict = upgradeVerdict(err)
	}
	sum := time.Now().UTC().Format(time.RFC3339) + " " + verdict
	d.up.last.Store(&sum)
	return err
}

// startSuccessor is the upgrade proper. One runs at a time, decided here and not
// by tableflip: the request that passes the handoff channel must be the one whose
// Upgrade starts the child, or the successor would be given a channel this
// process has closed and every connection would be drained with GOAWAY.
func (d *Daemon) startSuccessor() error {
	if !d.up.upgrading.TryLock() {
		return upgrade.ErrInProgress
	}
	defer d.up.upgrading.Unlock()
	// For the new process's account of its start (startTimes); tableflip execs it
	// with this process's environment.
	if err := os.Setenv(config.UpgradeRequestedEnv, strconv.FormatInt(upgrade.Clock(), 10)); err != nil {
		d.log.Warn("the new process will not know when its upgrade was requested", zap.Error(err))
	}
	d.awaitParentHandoff()
	// Reading the configuration file again is this process's business, not the new
	// one's: it runs beside the new process's start instead of before its exec.
	movedc := make(chan string, 1)
	go func() { movedc <- d.warnListenerMoves() }()
	ho := d.out.Pass(d.upg.PassFile)
	d.passDedup(d.upg.PassFile)
	if err := d.reload.PassTicketKeys(d.upg.PassFile); err != nil {
		d.log.Warn("the new process makes TLS session ticket keys of its own: tickets issued here will not resume there", zap.Error(err))
	}
	err := d.upg.Upgrade()
	if moved := <-movedc; err == nil && moved != "" {
		d.log.Warn("upgrade moved the protocol listener: established connections are handed to the new process and stay "+
			"connected (upgrade.handoff); any that fall back are told GOAWAY and reconnect to the address they know, "+
			"which closes with this drain", zap.String("moved", moved))
	}
	d.out.Passed(ho, err)
	return err
}

// awaitParentHandoff holds an upgrade requested while the parent still hands its
// connections to this process until that handoff is over: the parent exits right
// after it (tableflip allows no upgrade before that exit; Upgrade waits
// parentExitGrace for the exit itself, not for a handoff of any size). The parent
// bounds its handoff by upgrade.handoff_timeout; Stop (which closes Exit) ends the
// wait too.
func (d *Daemon) awaitParentHandoff() {
	select {
	case <-d.in.Done():
		return
	default:
	}
	d.log.Info("upgrade waits for the previous process to finish handing over its connections")
	select {
	case <-d.in.Done():
	case <-d.upg.Exit():
	}
}

// warnListenerMoves says, before the new process starts, that it will serve the
// protocol on another address than this one (listen changed in the file): the
// listening socket is not inherited, so established connections move with the
// handoff but an agent that connects afresh must use the new address.
// It returns "A -> B", or "" when listen stays (or the file cannot be read: the
// new process will say why).
func (d *Daemon) warnListenerMoves() string {
	next, err := d.reload.Next()
	running := d.cfg.Load()
	if err != nil || next == nil || next.Listen == running.Listen {
		return ""
	}
	moved := running.Listen + " -> " + next.Listen
	d.log.Warn("upgrade moves the protocol listener: the new process opens the new address; the "+
		strconv.Itoa(d.conns.Count())+" agents connected here move with their connections, but any that reconnects must use the new address", zap.String("moved", moved))
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

func (d *Daemon) refuseUpgrade(err error) {
	d.met.Upgrade("refused")
	d.log.Warn("upgrade refused", zap.Error(err))
}
