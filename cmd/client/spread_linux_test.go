//go:build linux

package main

import (
	"context"
	"net"
	"syscall"
	"testing"
)

// The socket spreadDialer connects with must carry IP_BIND_ADDRESS_NO_PORT (set
// before bind), or bind(127.0.0.x:0) searches for a free port and stalls behind
// thousands of TIME_WAIT sockets.
func TestSpreadDialerBindAddressNoPort(t *testing.T) {
	ln := holdListener(t)
	for _, i := range []int{0, 250, 250 * 199} {
		nc, err := spreadDialer(i)(context.Background(), ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		rc, err := nc.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var serr error
		if err := rc.Control(func(fd uintptr) {
			v, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort)
		}); err != nil {
			t.Fatal(err)
		}
		nc.Close()
		if serr != nil {
			t.Fatalf("getsockopt(IP_BIND_ADDRESS_NO_PORT): %v", serr)
		}
		if v != 1 {
			t.Errorf("client %d: IP_BIND_ADDRESS_NO_PORT = %d, want 1", i, v)
		}
	}
}
