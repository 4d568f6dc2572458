package upgrade

import "golang.org/x/sys/unix"

// Clock reads CLOCK_MONOTONIC in nanoseconds (0 if it cannot): unlike time.Now's
// monotonic reading, which counts from its own process's start, it is one clock for
// every process on the machine, so a new process can measure its start from its
// parent's request.
func Clock() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}
