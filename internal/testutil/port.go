package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
)

// StablePort returns a TCP port on 127.0.0.1, free when chosen, for a server a
// test starts again on the same address after its process ended. It lies below
// the kernel's ephemeral range: a port from "127.0.0.1:0" is ephemeral, and while
// no process listens on it, any outgoing connection on the machine may take it as
// its source port, and the restart fails with "address already in use".
func StablePort(t testing.TB) int {
	t.Helper()
	low := 32768 // Linux's default start of ip_local_port_range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var lo, hi int
		if n, _ := fmt.Sscan(string(b), &lo, &hi); n == 2 && lo > 12000 {
			low = lo
		}
	}
	const first = 10000
	for range 200 {
		port := first + rand.IntN(low-first)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatalf("no free port in 127.0.0.1:%d-%d after 200 tries", first, low-1)
	return 0
}

// StableListen is the -listen flag for StablePort's address.
func StableListen(t testing.TB) string {
	return fmt.Sprintf("-listen=127.0.0.1:%d", StablePort(t))
}
