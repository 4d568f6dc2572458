package spool

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// dropPageCache writes back the file's dirty pages, waiting for them, and drops its
// pages from the page cache. The write-back comes first because the kernel drops
// only clean pages; sync_file_range writes the data without the journal commit an
// fdatasync would add, which "spool.fsync: never" does not promise anyway.
func dropPageCache(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	const wait = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	if err := unix.SyncFileRange(fd, 0, 0, wait); err != nil {
		return fmt.Errorf("spool: write back %s: %w", name, err)
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("spool: drop %s from the page cache: %w", name, err)
	}
	return nil
}
