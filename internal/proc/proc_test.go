package proc

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

func TestChildAndParent(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if !slices.Contains(ChildPIDs(), cmd.Process.Pid) {
		t.Errorf("ChildPIDs %v does not list the child %d", ChildPIDs(), cmd.Process.Pid)
	}
	if got := ParentOf(cmd.Process.Pid); got != os.Getpid() {
		t.Errorf("ParentOf(child) = %d, want %d", got, os.Getpid())
	}
	if got := ParentOf(1 << 30); got != 0 {
		t.Errorf("ParentOf(a pid that does not exist) = %d, want 0", got)
	}
}
