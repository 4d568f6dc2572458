package tlsrecord

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// rekeyAfter is how many records the write side seals under one key before it
// updates its key by itself: below AES-GCM's 2^24.5 full records (RFC 8446 5.5).
const rekeyAfter = 1 << 24

// closeNotifyTimeout bounds the close_notify Close sends to a peer that reads nothing.
const closeNotifyTimeout = time.Second

// Conn is a TLS 1.3 session carried by this package over its TCP connection. One
// goroutine reads; any goroutines write (writes are serialised).
type Conn struct {
	nc net.Conn

	// The read side: only the reader touches it.
	in    half
	rbuf  *[]byte // raw input, pooled; nil while none is held (an idle session holds none)
	roff  int     // start of the input not yet opened
	rlen  int     // end of the input read
	plain []byte  // application data opened and not yet returned (aliases rbuf)
	hs    [5]byte // a KeyUpdate begun in one record and not ended
	hsLen int
	rerr  error
	first [64]byte // what a read waits with while no input is held

	resting atomic.Bool // Rest was called and no record came in since (rest.go)

	wmu  sync.Mutex
	out  half
	werr error
}

// New carries on the session st describes over nc. nc must carry nothing but the
// session's records from st's sequence numbers on, the first of them st.Input.
func New(nc net.Conn, st State) (*Conn, error) {
	s, err := suiteByID(st.Suite)
	if err != nil {
		return nil, err
	}
	c := &Conn{nc: nc}
	if err := c.in.set(s, clone(st.InSecret), st.InSeq); err != nil {
		return nil, err
	}
	if err := c.out.set(s, clone(st.OutSecret), st.OutSeq); err != nil {
		return nil, err
	}
	if len(st.Input) > 0 {
		if len(st.Input) > rbufSize {
			return nil, errors.New("tlsrecord: more input than one read buffer holds")
		}
		c.rbuf = getReadBuf()
		c.rlen = copy(*c.rbuf, st.Input)
	}
	return c, nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// Read returns application data the peer sent. It answers a KeyUpdate that asks
// for one, returns io.EOF after close_notify, and after anything the record layer
// refuses sends a fatal alert, closes the connection and returns a *LocalError.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.plain) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if err := c.readRecord(); err != nil {
			if isTimeout(err) {
				// A deadline (a handoff's wake-up among them) leaves the
				// session as it was: what was read stays for the next Read.
				return 0, err
			}
			c.rerr = err
			c.in.drop()
			c.releaseInput()
		}
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	if len(c.plain) == 0 && c.roff == c.rlen {
		// Nothing opened or received is left: the read buffer goes back at once,
		// not at the next Read, which for an idle session may be hours away.
		c.releaseInput()
	}
	return n, nil
}

// Ready reports whether Read can return without reading the connection: it
// holds opened data, or a whole record.
func (c *Conn) Ready() bool {
	if len(c.plain) > 0 || c.rerr != nil {
		return true
	}
	if c.rbuf == nil {
		return false
	}
	n, lerr := recordLen((*c.rbuf)[c.roff:c.rlen])
	return lerr != nil || n > 0 && c.rlen-c.roff >= n
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readRecord reads and opens the next record.
func (c *Conn) readRecord() error {
	for {
		buf := []byte(nil)
		if c.rbuf != nil {
			buf = (*c.rbuf)[c.roff:c.rlen]
		}
		n, lerr := recordLen(buf)
		if lerr != nil {
			return c.fatal(lerr)
		}
		if n > 0 && len(buf) >= n {
			c.roff += n
			return c.handle(buf[:n])
		}
		if err := c.fill(); err != nil {
			return err
		}
	}
}

// fill reads the connection once. Holding no input it gives its read buffer back
// and waits with first, so an idle session holds no buffer.
func (c *Conn) fill() error {
	if c.roff == c.rlen {
		c.releaseInput()
		n, err := c.nc.Read(c.first[:])
		if n > 0 {
			c.rbuf = getReadBuf()
			c.rlen = copy(*c.rbuf, c.first[:n])
			return nil
		}
		return readErr(err, false)
	}
	if c.roff > 0 {
		c.rlen = copy(*c.rbuf, (*c.rbuf)[c.roff:c.rlen])
		c.roff = 0
	}
	n, err := c.nc.Read((*c.rbuf)[c.rlen:])
	c.rlen += n
	if n > 0 {
		return nil
	}
	return readErr(err, true)
}

func readErr(err error, partial bool) error {
	if err == nil {
		return io.ErrNoProgress
	}
	if errors.Is(err, io.EOF) && partial {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (c *Conn) releaseInput() {
	if c.rbuf != nil {
		putReadBuf(c.rbuf)
		c.rbuf, c.roff, c.rlen, c.plain = nil, 0, 0, nil
	}
}

// handle opens rec and acts on what it carries.
func (c *Conn) handle(rec []byte) error {
	c.wake()
	typ, content, lerr := c.in.open(rec)
	if lerr != nil {
		return c.fatal(lerr)
	}
	if c.hsLen > 0 && typ != typeHandshake {
		return c.fatal(fail(AlertUnexpectedMessage, "record of type %d inside a handshake message", typ))
	}
	switch typ {
	case typeAppData:
		c.plain = content
		return nil
	case typeAlert:
		if len(content) != 2 {
			return c.fatal(fail(AlertUnexpectedMessage, "alert record of %d bytes", len(content)))
		}
		if Alert(content[1]) == AlertCloseNotify {
			return io.EOF
		}
		c.nc.Close()
		return &RemoteError{Alert: Alert(content[1])}
	case typeHandshake:
		return c.handshakeData(content)
	}
	return c.fatal(fail(AlertUnexpectedMessage, "record of inner type %d", typ))
}

// handshakeData takes a handshake record's content: a KeyUpdate, whole or in
// parts, is all a client may send once the handshake is over, and it ends its record.
func (c *Conn) handshakeData(content []byte) error {
	if len(content) == 0 {
		return c.fatal(fail(AlertUnexpectedMessage, "empty handshake record"))
	}
	k := copy(c.hs[c.hsLen:], content)
	c.hsLen += k
	rest := content[k:]
	const typeKeyUpdate = 24
	if c.hs[0] != typeKeyUpdate {
		return c.fatal(fail(AlertUnexpectedMessage, "handshake message of type %d after the handshake", c.hs[0]))
	}
	if c.hsLen >= 4 && (c.hs[1] != 0 || c.hs[2] != 0 || c.hs[3] != 1) {
		return c.fatal(fail(AlertDecodeError, "KeyUpdate of length %d", int(c.hs[1])<<16|int(c.hs[2])<<8|int(c.hs[3])))
	}
	if c.hsLen < len(c.hs) {
		return nil
	}
	if len(rest) > 0 {
		return c.fatal(fail(AlertUnexpectedMessage, "handshake data after a KeyUpdate in its record"))
	}
	c.hsLen = 0
	req := c.hs[4]
	if req > 1 {
		return c.fatal(fail(AlertIllegalParameter, "KeyUpdate request_update %d", req))
	}
	if req == 1 {
		c.wmu.Lock()
		if c.werr == nil {
			c.werr = c.keyUpdateLocked(false)
		}
		c.wmu.Unlock()
	}
	if err := c.in.update(); err != nil {
		return c.fatal(fail(AlertInternalError, "%v", err))
	}
	return nil
}

// fatal sends lerr's alert, closes the connection and returns lerr.
func (c *Conn) fatal(lerr *LocalError) error {
	c.wmu.Lock()
	if c.werr == nil {
		c.nc.SetWriteDeadline(time.Now().Add(closeNotifyTimeout))
		c.writeRecordLocked(typeAlert, []byte{2, byte(lerr.Alert)})
		c.werr = lerr
		c.out.drop()
	}
	c.wmu.Unlock()
	c.nc.Close()
	return lerr
}

// Write sends p as application data records of at most 2^14 bytes each.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	wb := getWriteBuf()
	defer putWriteBuf(wb)
	defer c.restWriteLocked()
	sent := 0
	for sent < len(p) {
		buf := (*wb)[:0]
		end := sent
		for end < len(p) && cap(buf)-len(buf) >= recordSpace {
			if c.out.seq >= rekeyAfter {
				break
			}
			m := min(len(p)-end, maxPlaintext)
			var err error
			if buf, err = c.out.seal(buf, typeAppData, p[end:end+m]); err != nil {
				c.werr = err
				return sent, err
			}
			end += m
		}
		if len(buf) > 0 {
			if _, err := c.nc.Write(buf); err != nil {
				c.werr = err
				return sent, err
			}
		}
		sent = end
		if c.out.seq >= rekeyAfter {
			if err := c.keyUpdateLocked(false); err != nil {
				c.werr = err
				return sent, err
			}
		}
	}
	return sent, nil
}

// KeyUpdate updates this end's write key, asking the peer to update its own too
// when requestPeer is set.
func (c *Conn) KeyUpdate(requestPeer bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	c.werr = c.keyUpdateLocked(requestPeer)
	return c.werr
}

func (c *Conn) keyUpdateLocked(requestPeer bool) error {
	var req byte
	if requestPeer {
		req = 1
	}
	if err := c.writeRecordLocked(typeHandshake, []byte{24, 0, 0, 1, req}); err != nil {
		return err
	}
	return c.out.update()
}

// writeRecordLocked sends one record of inner type typ.
func (c *Conn) writeRecordLocked(typ byte, content []byte) error {
	var b [headerLen + 8 + 1 + 16]byte
	rec, err := c.out.seal(b[:0], typ, content)
	if err != nil {
		return err
	}
	_, err = c.nc.Write(rec)
	return err
}

// Close sends close_notify (bounded by closeNotifyTimeout) and closes the
// connection. During a write it only closes the connection, as crypto/tls does:
// a Close then is how a stuck write is broken.
func (c *Conn) Close() error {
	if c.wmu.TryLock() {
		c.closeNotifyLocked()
		c.wmu.Unlock()
	}
	return c.nc.Close()
}

// CloseWrite sends close_notify and shuts the connection's write side.
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	c.closeNotifyLocked()
	c.wmu.Unlock()
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *Conn) closeNotifyLocked() {
	if c.werr == nil {
		c.nc.SetWriteDeadline(time.Now().Add(closeNotifyTimeout))
		c.writeRecordLocked(typeAlert, []byte{1, byte(AlertCloseNotify)})
		c.werr = net.ErrClosed
		c.out.drop()
	}
}

// NetConn returns the connection the session's records travel on.
func (c *Conn) NetConn() net.Conn { return c.nc }

func (c *Conn) LocalAddr() net.Addr                { return c.nc.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr               { return c.nc.RemoteAddr() }
func (c *Conn) SetDeadline(t time.Time) error      { return c.nc.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.nc.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }
