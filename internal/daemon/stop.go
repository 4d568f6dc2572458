package daemon

import (
	"os"
	"syscall"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/proc"
)

// handStopToSuccessor passes a stop signal that reached the old process of an
// upgrade on to the new one, so that a stop stops the whole service. Under systemd
// the unit's KillMode=control-group sends it to every process itself (and a second
// copy would end the new process's drain at once), so there it is only logged.
func (d *Daemon) handStopToSuccessor(sig os.Signal) {
	if !d.up.upgraded.Load() {
		d.log.Warn("stop signal during the drain: it goes on until its deadline; a second one ends it now",
			zap.String("signal", sig.String()))
		return
	}
	if d.notify.Enabled() {
		d.log.Info("stop signal during an upgrade's drain: the service is stopping; systemd signals the new process too",
			zap.String("signal", sig.String()))
		return
	}
	pids := proc.ChildPIDs()
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig.(syscall.Signal)); err != nil {
			d.log.Error("stop signal not handed to the new process", zap.Int("new_pid", pid), zap.Error(err))
			continue
		}
		d.log.Info("stop signal during an upgrade: handed to the new process, which stops too; this one keeps draining",
			zap.String("signal", sig.String()), zap.Int("new_pid", pid))
	}
	if len(pids) == 0 {
		d.log.Error("stop signal during an upgrade: the new process was not found; signal it yourself",
			zap.String("signal", sig.String()))
	}
}
