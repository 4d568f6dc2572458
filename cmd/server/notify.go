package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/sdnotify"
)

// systemd's notify protocol (deploy/hawk.service: Type=notify, NotifyAccess=all):
//
//	first process   READY=1 once it serves
//	upgrade         the old process: STATUS=upgrading…; on failure STATUS=…upgrade
//	                failed: reason. The new process: READY=1 and STATUS once ready.
//	                No MAINPID=: systemd follows the new process through the PID
//	                file when the old one exits (pidfile.go).
//	serving         STATUS=serving N connections when the count changes
//	stop            STOPPING=1, then EXTEND_TIMEOUT_USEC while the drain runs (it
//	                ends by drain.timeout on its own)
//
// The old process of an upgrade sends nothing once it drains: it is no longer the
// service's main process, and its STOPPING=1 would stop the service.

// notify sends to systemd when it listens; a failure is logged, never fatal.
func (s *server) notify(assignments ...string) {
	if err := s.sd.Send(assignments...); err != nil {
		s.log.Warn("systemd notification failed", zap.Error(err), zap.Strings("sent", assignments))
	}
}

// generationFromEnv is this process's generation: 1 when started by hand or by
// systemd, the parent's plus one (passed in config.GenerationEnv) after an upgrade.
func generationFromEnv(inherited bool) int {
	if !inherited {
		return 1
	}
	g, err := strconv.Atoi(os.Getenv(config.GenerationEnv))
	if err != nil || g < 2 {
		return 2 // a parent too old to pass it on: at least the second
	}
	return g
}

// statusInterval is how often the serving phase refreshes STATUS= (when the
// connection count changed): systemctl status is read by people, not scraped.
const statusInterval = 5 * time.Second

func (s *server) servingStatus() string {
	st := fmt.Sprintf("serving %d connections (generation %d, version %s)", s.conns.Count(), s.generation, version)
	if p := s.lastUpgrade.Load(); p != nil && !strings.Contains(*p, " success") {
		st += "; last upgrade: " + *p // a failure stays visible in systemctl status
	}
	return st
}

// statusNotifier is a serving-phase actor keeping STATUS= current.
func (s *server) statusNotifier() (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
		if !s.sd.Enabled() {
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
				if n := s.conns.Count(); n != last {
					last = n
					s.notify(sdnotify.Status(s.servingStatus()))
				}
			}
		}
	}, func(error) { cancel() }
}

// drainNotify is a draining-phase actor: during a stop's drain it asks systemd for
// more time than TimeoutStopSec while the drain still runs (the drain is bounded by
// drain.timeout; the extension is what is left of it plus the write timeout the
// last ERRORs may take), and says how many connections are left.
func (s *server) drainNotify(reason string) (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
		if reason != reasonShutdown || !s.sd.Enabled() {
			<-ctx.Done()
			return nil
		}
		st := s.conns.Settings()
		deadline := time.Now().Add(st.DrainTimeout + st.WriteTimeout)
		t := time.NewTicker(statusInterval)
		defer t.Stop()
		for {
			left := time.Until(deadline)
			s.notify(sdnotify.ExtendTimeout(max(left, 0)+2*statusInterval),
				sdnotify.Status(fmt.Sprintf("stopping: draining, %d connections left", s.conns.Count())))
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}, func(error) { cancel() }
}

// handStopToSuccessor passes a stop signal that reached the old process of an
// upgrade on to the new one, so that a stop stops the whole service. Under systemd
// the unit's KillMode=control-group sends it to every process itself (and a second
// copy would end the new process's drain at once), so there it is only logged.
func (s *server) handStopToSuccessor(sig os.Signal) {
	if !s.upgraded.Load() {
		s.log.Warn("stop signal during the drain: it goes on until its deadline; a second one ends it now",
			zap.String("signal", sig.String()))
		return
	}
	if s.sd.Enabled() {
		s.log.Info("stop signal during an upgrade's drain: the service is stopping; systemd signals the new process too",
			zap.String("signal", sig.String()))
		return
	}
	pids := childPIDs()
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig.(syscall.Signal)); err != nil {
			s.log.Error("stop signal not handed to the new process", zap.Int("new_pid", pid), zap.Error(err))
			continue
		}
		s.log.Info("stop signal during an upgrade: handed to the new process, which stops too; this one keeps draining",
			zap.String("signal", sig.String()), zap.Int("new_pid", pid))
	}
	if len(pids) == 0 {
		s.log.Error("stop signal during an upgrade: the new process was not found; signal it yourself",
			zap.String("signal", sig.String()))
	}
}

// childPIDs lists this process's children (the new process of an upgrade is the
// only one hawk starts), from /proc/self/task/*/children (Linux 3.5+).
func childPIDs() []int {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	var out []int
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, w := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(w); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}
