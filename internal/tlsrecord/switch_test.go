package tlsrecord

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

type tlsCase struct {
	name       string
	mutual     bool
	noTickets  bool
	maxVersion uint16
}

// handshake runs crypto/tls's server handshake over a Transport on sc against a
// crypto/tls client on cc, and returns the client and the server's tls.Conn.
func handshake(t testing.TB, sc, cc net.Conn, tcase tlsCase) (*tls.Conn, *tls.Conn, *Transport) {
	t.Helper()
	ca := testutil.NewCA(t, "tlsrecord test CA")
	base := &tls.Config{
		Certificates:           []tls.Certificate{ca.ServerLeaf(t).TLS},
		SessionTicketsDisabled: tcase.noTickets,
	}
	ccfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MaxVersion: tcase.maxVersion}
	if !tcase.noTickets {
		// A client without a session cache is sent no ticket.
		ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	}
	if tcase.mutual {
		base.ClientAuth = tls.RequireAndVerifyClientCert
		base.ClientCAs = ca.Pool()
		ccfg.Certificates = []tls.Certificate{ca.Issue(t, testutil.CertOpts{CN: "agent-1", Client: true}).TLS}
	}
	sec := &Secrets{}
	tr := NewTransport(sc, sec)
	stc := tls.Server(tr, &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return Capture(base, sec), nil
	}})
	ctc := tls.Client(cc, ccfg)
	errc := make(chan error, 1)
	go func() { errc <- ctc.Handshake() }()
	sc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := stc.Handshake(); err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	sc.SetDeadline(time.Time{})
	if err := <-errc; err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	return ctc, stc, tr
}

// TestDifferentialAgainstCryptoTLS: a crypto/tls client (sent one session
// ticket, crypto/tls's number, unless tickets are off) exchanges random-sized
// data in both directions with this package's Conn carrying the session
// crypto/tls's server established, through KeyUpdates this end starts (which
// the client must answer): every byte arrives as sent both ways, so the
// sequence numbers at the switch (session tickets included) are exact.
func TestDifferentialAgainstCryptoTLS(t *testing.T) {
	for _, tcase := range []tlsCase{{name: "tickets"}, {name: "no-tickets", noTickets: true}, {name: "mutual", mutual: true}} {
		t.Run(tcase.name, func(t *testing.T) {
			sc, cc := tcpPair(t)
			ctc, stc, tr := handshake(t, sc, cc, tcase)
			st, err := Switch(stc, tr)
			if err != nil {
				t.Fatalf("switch: %v", err)
			}
			if want := uint64(1); tcase.noTickets && st.OutSeq != 0 || !tcase.noTickets && st.OutSeq != want {
				t.Fatalf("records written under the server's application key at the switch: %d (tickets disabled: %v)", st.OutSeq, tcase.noTickets)
			}
			if st.InSeq != 0 {
				t.Fatalf("records read under the client's application key at the switch: %d", st.InSeq)
			}
			rc, err := New(sc, st)
			st.Drop()
			if err != nil {
				t.Fatal(err)
			}
			exchange(t, rc, ctc, 256<<10)
			rc.Close()
			cc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := ctc.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("client read after close_notify: %v, want io.EOF", err)
			}
		})
	}
}

// exchange sends total random bytes each way between rc and the crypto/tls peer
// in random-sized writes and reads; rc starts KeyUpdates, half of them asking
// the peer to update too.
func exchange(t *testing.T, rc *Conn, peer net.Conn, total int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	up, down := make([]byte, total), make([]byte, total)
	for i := range up {
		up[i], down[i] = byte(rng.Uint32()), byte(rng.Uint32())
	}
	errc := make(chan error, 4)
	write := func(w io.Writer, data []byte, seed uint64, ku func(bool) error) {
		r := rand.New(rand.NewPCG(seed, 1))
		for off := 0; off < len(data); {
			n := min(len(data)-off, 1+r.IntN(50000))
			if _, err := w.Write(data[off : off+n]); err != nil {
				errc <- err
				return
			}
			off += n
			if ku != nil && r.IntN(3) == 0 {
				if err := ku(r.IntN(2) == 0); err != nil {
					errc <- err
					return
				}
			}
		}
		errc <- nil
	}
	read := func(rd io.Reader, want []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, 2))
		got := make([]byte, 0, len(want))
		for len(got) < len(want) {
			buf := make([]byte, min(1+r.IntN(30000), len(want)-len(got)))
			n, err := rd.Read(buf)
			if err != nil {
				errc <- err
				return
			}
			got = append(got, buf[:n]...)
		}
		if !bytes.Equal(got, want) {
			errc <- errors.New("bytes received differ from bytes sent")
			return
		}
		errc <- nil
	}
	peer.SetDeadline(time.Now().Add(30 * time.Second))
	rc.SetDeadline(time.Now().Add(30 * time.Second))
	go write(rc, down, 1, rc.KeyUpdate)
	go write(peer, up, 2, nil)
	go read(rc, up, 3)
	go read(peer, down, 4)
	for range 4 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// A last round trip: the peer has answered every update_requested before it
	// reads "x", and rc has read those answers before "y", so nothing is left
	// unread (closing with unread input would reset the connection).
	pingPong(t, rc, peer, "x")
	pingPong(t, peer, rc, "y")
	peer.SetDeadline(time.Time{})
	rc.SetDeadline(time.Time{})
}

// pingPong writes msg on w and reads it whole from r.
func pingPong(t *testing.T, w io.Writer, r io.Reader, msg string) {
	t.Helper()
	if _, err := w.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != msg {
		t.Fatalf("read %q %v, want %q", buf, err, msg)
	}
}

// TestSwitchRefusesTLS12: a TLS 1.2 session is not carried.
func TestSwitchRefusesTLS12(t *testing.T) {
	sc, cc := tcpPair(t)
	_, stc, tr := handshake(t, sc, cc, tlsCase{maxVersion: tls.VersionTLS12})
	if _, err := Switch(stc, tr); !errors.Is(err, ErrNotTLS13) {
		t.Fatalf("switch of a TLS 1.2 session: %v, want ErrNotTLS13", err)
	}
}

// TestSwitchExactWithClientDataWaiting: the client sends application data at
// once after its handshake, before the server switches; the Transport keeps
// crypto/tls from reading it, so the switch sees no application record read and
// Conn reads the data.
func TestSwitchExactWithClientDataWaiting(t *testing.T) {
	sc, cc := tcpPair(t)
	ctc, stc, tr := handshake(t, sc, cc, tlsCase{})
	if _, err := ctc.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	st, err := Switch(stc, tr)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := New(sc, st)
	buf := make([]byte, 16)
	sc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.ReadAtLeast(rc, buf, 5)
	if err != nil || string(buf[:n]) != "early" {
		t.Fatalf("read %q %v", buf[:n], err)
	}
}
