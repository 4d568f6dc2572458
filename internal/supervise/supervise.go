package supervise

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"syscall"

	"github.com/hawk-agents/hawk/internal/proc"
)

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER (Linux 3.4).
const prSetChildSubreaper = 36

// Forwarded signals: requests go to the main process, stops to the whole group.
var (
	requests = []os.Signal{syscall.SIGHUP, syscall.SIGUSR1}
	stops    = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT}
)

// Run starts path with args as the server and supervises it until the last
// generation exits; it returns the exit code to exit with. log gets one line per
// event (start, adoption, exit).
func Run(path string, args []string, log io.Writer) int {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		fmt.Fprintf(log, "hawk supervise: prctl(PR_SET_CHILD_SUBREAPER): %v\n", errno)
		return 1
	}
	// Notify before the start: a SIGCHLD or SIGTERM arriving while it starts is
	// queued, not lost.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, append(append([]os.Signal{syscall.SIGCHLD}, requests...), stops...)...)
	defer signal.Stop(sigs)

	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(log, "hawk supervise: starting %s: %v\n", path, err)
		return 1
	}
	s := &state{main: cmd.Process.Pid, group: cmd.Process.Pid, log: log}
	fmt.Fprintf(log, "hawk supervise: pid %d supervises server pid %d\n", os.Getpid(), s.main)
	for sig := range sigs {
		switch {
		case sig == syscall.SIGCHLD:
			if code, done := s.reap(); done {
				return code
			}
		case slices.Contains(requests, sig):
			syscall.Kill(s.main, sig.(syscall.Signal))
		default:
			syscall.Kill(-s.group, sig.(syscall.Signal))
		}
	}
	return 1 // unreachable: sigs is never closed
}

// state is the supervisor's: owned by Run's loop alone.
type state struct {
	main  int // the serving generation
	group int // the process group every generation is in
	log   io.Writer
}

// reap waits for every child that has exited. When the main process is one, the
// successor (if any) becomes the main process; with none left, done is true and
// code is the main process's exit code.
func (s *state) reap() (code int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid != s.main {
			continue // an orphan of the server's, or a draining generation
		}
		code = exitCode(ws)
		// The kernel re-parents the exiting process's children to us before we can
		// reap it: its successor is among our children now.
		if next := successor(proc.ChildPIDs()); next != 0 {
			fmt.Fprintf(s.log, "hawk supervise: server pid %d exited (%d); adopted its successor pid %d\n", pid, code, next)
			s.main = next
			continue
		}
		fmt.Fprintf(s.log, "hawk supervise: server pid %d exited (%d); none left\n", pid, code)
		return code, true
	}
}

// successor picks the main process among the children: the newest (highest start
// time) that is not a zombie. An upgrade leaves at most one.
func successor(children []int) int {
	best, bestStart := 0, uint64(0)
	for _, pid := range children {
		start, ok := proc.StartTime(pid)
		if ok && (best == 0 || start > bestStart) {
			best, bestStart = pid, start
		}
	}
	return best
}

func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
