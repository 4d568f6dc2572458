package tlsrecord

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// TestPairEveryKeyUpdate: two record layers exchange data in both directions
// under every suite, through KeyUpdates either end starts, with and without
// update_requested; each side reads exactly the bytes the other wrote.
func TestPairEveryKeyUpdate(t *testing.T) {
	for _, id := range allSuites {
		t.Run(tlsSuiteName(id), func(t *testing.T) {
			ca, cb := connPair(t, id)
			rng := rand.New(rand.NewPCG(1, uint64(id)))
			const total = 300 << 10
			data := make([]byte, total)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			errc := make(chan error, 4)
			send := func(c *Conn, seed uint64) {
				r := rand.New(rand.NewPCG(seed, 2))
				for off := 0; off < total; {
					n := min(total-off, 1+r.IntN(40000))
					if _, err := c.Write(data[off : off+n]); err != nil {
						errc <- err
						return
					}
					off += n
					if r.IntN(4) == 0 {
						if err := c.KeyUpdate(r.IntN(2) == 0); err != nil {
							errc <- err
							return
						}
					}
				}
				errc <- nil
			}
			recv := func(c *Conn, seed uint64) {
				r := rand.New(rand.NewPCG(seed, 3))
				got := make([]byte, 0, total)
				for len(got) < total {
					buf := make([]byte, 1+r.IntN(20000))
					n, err := c.Read(buf)
					if err != nil {
						errc <- err
						return
					}
					got = append(got, buf[:n]...)
				}
				if !bytes.Equal(got, data) {
					errc <- errors.New("received bytes differ from those sent")
					return
				}
				errc <- nil
			}
			go send(ca, 10)
			go send(cb, 11)
			go recv(ca, 12)
			go recv(cb, 13)
			for range 4 {
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
			}
			// close_notify ends the peer's reads with io.EOF.
			ca.Close()
			if _, err := cb.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("read after close_notify: %v, want io.EOF", err)
			}
		})
	}
}

// TestStateMovesMidSession: a session's State taken between records carries on
// in a new Conn on the same connection, including input already read.
func TestStateMovesMidSession(t *testing.T) {
	a, b := tcpPair(t)
	sa, sb := states(t, allSuites[0])
	ca, _ := New(a, sa)
	cb, _ := New(b, sb)
	for i := range 3 {
		if _, err := cb.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if err := cb.KeyUpdate(true); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 8)
	if n, err := ca.Read(buf); err != nil || n != 1 || buf[0] != 0 {
		t.Fatalf("first read: %d %v", n, err)
	}
	st, err := ca.State()
	if err != nil {
		t.Fatal(err)
	}
	moved, err := New(a, st)
	st.Drop()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		a.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := moved.Read(buf); err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("read %d after the move: %d %v", i, n, err)
		}
	}
	// The moved end answered each update_requested: the peer reads it fine.
	go moved.Write([]byte("after"))
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.ReadFull(cb, buf[:5])
	if err != nil || string(buf[:n]) != "after" {
		t.Fatalf("peer read %q %v", buf[:n], err)
	}
}

func tlsSuiteName(id uint16) string {
	switch id {
	case allSuites[0]:
		return "AES128GCM"
	case allSuites[1]:
		return "AES256GCM"
	}
	return "CHACHA20"
}

// TestReadGivesBufferBackOnceDrained: the read that returns the last byte
// received gives the read buffer back, so a session that then idles holds
// none; one that holds more input keeps it.
func TestReadGivesBufferBackOnceDrained(t *testing.T) {
	ca, cb := connPair(t, allSuites[0])
	if _, err := ca.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if n, err := cb.Read(buf); err != nil || n != 2 {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if cb.rbuf == nil {
		t.Fatal("the buffer went back with opened data still unread")
	}
	if n, err := cb.Read(buf); err != nil || n != 2 || string(buf) != "ng" {
		t.Fatalf("Read = %d %q, %v", n, buf[:n], err)
	}
	if cb.rbuf != nil || cb.Ready() {
		t.Fatalf("drained session holds a read buffer (%v) or says Ready (%v)", cb.rbuf != nil, cb.Ready())
	}
}
