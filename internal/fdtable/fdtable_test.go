//go:build linux

package fdtable

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// childEnv marks the test binary run again as a process of its own.
const childEnv = "FDTABLE_TEST_CHILD"

// fdSize reads a process's descriptor table size (FDSize) from its status.
func fdSize(t *testing.T, status []byte) int {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "FDSize:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("FDSize %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no FDSize in:\n%s", status)
	return 0
}

func ownFDSize(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	return fdSize(t, b)
}

// childFDSize is the table size a child process starts with, read by the child
// itself after its exec.
func childFDSize(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("cat", "/proc/self/status").Output()
	if err != nil {
		t.Fatal(err)
	}
	return fdSize(t, out)
}

func limit(t *testing.T) int {
	t.Helper()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	return int(lim.Cur)
}

// The table grows to what was asked in one step and keeps the room; the held
// descriptor sits at the top, close-on-exec, and a child started meanwhile
// begins with a table as large: the room an upgrade's new process inherits.
// Once the hold is closed, a child begins small again: the hold, not the
// parent's table, is what it inherits.
func TestReserveGrowsAndChildrenInherit(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		// In a process of its own, whose table starts small: a table never shrinks,
		// so in this one an earlier test, or an earlier run (-count), has grown it.
		cmd := exec.Command(os.Args[0], "-test.run=^TestReserveGrowsAndChildrenInherit$", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		t.Logf("in a process of its own:\n%s", out)
		return
	}
	before := ownFDSize(t)
	n := min(8*max(before, 1024), limit(t))
	if n <= before {
		t.Fatalf("the descriptor limit %d leaves no room above the table's %d descriptors: nothing to grow (raise ulimit -n)", limit(t), before)
	}
	r := Reserve(n, nil)
	res := r.Wait()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.Size < n || res.Capped {
		t.Fatalf("reserved %+v, asked for %d", res, n)
	}
	t.Logf("table grown from %d to %d descriptors in %v", before, res.Size, res.Took)
	if got := ownFDSize(t); got < n {
		t.Fatalf("table holds %d descriptors after reserving %d (%d before)", got, n, before)
	}
	flags, err := unix.FcntlInt(uintptr(r.fd), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("held descriptor %d: flags %#x, %v: want close-on-exec", r.fd, flags, err)
	}
	if r.fd != n-1 {
		t.Errorf("held descriptor %d, want %d (the top of the table asked for)", r.fd, n-1)
	}
	if got := childFDSize(t); got < n {
		t.Errorf("a child started while the room is held begins with %d descriptors, want at least %d", got, n)
	}
	fd := r.fd
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Fatalf("held descriptor %d after Close: %v, want EBADF", fd, err)
	}
	if got := childFDSize(t); got >= n {
		t.Errorf("a child started after Close begins with %d descriptors: the hold was not what it inherited", got)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Asked for more than the descriptor limit allows, Reserve holds the highest
// descriptor the limit allows and says it was capped.
func TestReserveCappedByLimit(t *testing.T) {
	lim := limit(t)
	r := Reserve(2*lim, nil)
	defer r.Close()
	res := r.Wait()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if !res.Capped || res.Size != lim {
		t.Fatalf("reserved %+v under a limit of %d: want capped at the limit", res, lim)
	}
}

func TestWant(t *testing.T) {
	if got := Want(100000); got != 100000+headroom {
		t.Errorf("Want(100000) = %d", got)
	}
	if got := Want(-1); got != headroom {
		t.Errorf("Want(-1) = %d", got)
	}
}
