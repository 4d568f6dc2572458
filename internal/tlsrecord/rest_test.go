package tlsrecord

import (
	"bytes"
	"io"
	"testing"
)

// TestRestForgetsAEADs: a resting session holds no AEAD, still opens and seals
// the next records (through KeyUpdates either way), and rests again after a
// write until a record comes in; then writes keep their AEAD.
func TestRestForgetsAEADs(t *testing.T) {
	for _, id := range allSuites {
		t.Run(tlsSuiteName(id), func(t *testing.T) {
			agent, srv := connPair(t, id)
			buf := make([]byte, 16)
			// A heartbeat: the server's reader opens the PING and, resting, waits
			// again while the PONG is written.
			exchange := func(i int, rest bool) {
				t.Helper()
				if _, err := agent.Write([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				if n, err := srv.Read(buf); err != nil || string(buf[:n]) != "ping" {
					t.Fatalf("heartbeat %d: server read %q, %v", i, buf[:n], err)
				}
				if rest {
					srv.Rest()
				}
				if _, err := srv.Write([]byte("pong")); err != nil {
					t.Fatal(err)
				}
				if n, err := agent.Read(buf); err != nil || string(buf[:n]) != "pong" {
					t.Fatalf("heartbeat %d: agent read %q, %v", i, buf[:n], err)
				}
			}
			for i := range 6 {
				switch i {
				case 2:
					if err := agent.KeyUpdate(true); err != nil { // the server answers as it reads
						t.Fatal(err)
					}
				case 4:
					if err := srv.KeyUpdate(false); err != nil {
						t.Fatal(err)
					}
				}
				exchange(i, true)
				if srv.in.aead != nil || srv.out.aead != nil {
					t.Fatalf("heartbeat %d: a resting session holds an AEAD", i)
				}
				// A record coming in ends the rest: writes keep the AEAD.
				exchange(i, false)
				if srv.out.aead == nil || srv.in.aead == nil {
					t.Fatalf("heartbeat %d: a busy session forgot its AEADs", i)
				}
			}
		})
	}
}

// TestRestDuringWrites: Rest on the reader while another goroutine writes (the
// flusher under load) changes nothing either end sees.
func TestRestDuringWrites(t *testing.T) {
	agent, srv := connPair(t, allSuites[0])
	const total = 4000 * 1000
	data := bytes.Repeat([]byte("0123456789"), total/10)
	done := make(chan error, 1)
	go func() {
		for off := 0; off < total; off += 1000 {
			if _, err := srv.Write(data[off : off+1000]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	got := make([]byte, 0, total)
	buf := make([]byte, 3000)
	for len(got) < total {
		srv.Rest() // the reader, resting between reads of nothing
		n, err := agent.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
		if len(got)%7 == 0 {
			if _, err := agent.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(srv, buf[:1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the agent read other bytes than the server wrote")
	}
}
