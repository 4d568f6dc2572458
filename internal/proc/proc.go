// Package proc reads what hawk needs to know about processes from /proc (Linux 3.5+).
package proc

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ChildPIDs lists this process's children (the new process of an upgrade is the
// only one hawk starts), from /proc/self/task/*/children.
func ChildPIDs() []int {
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

// ParentOf is pid's parent from /proc (0 when pid is gone).
func ParentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
