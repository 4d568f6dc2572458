package main

import (
	"context"
	"net"
	"sync"
	"testing"
)

// holdListener accepts on 127.0.0.1 and keeps the accepted connections open
// until the test ends.
func holdListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln
}

// Many dials through spreadDialer, after churn has left TIME_WAIT sockets on the
// source address, all succeed, from the intended source addresses, with distinct
// 4-tuples while open.
func TestSpreadDialerManyDials(t *testing.T) {
	ln := holdListener(t)
	dst := ln.Addr().String()
	ctx := context.Background()

	// Churn: connections closed by the client leave TIME_WAIT sockets on 127.0.0.2.
	for k := range 1000 {
		nc, err := spreadDialer(0)(ctx, dst)
		if err != nil {
			t.Fatalf("churn dial %d: %v", k, err)
		}
		nc.Close()
	}

	const n = 2000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	tuples := make(map[string]int, n)
	for k := range n {
		i := k % 500 // clients 0-249 from 127.0.0.2, 250-499 from 127.0.0.3
		nc, err := spreadDialer(i)(ctx, dst)
		if err != nil {
			t.Fatalf("dial %d (client %d): %v", k, i, err)
		}
		conns = append(conns, nc)
		la, ra := nc.LocalAddr().(*net.TCPAddr), nc.RemoteAddr().(*net.TCPAddr)
		want := "127.0.0.2"
		if i >= 250 {
			want = "127.0.0.3"
		}
		if la.IP.String() != want || la.Port == 0 {
			t.Fatalf("dial %d (client %d): local address %v, want %s:<port>", k, i, la, want)
		}
		tuple := la.String() + "->" + ra.String()
		if prev, dup := tuples[tuple]; dup {
			t.Fatalf("dials %d and %d share the 4-tuple %s", prev, k, tuple)
		}
		tuples[tuple] = k
	}
}
