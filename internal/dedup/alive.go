package dedup

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
)

// ProcessAlive reports whether pid runs (a zombie does not count: it writes no
// more). It is Follow's usual alive function.
func ProcessAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) == syscall.ESRCH {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !os.IsNotExist(err)
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
