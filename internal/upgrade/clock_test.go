package upgrade

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Clock moves forward with the process's own monotonic clock, and another process
// reads the same clock: a child's reading falls between two of its parent's.
func TestClockIsSharedBetweenProcesses(t *testing.T) {
	if os.Getenv("HAWK_TEST_PRINT_CLOCK") == "1" {
		os.Stdout.WriteString(strconv.FormatInt(Clock(), 10))
		os.Exit(0)
	}
	t0 := time.Now()
	a := Clock()
	time.Sleep(time.Millisecond)
	if b, elapsed := Clock(), time.Since(t0); b-a < int64(time.Millisecond) || b-a > int64(elapsed) {
		t.Fatalf("Clock advanced %d ns over %v", b-a, elapsed)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestClockIsSharedBetweenProcesses$")
	cmd.Env = append(os.Environ(), "HAWK_TEST_PRINT_CLOCK=1")
	before := Clock()
	out, err := cmd.Output()
	after := Clock()
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.ParseInt(string(out), 10, 64)
	if err != nil || child < before || child > after {
		t.Fatalf("child read %q (%v), want between %d and %d", out, err, before, after)
	}
}
