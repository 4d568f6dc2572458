//go:build linux

package main

import "syscall"

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from <linux/in.h> (Linux 4.2+);
// the syscall package does not define it.
const ipBindAddressNoPort = 24

// bindNoPort is spreadDialer's net.Dialer.Control: it runs after socket() and
// before bind(), and sets IP_BIND_ADDRESS_NO_PORT so bind(127.0.0.x:0) only
// records the source address and connect() picks the port for the full 4-tuple.
// Without it, bind() must find a port free for every destination, which with
// thousands of TIME_WAIT sockets per source address takes tens of milliseconds
// per connection. Best effort: on a kernel without the option the dial still
// works, just with the slow bind.
func bindNoPort(network, address string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
}
