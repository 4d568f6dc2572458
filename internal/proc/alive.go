package proc

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// Alive reports whether pid runs (a zombie does not count: it writes no more).
// A pid reused by another process counts as running: callers err on keeping.
func Alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) == syscall.ESRCH {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !os.IsNotExist(err)
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
