package daemon

import (
	"fmt"
	"os"
	"time"

	"github.com/hawk-agents/hawk/internal/control"
)

// controlHandler answers hawk status, reload and upgrade (internal/control).
type controlHandler struct{ d *Daemon }

func (h controlHandler) Status() control.Status {
	d := h.d
	ready, why := d.ready.Ready()
	return control.Status{PID: os.Getpid(), Version: d.version, Generation: d.generation, Ready: ready, NotReady: why,
		Connections: d.conns.Count(), LastUpgrade: d.up.lastUpgrade(), LastReload: d.reload.Last()}
}

func (h controlHandler) Reload() control.Reply {
	res := h.d.reload.Reload("hawk reload")
	return control.Reply{OK: res.Err == nil, Message: res.Summary(), Changes: res.Changes}
}

// Upgrade runs an upgrade as SIGHUP does and waits for its verdict. On success
// the verdict names the new process, which this one asks over the same socket
// once it has closed its own copy of the listener (only the successor accepts
// then).
func (h controlHandler) Upgrade() control.Reply {
	d := h.d
	reply := make(chan error, 1)
	select {
	case d.up.requests <- upgradeRequest{trigger: "hawk upgrade", reply: reply}:
	case <-d.up.servingDone:
		return control.Reply{Message: "upgrade refused: " + errDraining.Error()}
	}
	err := <-reply
	if err != nil {
		return control.Reply{Message: upgradeVerdict(err)}
	}
	select {
	case <-d.up.servingDone:
	case <-time.After(10 * time.Second):
	}
	child, qerr := control.Query(d.cfg.Load().Control.Socket, "status", 5*time.Second)
	if qerr != nil || child.Status == nil {
		msg := fmt.Sprintf("upgrade succeeded: new generation %d (the new process did not answer status: %v)", d.generation+1, qerr)
		return control.Reply{OK: true, Message: msg}
	}
	c := child.Status
	msg := fmt.Sprintf("upgrade succeeded: new pid %d, version %s, generation %d", c.PID, c.Version, c.Generation)
	d.log.Info(msg)
	return control.Reply{OK: true, Message: msg, Upgrade: &control.UpgradeReply{PreviousPID: os.Getpid(), PID: c.PID, Version: c.Version, Generation: c.Generation}}
}
