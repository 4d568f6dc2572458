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
	f := statFields(pid)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// StartTime is when pid started, in clock ticks since boot; ok is false when pid
// is gone or a zombie (it has exited, only its status is left).
func StartTime(pid int) (ticks uint64, ok bool) {
	f := statFields(pid)
	if len(f) < 20 || f[0] == "Z" {
		return 0, false
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	return ticks, err == nil
}

// statFields are the fields of /proc/pid/stat after the command name (which may
// hold spaces and parentheses): state, ppid, and on (nil when pid is gone).
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}
