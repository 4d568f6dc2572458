package spool

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// allocateAhead allocates the blocks of [off, off+n) in f without changing its
// size. f must be a file with a SyscallConn (an *os.File).
func allocateAhead(f File, off, n int64) error {
	sc, ok := f.(syscall.Conn)
	if !ok {
		return errors.ErrUnsupported
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		ferr = unix.Fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, off, n)
	}); err != nil {
		return err
	}
	return ferr
}
