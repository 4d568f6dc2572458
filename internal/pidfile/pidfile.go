// Package pidfile names the serving process in upgrade.pid_file at the moments systemd reads it.
//
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
// hawk upgrade makes wait for the old process's exit (internal/control). The new
// process also sends MAINPID= once its parent is gone (the same pid: a no-op, or
// the adoption if its SIGCHLD came first). Outside systemd the file names the
// serving process from its Ready on (scripts signal the process that serves).
package pidfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/proc"
)

// File is the PID file policy of one process.
type File struct {
	path    func() string // upgrade.pid_file as in force ("" : none)
	managed bool          // a service manager (systemd) follows the file
	log     *zap.Logger
}

// New returns the policy; managed says systemd follows the process.
func New(path func() string, managed bool, log *zap.Logger) *File {
	return &File{path: path, managed: managed, log: log}
}

// AtReady writes this process's pid when it starts serving: always for a first
// process, and after an upgrade only when no service manager follows the file at
// the old process's exit.
func (f *File) AtReady(inherited bool) {
	if inherited && f.managed {
		return
	}
	f.Write(os.Getpid(), "ready")
}

// ToSuccessor names the new process, as the old one is about to exit.
func (f *File) ToSuccessor() {
	if !f.managed {
		return
	}
	kids := proc.ChildPIDs()
	if len(kids) == 0 {
		f.log.Info("PID file left as it is: the new process has exited already (the service is stopping)")
		return
	}
	if len(kids) != 1 {
		f.log.Error("PID file not handed to the new process: it is not this process's only child", zap.Ints("children", kids))
		return
	}
	f.Write(kids[0], "handed to the new process")
}

// AfterParent names this process the main process once the process it replaced
// (parentPID) has exited, under systemd: tellMainPID sends MAINPID= first.
func (f *File) AfterParent(parentPID int, tellMainPID func()) {
	if !f.managed {
		return
	}
	// The parent's end of tableflip's pipe closes as its files close, which the
	// kernel does before it reparents the parent's children: until getppid
	// changes, systemd would still see the process as not its child. A bounded
	// wait, not a sleep: it ends as soon as the exit completes.
	for deadline := time.Now().Add(time.Second); os.Getppid() == parentPID && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	tellMainPID()
	f.Write(os.Getpid(), "previous process exited")
}

// Write replaces the PID file atomically (a reader never sees it empty).
func (f *File) Write(pid int, why string) {
	path := f.path()
	if path == "" {
		return
	}
	if err := WriteAtomic(path, []byte(strconv.Itoa(pid)+"\n")); err != nil {
		f.log.Error("PID file not written", zap.String("path", path), zap.Error(err))
		return
	}
	f.log.Info("PID file written", zap.String("path", path), zap.Int("names_pid", pid), zap.String("why", why))
}

// WriteAtomic writes data to path through a temporary file and a rename.
func WriteAtomic(path string, data []byte) error {
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
