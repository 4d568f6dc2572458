package tlsrecord

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// chunkConn is a connection whose reads return in, stopping at each cut, and
// whose writes are kept.
type chunkConn struct {
	net.Conn // nil: only the methods below are used
	in       []byte
	off      int
	cuts     []int // ascending offsets in in where a read stops
	out      bytes.Buffer
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if c.off == len(c.in) {
		return 0, io.EOF
	}
	end := len(c.in)
	for _, cut := range c.cuts {
		if cut > c.off {
			end = min(end, cut)
			break
		}
	}
	n := copy(p, c.in[c.off:end])
	c.off += n
	return n, nil
}

func (c *chunkConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *chunkConn) Close() error                     { return nil }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }

// fixedStates is a session with fixed secrets, for the decoder's tests.
func fixedStates() (server, peer State) {
	cs, ss := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	return State{Suite: tls.TLS_AES_128_GCM_SHA256, InSecret: cs, OutSecret: ss},
		State{Suite: tls.TLS_AES_128_GCM_SHA256, InSecret: ss, OutSecret: cs}
}

// sealer writes records as the peer would, keeping its write key in step.
type sealer struct {
	h   half
	buf []byte
}

func newSealer(t testing.TB, peer State) *sealer {
	s := &sealer{}
	st, _ := suiteByID(peer.Suite)
	if err := s.h.set(st, clone(peer.OutSecret), 0); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *sealer) record(typ byte, content []byte) *sealer {
	s.buf, _ = s.h.seal(s.buf, typ, content)
	return s
}

func (s *sealer) keyUpdate(req byte) *sealer {
	s.record(typeHandshake, []byte{24, 0, 0, 1, req})
	s.h.update()
	return s
}

// readAll reads c to its end and returns the data and the error that ended it.
func readAll(c *Conn) ([]byte, error) {
	var got []byte
	buf := make([]byte, 7000)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

// TestEverySplitPoint: a stream of records (data of several sizes, a KeyUpdate
// in two records, KeyUpdates with and without update_requested, an empty
// record, padding, close_notify) read in two parts split at every offset gives
// the same bytes and ends with io.EOF.
func TestEverySplitPoint(t *testing.T) {
	server, peer := fixedStates()
	s := newSealer(t, peer)
	want := []byte{}
	for _, n := range []int{1, 0, 100, maxPlaintext} {
		d := bytes.Repeat([]byte{byte(n)}, n)
		s.record(typeAppData, d)
		want = append(want, d...)
	}
	s.record(typeHandshake, []byte{24, 0})
	s.record(typeHandshake, []byte{0, 1, 1})
	s.h.update()
	s.record(0, []byte{'x', 'y', 'z', typeAppData, 0, 0, 0}) // padded
	want = append(want, "xyz"...)
	s.keyUpdate(0)
	s.record(typeAppData, []byte("end"))
	want = append(want, "end"...)
	s.record(typeAlert, []byte{1, 0})
	stream := s.buf
	for cut := 0; cut <= len(stream); cut++ {
		cc := &chunkConn{in: stream, cuts: []int{cut}}
		c, err := New(cc, server)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(c)
		if err != io.EOF || !bytes.Equal(got, want) {
			t.Fatalf("split at %d: %d bytes (want %d), %v", cut, len(got), len(want), err)
		}
	}
}

// TestRefusals: each malformed input ends the session with the alert RFC 8446
// names for it, sent to the peer, which reads it as that alert.
func TestRefusals(t *testing.T) {
	server, peer := fixedStates()
	valid := newSealer(t, peer).record(typeAppData, []byte("ok")).buf
	flip := func(b []byte, i int) []byte { b = clone(b); b[i] ^= 1; return b }
	cases := []struct {
		name string
		in   []byte
		want Alert
	}{
		{"bad tag", flip(valid, len(valid)-1), AlertBadRecordMAC},
		{"bad header as additional data", flip(valid, 4), AlertBadRecordMAC},
		{"outer type", append([]byte{typeHandshake}, valid[1:]...), AlertUnexpectedMessage},
		{"version", append([]byte{typeAppData, 3, 1}, valid[3:]...), AlertProtocolVersion},
		{"oversize length", []byte{typeAppData, 3, 3, byte((maxCiphertext + 1) >> 8), byte((maxCiphertext + 1) & 0xff)}, AlertRecordOverflow},
		{"oversize plaintext", newSealer(t, peer).record(typeAppData, make([]byte, maxPlaintext+1)).buf, AlertRecordOverflow},
		{"no inner type", newSealer(t, peer).record(0, nil).buf, AlertUnexpectedMessage},
		{"unknown inner type", newSealer(t, peer).record(99, []byte("x")).buf, AlertUnexpectedMessage},
		{"empty handshake", newSealer(t, peer).record(typeHandshake, nil).buf, AlertUnexpectedMessage},
		{"handshake message", newSealer(t, peer).record(typeHandshake, []byte{4, 0, 0, 1, 0}).buf, AlertUnexpectedMessage},
		{"KeyUpdate length", newSealer(t, peer).record(typeHandshake, []byte{24, 0, 0, 2, 0, 0}).buf, AlertDecodeError},
		{"KeyUpdate value", newSealer(t, peer).record(typeHandshake, []byte{24, 0, 0, 1, 2}).buf, AlertIllegalParameter},
		{"after KeyUpdate in its record", newSealer(t, peer).record(typeHandshake, []byte{24, 0, 0, 1, 0, 24}).buf, AlertUnexpectedMessage},
		{"data inside KeyUpdate", newSealer(t, peer).record(typeHandshake, []byte{24, 0}).record(typeAppData, []byte("x")).buf, AlertUnexpectedMessage},
		{"alert length", newSealer(t, peer).record(typeAlert, []byte{2, 10, 0}).buf, AlertUnexpectedMessage},
		{"ChangeCipherSpec", []byte{20, 3, 3, 0, 1, 1}, AlertUnexpectedMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cc := &chunkConn{in: tc.in}
			c, _ := New(cc, server)
			_, err := readAll(c)
			var lerr *LocalError
			if !errors.As(err, &lerr) || lerr.Alert != tc.want {
				t.Fatalf("error %v, want a local %s", err, tc.want)
			}
			if n, err := c.Write([]byte("x")); n != 0 || err == nil {
				t.Fatalf("write after a fatal alert: %d %v", n, err)
			}
			p, _ := New(&chunkConn{in: cc.out.Bytes()}, peer)
			_, err = readAll(p)
			var rerr *RemoteError
			if !errors.As(err, &rerr) || rerr.Alert != tc.want {
				t.Fatalf("the peer read %v, want alert %s", err, tc.want)
			}
		})
	}
}

// TestPeerAlerts: close_notify is io.EOF, any other alert a RemoteError; a
// stream cut inside a record is io.ErrUnexpectedEOF, between records io.EOF.
func TestPeerAlerts(t *testing.T) {
	server, peer := fixedStates()
	for _, tc := range []struct {
		in   []byte
		want error
	}{
		{newSealer(t, peer).record(typeAlert, []byte{1, 0}).buf, io.EOF},
		{newSealer(t, peer).record(typeAlert, []byte{2, 40}).buf, &RemoteError{Alert: 40}},
		{newSealer(t, peer).record(typeAppData, []byte("x")).buf[:10], io.ErrUnexpectedEOF},
		{newSealer(t, peer).record(typeAppData, []byte("x")).buf, io.EOF},
	} {
		c, _ := New(&chunkConn{in: tc.in}, server)
		_, err := readAll(c)
		if err.Error() != tc.want.Error() {
			t.Fatalf("got %v, want %v", err, tc.want)
		}
	}
}

// FuzzRead: whatever the input and however it is split, Read ends with io.EOF,
// io.ErrUnexpectedEOF, a peer's alert, or a local error whose alert the peer
// reads; it never panics and never returns data past a refusal.
func FuzzRead(f *testing.F) {
	server, peer := fixedStates()
	f.Add(newSealer(f, peer).record(typeAppData, []byte("hello")).keyUpdate(1).record(typeAppData, []byte("x")).record(typeAlert, []byte{1, 0}).buf, []byte{3, 9})
	f.Add(newSealer(f, peer).record(typeHandshake, []byte{24, 0}).record(typeHandshake, []byte{0, 1, 0}).buf, []byte{1})
	f.Add(newSealer(f, peer).record(typeAppData, make([]byte, 300)).buf, []byte{0, 5, 6, 200})
	f.Add([]byte{typeAppData, 3, 3, 0x41, 0x01}, []byte{2})
	f.Add([]byte{typeAppData, 3}, []byte{})
	f.Fuzz(func(t *testing.T, in, cuts []byte) {
		var cs []int
		for i, b := range cuts {
			cs = append(cs, i*256+int(b))
		}
		cc := &chunkConn{in: in, cuts: cs}
		c, err := New(cc, server)
		if err != nil {
			t.Fatal(err)
		}
		_, err = readAll(c)
		var lerr *LocalError
		var rerr *RemoteError
		switch {
		case err == io.EOF, err == io.ErrUnexpectedEOF, errors.As(err, &rerr):
		case errors.As(err, &lerr):
			p, _ := New(&chunkConn{in: cc.out.Bytes()}, peer)
			_, perr := readAll(p)
			if !errors.As(perr, &rerr) || rerr.Alert != lerr.Alert {
				t.Fatalf("local %v; the peer read %v", err, perr)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
		if n, _ := c.Read(make([]byte, 10)); n != 0 {
			t.Fatal("data after the end")
		}
	})
}
