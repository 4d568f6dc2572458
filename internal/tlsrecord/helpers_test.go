package tlsrecord

import (
	"crypto/rand"
	"crypto/tls"
	"net"
	"testing"
)

// tcpPair returns both ends of a loopback TCP connection, closed at the test's end.
func tcpPair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// states returns a session's state as the server holds it and as the peer
// does (the same secrets, crossed), with fresh random secrets.
func states(t testing.TB, id uint16) (server, peer State) {
	t.Helper()
	s, err := suiteByID(id)
	if err != nil {
		t.Fatal(err)
	}
	cs, ss := make([]byte, s.hash().Size()), make([]byte, s.hash().Size())
	rand.Read(cs)
	rand.Read(ss)
	return State{Suite: id, InSecret: cs, OutSecret: ss}, State{Suite: id, InSecret: ss, OutSecret: cs}
}

var allSuites = []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}

// connPair returns two record layers carrying one session under suite id over
// a loopback TCP connection, with fresh random secrets.
func connPair(t testing.TB, id uint16) (a, b *Conn) {
	t.Helper()
	na, nb := tcpPair(t)
	sa, sb := states(t, id)
	a, err := New(na, sa)
	if err != nil {
		t.Fatal(err)
	}
	b, err = New(nb, sb)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}
