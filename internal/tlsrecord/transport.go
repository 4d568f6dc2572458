package tlsrecord

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
)

// Transport is the connection under crypto/tls during a handshake whose session
// this package carries on. It makes the switch exact by construction:
//
//   - A Read returns at most the rest of the record being read, so crypto/tls,
//     which processes whole records, holds no byte it has not processed once it
//     asks for no more. What a read of the socket brought beyond that record
//     waits in the Transport for the next Read, and at the switch goes to the
//     record layer (State.Input): the socket is read as crypto/tls alone would
//     read it, so a refused handshake does not leave input unread behind it.
//   - It counts, in each direction, the records that open under that side's
//     application traffic secret as Secrets captured it (session tickets, for
//     the server), so the sequence numbers are known, not guessed.
//
// crypto/tls reads only on the goroutine running the handshake and serialises
// its writes.
type Transport struct {
	net.Conn
	sec   *Secrets
	r, w  stream
	ahead []byte // read from the socket, not yet given to crypto/tls
	aoff  int
	pass  bool // the session stays in crypto/tls: no more following
}

// NewTransport returns nc as crypto/tls's transport for a connection whose
// KeyLogWriter is sec.
func NewTransport(nc net.Conn, sec *Secrets) *Transport {
	return &Transport{Conn: nc, sec: sec}
}

// Passthrough makes t pass reads and writes straight through from now on, for a
// session that stays in crypto/tls (TLS 1.2).
func (t *Transport) Passthrough() {
	t.pass = true
	t.r, t.w = stream{}, stream{}
}

// Read reads at most the rest of the current record.
func (t *Transport) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	if t.aoff < len(t.ahead) {
		n = copy(p, t.ahead[t.aoff:])
		if !t.pass {
			n = t.r.limit(p[:n])
		}
		t.aoff += n
		if t.aoff == len(t.ahead) {
			t.ahead, t.aoff = nil, 0
		}
	} else {
		n, err = t.Conn.Read(p)
		if !t.pass {
			if lim := t.r.limit(p[:n]); lim < n {
				t.ahead, t.aoff = append([]byte(nil), p[lim:n]...), 0
				n = lim
			}
		}
	}
	if !t.pass {
		client, _ := t.sec.traffic()
		t.r.follow(p[:n], client != nil)
	}
	return n, err
}

// Write writes p and follows the records it carries.
func (t *Transport) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	if !t.pass {
		_, server := t.sec.traffic()
		t.w.follow(p[:n], server != nil)
	}
	return n, err
}

// maxKept bounds what a direction keeps to count at Switch: the records of a
// handshake flight sent after the secrets were derived (Finished, client
// certificates, session tickets) are a few KiB.
const maxKept = 64 << 10

// stream follows the records of one direction.
type stream struct {
	hdr   [headerLen]byte
	hdrN  int
	rem   int      // bytes of the current record's body not yet seen
	rec   []byte   // the current record, kept while it may be under the application key
	kept  [][]byte // records that ended after the application secret was captured
	bytes int
	err   error
}

// limit returns how much of b, the next bytes of the stream, belongs to the
// record being read: never a byte of the record after it.
func (s *stream) limit(b []byte) int {
	if s.rem > 0 {
		return min(len(b), s.rem)
	}
	need := headerLen - s.hdrN
	if len(b) < need {
		return len(b)
	}
	var hdr [headerLen]byte
	copy(hdr[copy(hdr[:], s.hdr[:s.hdrN]):], b[:need])
	return min(len(b), need+(int(hdr[3])<<8|int(hdr[4])))
}

// follow takes the next bytes of the stream; keep tells whether the direction's
// application traffic secret is captured, so a record beginning now may be under it.
func (s *stream) follow(b []byte, keep bool) {
	for len(b) > 0 {
		if s.rem == 0 {
			k := copy(s.hdr[s.hdrN:], b)
			s.hdrN += k
			b = b[k:]
			if s.hdrN < headerLen {
				return
			}
			s.hdrN = 0
			s.rem = int(s.hdr[3])<<8 | int(s.hdr[4])
			s.rec = nil
			if s.hdr[0] == typeAppData && keep {
				s.rec = make([]byte, 0, headerLen+s.rem)
				s.rec = append(s.rec, s.hdr[:]...)
			}
		} else {
			k := min(len(b), s.rem)
			if s.rec != nil {
				s.rec = append(s.rec, b[:k]...)
			}
			s.rem -= k
			b = b[k:]
		}
		if s.rem == 0 && s.rec != nil {
			s.bytes += len(s.rec)
			if s.bytes > maxKept {
				s.err = errors.New("tlsrecord: more records after the secrets than a handshake sends")
			} else {
				s.kept = append(s.kept, s.rec)
			}
			s.rec = nil
		}
	}
}

// count returns how many of the records kept open under secret: the first that
// opens is the application key's first, and every later one must open too.
func (s *stream) count(st *suite, secret []byte) (uint64, error) {
	defer func() {
		for _, r := range s.kept {
			clear(r)
		}
		s.kept, s.bytes = nil, 0
	}()
	if s.err != nil {
		return 0, s.err
	}
	if s.hdrN != 0 || s.rem != 0 {
		return 0, errors.New("tlsrecord: the switch falls inside a record")
	}
	var h half
	if err := h.set(st, clone(secret), 0); err != nil {
		return 0, err
	}
	defer h.drop()
	for i, r := range s.kept {
		seq := h.seq
		if _, _, lerr := h.open(r); lerr != nil {
			if seq > 0 {
				return 0, fmt.Errorf("tlsrecord: record %d of %d after the application key's first does not open under it", i, len(s.kept))
			}
			h.seq = 0
		}
	}
	return h.seq, nil
}

// ErrNotTLS13 is Switch's answer for a session of an earlier TLS version.
var ErrNotTLS13 = errors.New("tlsrecord: not a TLS 1.3 session")

// Switch takes the session crypto/tls established over t, right after its
// handshake and before any Read or Write on tc, and returns its State: the
// captured secrets and, for each direction, the records sent under them. tc must
// not be used afterwards; t's Secrets are dropped.
func Switch(tc *tls.Conn, t *Transport) (State, error) {
	defer t.sec.Drop()
	cs := tc.ConnectionState()
	if !cs.HandshakeComplete {
		return State{}, errors.New("tlsrecord: handshake not complete")
	}
	if cs.Version != tls.VersionTLS13 {
		return State{}, ErrNotTLS13
	}
	s, err := suiteByID(cs.CipherSuite)
	if err != nil {
		return State{}, err
	}
	client, server := t.sec.traffic()
	if client == nil || server == nil {
		return State{}, errors.New("tlsrecord: the key log gave no application traffic secrets")
	}
	in, err := t.r.count(s, client)
	if err != nil {
		return State{}, err
	}
	if in != 0 {
		// crypto/tls read application data it would keep: the server's handshake
		// ends with the client's Finished, so this is not a handshake's end.
		return State{}, fmt.Errorf("tlsrecord: crypto/tls read %d application records", in)
	}
	out, err := t.w.count(s, server)
	if err != nil {
		return State{}, err
	}
	st := State{Suite: s.id, InSecret: clone(client), OutSecret: clone(server), InSeq: in, OutSeq: out}
	if t.aoff < len(t.ahead) {
		st.Input = t.ahead[t.aoff:]
	}
	t.ahead, t.aoff = nil, 0
	return st, nil
}
