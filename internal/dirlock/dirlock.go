// Package dirlock waits for an exclusive flock on a file, so that one process at a time owns what a directory holds.
package dirlock

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Wait takes the exclusive flock on path (created if absent), trying every poll
// until ctx ends. The lock goes with the returned file (closed: released; the
// process dies: released by the kernel). The file is opened close-on-exec, so a
// child started by an upgrade does not inherit it: the child waits for its parent
// to let go, which is how a directory's owner is handed over at an upgrade.
func Wait(ctx context.Context, path string, poll time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
