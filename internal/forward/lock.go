package forward

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lock takes the exclusive flock on dir's LockFile, trying every poll until ctx
// ends. The lock goes with the returned file (closed: released; the process dies:
// released by the kernel). The file is opened close-on-exec, so a child started
// by an upgrade does not inherit it.
func lock(ctx context.Context, dir string, poll time.Duration) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
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
			return nil, fmt.Errorf("forward: lock %s: %w", LockFile, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
