package metrics

import (
	"encoding/binary"
	"syscall"
)

// countEntries counts the entries of the directory dir but "." and "..", reading
// them with getdents64 into one buffer: os.ReadDir makes two objects per entry,
// which for /proc/self/fd at 15,000 connections is 30,000 objects (2.2 MB) on
// every scrape.
func countEntries(dir string) (int, error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	var buf [8 << 10]byte
	n := 0
	for {
		got, err := syscall.Getdents(fd, buf[:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if got <= 0 {
			return n, nil
		}
		n += countDirents(buf[:got])
	}
}

// countDirents counts the linux_dirent64 records in b (d_ino, d_off: 8 bytes each;
// d_reclen: 2; d_type: 1; then the NUL-terminated name), less "." and "..".
func countDirents(b []byte) int {
	n := 0
	for len(b) >= 20 {
		reclen := int(binary.NativeEndian.Uint16(b[16:]))
		if reclen < 20 || reclen > len(b) {
			break
		}
		name := b[19:reclen]
		if !(name[0] == '.' && (name[1] == 0 || name[1] == '.' && len(name) > 2 && name[2] == 0)) {
			n++
		}
		b = b[reclen:]
	}
	return n
}
