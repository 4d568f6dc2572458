package fdtable

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// grow makes the table hold n descriptors by duplicating an eventfd to the
// lowest free number at or above n-1 (F_DUPFD_CLOEXEC: no existing descriptor
// is touched), and keeps that duplicate: it is the held descriptor. Past the
// descriptor limit it holds the highest the limit allows; the limit is read only
// then (a sandbox may refuse prlimit64, and the usual case does not need it).
func grow(n int) (int, Result) {
	var res Result
	if n < 1 {
		res.Err = fmt.Errorf("fdtable: %d descriptors asked", n)
		return -1, res
	}
	src, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		res.Err = fmt.Errorf("fdtable: eventfd: %w", err)
		return -1, res
	}
	defer unix.Close(src)
	fd, err := unix.FcntlInt(uintptr(src), unix.F_DUPFD_CLOEXEC, n-1)
	if err == unix.EINVAL { // n-1 is at or past the descriptor limit
		var lim unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			res.Err = fmt.Errorf("fdtable: %d descriptors are past the descriptor limit, which cannot be read: %w", n, err)
			return -1, res
		}
		n, res.Capped = int(min(lim.Cur, uint64(n))), true
		fd, err = unix.FcntlInt(uintptr(src), unix.F_DUPFD_CLOEXEC, n-1)
	}
	if err != nil {
		res.Err = fmt.Errorf("fdtable: hold descriptor %d: %w", n-1, err)
		return -1, res
	}
	res.Size = fd + 1
	return fd, res
}

func closeFD(fd int) error { return unix.Close(fd) }
