package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/sdnotify"
)

// How systemd follows hawk across an upgrade (deploy/hawk.service: Type=notify,
// PIDFile=), found by running the unit under systemd 252 (deploy/test-systemd.sh):
//
//   - Not by the PID file at the new process's Ready (tableflip's way): systemd
//     re-reads PIDFile= as soon as ExecReload= ends and adopts the new process
//     while the old one still drains ("Supervising process N which is not our
//     child"): systemd then neither reaps it nor waits for it at a stop (on the
//     legacy cgroup hierarchy in a container it SIGKILLs at once).
//   - Not by MAINPID= at takeover: the same "not our child", recorded once; systemd
//     does not look again for the same pid (service_set_main_pid).
//   - Not by MAINPID= after the old process exits: systemd has by then seen its
//     main process exit and stopped the service.
//
// So the old process stays the main process for its whole drain and, as the last
// thing before it exits, writes the new process's pid into the PID file. systemd
// reads it when the main process exits (the kernel has reparented the new process
// to PID 1 by then, so it is systemd's child) and when ExecReload= ends, which
// hawk upgrade makes wait for the old process's exit (control.go). The new process
// also sends MAINPID= once its parent is gone (the same pid: a no-op, or the
// adoption if its SIGCHLD came first). Outside systemd the file names the serving
// process from its Ready on (scripts signal the process that serves).

// pidFileAtReady writes this process's pid when it starts serving: always for a
// first process, and after an upgrade only when no service manager follows the
// file at the old process's exit.
func (s *server) pidFileAtReady() {
	if s.upg.Inherited() && s.sd.Enabled() {
		return
	}
	s.writePIDFile(os.Getpid(), "ready")
}

// pidFileToSuccessor names the new process, as the old one is about to exit.
func (s *server) pidFileToSuccessor() {
	if !s.sd.Enabled() {
		return
	}
	kids := childPIDs()
	if len(kids) == 0 {
		s.log.Info("PID file left as it is: the new process has exited already (the service is stopping)")
		return
	}
	if len(kids) != 1 {
		s.log.Error("PID file not handed to the new process: it is not this process's only child", zap.Ints("children", kids))
		return
	}
	s.writePIDFile(kids[0], "handed to the new process")
}

// pidFileAfterParent names this process the main process once the process it
// replaced has exited (under systemd).
func (s *server) pidFileAfterParent() {
	if s.sd.Enabled() {
		// The parent's end of tableflip's pipe closes as its files close, which the
		// kernel does before it reparents the parent's children: until getppid
		// changes, systemd would still see the process as not its child. A bounded
		// wait, not a sleep: it ends as soon as the exit completes.
		for deadline := time.Now().Add(time.Second); os.Getppid() == s.parentPID && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		s.notify(sdnotify.MainPID(os.Getpid()), sdnotify.Status(s.servingStatus()))
		s.log.Info("told systemd MAINPID: the previous process has exited")
		s.writePIDFile(os.Getpid(), "previous process exited")
	}
}

// writePIDFile replaces the PID file atomically (a reader never sees it empty).
func (s *server) writePIDFile(pid int, why string) {
	path := s.cfg.Load().Upgrade.PIDFile
	if path == "" {
		return
	}
	if err := writeFileAtomic(path, []byte(strconv.Itoa(pid)+"\n")); err != nil {
		s.log.Error("PID file not written", zap.String("path", path), zap.Error(err))
		return
	}
	s.log.Info("PID file written", zap.String("path", path), zap.Int("names_pid", pid), zap.String("why", why))
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("pid file: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("pid file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}
