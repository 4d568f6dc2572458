package proc

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
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

func TestStartTime(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	self, ok := StartTime(os.Getpid())
	child, ok2 := StartTime(cmd.Process.Pid)
	if !ok || !ok2 || child < self {
		t.Errorf("StartTime: self %d %v, child %d %v; want the child no earlier than its parent", self, ok, child, ok2)
	}
	cmd.Process.Kill()
	testutil.Eventually(t, 5*time.Second, func() bool {
		f := statFields(cmd.Process.Pid)
		return len(f) > 0 && f[0] == "Z"
	}, "the killed child to be a zombie")
	if _, ok := StartTime(cmd.Process.Pid); ok {
		t.Error("StartTime of a zombie: ok, want not")
	}
}
