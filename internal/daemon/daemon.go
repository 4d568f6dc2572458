// Package daemon is the hawk server process: it opens everything, serves until a stop or an upgrade, then drains.
//
// The process runs in two phases, each an oklog/run group (serve.go, drain.go).
// What each phase runs has an owner of its own: the connections (internal/conn,
// internal/legacyset), the handoff (internal/handoff), reloads (internal/reload),
// the control socket (internal/control), systemd (internal/notify,
// internal/pidfile); this package decides the order and the reason the process
// stops for.
package daemon

import (
	"context"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/admin"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/control"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/fdtable"
	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/legacyset"
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/notify"
	"github.com/hawk-agents/hawk/internal/pidfile"
	"github.com/hawk-agents/hawk/internal/reload"
	"github.com/hawk-agents/hawk/internal/udp"
)

// Options is what the command line gives the daemon.
type Options struct {
	Loader  *config.Loader // the configuration's sources, read again by each reload
	Config  *config.Config // as loaded (and validated) from them
	Version string
	// Began is when main began, before the configuration was loaded (zero: unknown).
	Began time.Time
}

// Run runs the process in two phases: serving, until a stop signal or a
// successful upgrade, then draining, until the last connection is gone.
func Run(o Options) error {
	d, err := start(o)
	if err != nil {
		return err
	}
	defer d.log.Sync()
	defer signal.Stop(d.sigs) // after "exiting": a signal until then is answered, not fatal
	defer d.fds.Close()
	reason := d.serve()
	d.drain(reason)
	return nil
}

// upgrader is what the daemon asks of internal/upgrade once started: an interface
// so that the upgrade's verdict is tested without tableflip.
type upgrader interface {
	Inherited() bool
	Upgrade() error
	Exit() <-chan struct{}
	Stop()
	WaitForParent(ctx context.Context) error
	PassFile(name string, f *os.File) error
	InheritedFile(name string) (*os.File, error)
}

// Daemon is the running process: what start opens, the serving phase runs and
// the draining phase closes, each resource once, each held by its owner.
type Daemon struct {
	version    string
	cfg        *config.Holder
	log        *zap.Logger
	sigs       chan os.Signal // HUP, USR1, INT, TERM for the whole life of the process
	upg        upgrader
	generation int // 1, 2, 3… across upgrades (hawk_generation)
	parentPID  int // the process this one replaced (getppid at start), when started by an upgrade
	fds        *fdtable.Reservation
	met        *metrics.Metrics
	ready      *admin.Readiness

	ln     net.Listener
	conns  *conn.Manager
	legacy *legacyset.Set
	udp    *udp.Set
	dest   destination
	dedup  *dedup.Table
	// stopDedup stops following the previous process's spool (startDedup).
	stopDedup func()
	// dedupDone is closed once the table has all the spool can tell it: the
	// rebuild done and the previous process followed to its exit (startDedup).
	dedupDone chan struct{}
	// stopUploads ends the upload store's upkeep (startUploads); nil without uploads.
	stopUploads func()
	out         *handoff.Sender   // connections to a successor
	in          *handoff.Receiver // connections from the parent

	reload  *reload.Reloader
	watch   *reload.Watch   // nil without -config
	control *control.Server // nil when control.socket is empty
	admin   *admin.Server   // nil when admin.addr is empty
	notify  *notify.Notifier
	pidfile *pidfile.File

	up upgrades
}

// upgrades is the state the upgrade actor shares with the signal actors and the
// control socket.
type upgrades struct {
	requests chan upgradeRequest
	// servingDone is closed when the serving phase has ended and its listeners are
	// closed: from then on only a successor accepts.
	servingDone chan struct{}
	upgraded    atomic.Bool // an upgrade succeeded: a successor serves
	upgrading   sync.Mutex  // one upgrade at a time (upgrade.go: startSuccessor)
	stopping    atomic.Bool // a stop signal ended (or is ending) the serving phase
	last        atomic.Pointer[string]
}

// lastUpgrade is the last upgrade's time and verdict ("" before the first).
func (u *upgrades) lastUpgrade() string {
	if p := u.last.Load(); p != nil {
		return *p
	}
	return ""
}

// Why the process stops; it labels logs, GOAWAYs and /readyz.
const (
	reasonUpgrade  = "upgrade"
	reasonShutdown = "shutdown"
)
