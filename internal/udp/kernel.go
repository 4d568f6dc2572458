package udp

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// SetReceiveBuffer sets SO_RCVBUF (n > 0) and returns what the kernel granted: it
// doubles the request for its own bookkeeping and caps it at net.core.rmem_max.
func SetReceiveBuffer(c *net.UDPConn, n int) (int, error) {
	if n > 0 {
		if err := c.SetReadBuffer(n); err != nil {
			return 0, err
		}
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var got int
	var serr error
	if err := rc.Control(func(fd uintptr) { got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) }); err != nil {
		return 0, err
	}
	return got, serr
}

// Inode is the socket's inode number, its key in /proc/net/udp.
func Inode(c *net.UDPConn) (uint64, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var st syscall.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil {
		return 0, err
	}
	return st.Ino, serr
}

// KernelDrops reads the drop counter of the socket with this inode from
// /proc/net/udp and /proc/net/udp6 (the last column): datagrams the kernel accepted
// for the socket and dropped, mostly because its receive buffer was full. The
// counter belongs to the socket, so a process that inherited it sees the drops of
// every process that held it.
func KernelDrops(inode uint64) (uint64, error) {
	want := strconv.FormatUint(inode, 10)
	return dropsWhere(func(f []string) bool { return f[9] == want }, fmt.Sprintf("socket inode %d", inode))
}

// KernelDropsOfPort is KernelDrops of the socket bound to this local port, for a
// process that does not hold the socket (tests, benchmarks).
func KernelDropsOfPort(port int) (uint64, error) {
	suffix := fmt.Sprintf(":%04X", port)
	return dropsWhere(func(f []string) bool { return strings.HasSuffix(f[1], suffix) }, fmt.Sprintf("port %d", port))
}

// dropsWhere is the drop counter of the first socket whose fields match.
func dropsWhere(match func(fields []string) bool, what string) (uint64, error) {
	for _, path := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		n, found, err := dropsIn(path, match)
		if err != nil && !os.IsNotExist(err) {
			return 0, err
		}
		if found {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s not in /proc/net/udp", what)
}

func dropsIn(path string, match func([]string) bool) (uint64, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
		if len(fields) < 13 || fields[0] == "sl" || !match(fields) {
			continue
		}
		n, err := strconv.ParseUint(fields[len(fields)-1], 10, 64)
		return n, err == nil, err
	}
	return 0, false, sc.Err()
}
