// Package notify tells systemd what the daemon is doing: READY, STATUS while it serves, more time while a stop drains.
//
// systemd's notify protocol (deploy/hawk.service: Type=notify, NotifyAccess=all):
//
//	first process   READY=1 once it serves
//	upgrade         the old process: STATUS=upgrading…; on failure STATUS=…upgrade
//	                failed: reason. The new process: READY=1 and STATUS once ready.
//	                No MAINPID=: systemd follows the new process through the PID
//	                file when the old one exits (internal/pidfile).
//	serving         STATUS=serving N connections when the count changes
//	stop            STOPPING=1, then EXTEND_TIMEOUT_USEC while the drain runs (it
//	                ends by drain.timeout on its own)
//
// The old process of an upgrade sends nothing once it drains: it is no longer the
// service's main process, and its STOPPING=1 would stop the service.
package notify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/sdnotify"
)

// statusInterval is how often STATUS= is refreshed (when the connection count
// changed): systemctl status is read by people, not scraped.
const statusInterval = 5 * time.Second

// Options configures a Notifier.
type Options struct {
	Socket      sdnotify.Socket
	Log         *zap.Logger
	Count       func() int // connections served
	Generation  int
	Version     string
	LastUpgrade func() string // "" when none
}

// Notifier sends the process's notifications; with no socket it sends nothing.
type Notifier struct{ o Options }

// New returns a Notifier.
func New(o Options) *Notifier { return &Notifier{o: o} }

// Enabled reports whether systemd listens.
func (n *Notifier) Enabled() bool { return n.o.Socket.Enabled() }

// Send sends assignments; a failure is logged, never fatal.
func (n *Notifier) Send(assignments ...string) {
	if err := n.o.Socket.Send(assignments...); err != nil {
		n.o.Log.Warn("systemd notification failed", zap.Error(err), zap.Strings("sent", assignments))
	}
}

// ServingStatus is STATUS= while serving; a failed last upgrade stays visible in
// systemctl status.
func (n *Notifier) ServingStatus() string {
	st := fmt.Sprintf("serving %d connections (generation %d, version %s)", n.o.Count(), n.o.Generation, n.o.Version)
	if last := n.o.LastUpgrade(); last != "" && !strings.Contains(last, " success") {
		st += "; last upgrade: " + last
	}
	return st
}

// Serving is a serving-phase actor keeping STATUS= current.
func (n *Notifier) Serving() (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
		if !n.Enabled() {
			<-ctx.Done()
			return nil
		}
		t := time.NewTicker(statusInterval)
		defer t.Stop()
		last := -1
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if c := n.o.Count(); c != last {
					last = c
					n.Send(sdnotify.Status(n.ServingStatus()))
				}
			}
		}
	}, func(error) { cancel() }
}

// Stopping is a draining-phase actor for a stop's drain: it asks systemd for more
// time than TimeoutStopSec while the drain still runs (the drain is bounded by
// bound: drain.timeout plus the write timeout the last ERRORs may take; the
// extension is what is left of it), and says how many connections are left.
func (n *Notifier) Stopping(bound time.Duration) (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
		if !n.Enabled() {
			<-ctx.Done()
			return nil
		}
		deadline := time.Now().Add(bound)
		t := time.NewTicker(statusInterval)
		defer t.Stop()
		for {
			left := time.Until(deadline)
			n.Send(sdnotify.ExtendTimeout(max(left, 0)+2*statusInterval),
				sdnotify.Status(fmt.Sprintf("stopping: draining, %d connections left", n.o.Count())))
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}, func(error) { cancel() }
}
