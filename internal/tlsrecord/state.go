package tlsrecord

import "errors"

// State is everything a session's records need to go on elsewhere. Its secrets
// must travel only where the session goes.
type State struct {
	Suite     uint16 // the TLS 1.3 cipher suite (tls.TLS_AES_128_GCM_SHA256, ...)
	InSecret  []byte // the peer's current application traffic secret
	OutSecret []byte // this end's
	InSeq     uint64 // the sequence number of the next record read
	OutSeq    uint64 // and written
	Input     []byte // records (whole or begun) read and not opened yet
}

// Drop clears st's secrets.
func (st *State) Drop() {
	clear(st.InSecret)
	clear(st.OutSecret)
	st.InSecret, st.OutSecret = nil, nil
}

// ErrNotQuiet is State's answer while the session holds what cannot move: opened
// data not yet read, or a KeyUpdate begun.
var ErrNotQuiet = errors.New("tlsrecord: the session holds opened data or half a KeyUpdate")

// State returns the session's state, for New in another process. The caller
// stops reading and writing first; the session must not be used afterwards.
func (c *Conn) State() (State, error) {
	if len(c.plain) > 0 || c.hsLen > 0 {
		return State{}, ErrNotQuiet
	}
	if c.rerr != nil {
		return State{}, c.rerr
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return State{}, c.werr
	}
	st := State{
		Suite:     c.in.s.id,
		InSecret:  clone(c.in.secret),
		OutSecret: clone(c.out.secret),
		InSeq:     c.in.seq,
		OutSeq:    c.out.seq,
	}
	if c.rbuf != nil && c.roff < c.rlen {
		st.Input = clone((*c.rbuf)[c.roff:c.rlen])
	}
	return st, nil
}

// Quiet reports whether the session can move now (State would not refuse):
// nothing opened is waiting to be read and no KeyUpdate is half received.
func (c *Conn) Quiet() bool { return len(c.plain) == 0 && c.hsLen == 0 }

// errDetached is what a session that moved to another process answers.
var errDetached = errors.New("tlsrecord: the session moved to another process")

// Detach, on the reader once the session's State went to another process, makes
// this Conn write nothing more (Close then only closes the socket: a
// close_notify would end the moved session) and forgets its secrets.
func (c *Conn) Detach() {
	c.wmu.Lock()
	c.werr = errDetached
	c.out.drop()
	c.wmu.Unlock()
	c.rerr = errDetached
	c.in.drop()
	c.releaseInput()
}
