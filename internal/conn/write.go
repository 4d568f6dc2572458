package conn

import (
	"errors"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/spool"
)

// appendLocked appends to the pending output, taking a buffer from the pool if the
// connection holds none. Caller holds wmu.
func (c *Conn) appendLocked(enc func([]byte) []byte) {
	if c.out == nil {
		c.out = getWriteBuf()
	}
	*c.out = enc(*c.out)
}

// kickLocked makes sure a flusher is running. Caller holds wmu.
func (c *Conn) kickLocked() {
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
}

// send queues one control frame (PONG, WELCOME, GOAWAY) unless the connection is closing.
func (c *Conn) send(t protocol.Type, seq uint64, payload any) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing {
		return false
	}
	if c.out == nil {
		c.out = getWriteBuf()
	}
	if len(*c.out) > maxPendingOut {
		c.slowConsumerLocked()
		return false
	}
	if payload == nil {
		*c.out = protocol.AppendFrame(*c.out, t, seq, nil)
	} else {
		*c.out = protocol.AppendJSON(*c.out, t, seq, payload)
	}
	c.framesOut.Add(1)
	c.m.obs.FramesOut(t, 1)
	c.kickLocked()
	return true
}

// flush writes everything pending in one write, again and again until nothing is
// pending, then exits. A stuck write is cut by the reaper, not by a deadline.
func (c *Conn) flush() {
	for {
		c.wmu.Lock()
		buf := c.out
		c.out = nil
		if buf == nil || len(*buf) == 0 {
			c.flushing = false
			closing := c.closing
			c.wmu.Unlock()
			putWriteBuf(buf)
			if closing {
				c.finish()
			}
			return
		}
		c.wmu.Unlock()

		c.writeStart.Store(monoNow())
		n, err := c.nc.Write(*buf)
		c.writeStart.Store(0)
		putWriteBuf(buf)
		c.bytesOut.Add(uint64(n))
		c.m.obs.BytesOut(n)
		if err != nil {
			c.wmu.Lock()
			c.flushing = false
			c.wmu.Unlock()
			c.closeNow(ReasonClient)
			return
		}
	}
}

// Committed implements spool.Waiter: called by the spool's committer once the
// batch holding these reports is durable (err == nil) or failed.
func (c *Conn) Committed(seqs []uint64, err error) {
	c.wmu.Lock()
	if c.closing {
		// The connection is gone or going: the client resends whatever it has not
		// seen acked, and (client id, seq) tells a duplicate apart.
		c.wmu.Unlock()
		return
	}
	if c.out == nil {
		c.out = getWriteBuf()
	}
	if len(*c.out) > maxPendingOut {
		c.slowConsumerLocked()
		c.wmu.Unlock()
		return
	}
	b := *c.out
	if err == nil {
		for _, s := range seqs {
			b = protocol.AppendFrame(b, protocol.TypeAck, s, nil)
		}
	} else {
		nack := &protocol.Nack{Code: protocol.CodeSpoolWrite, Message: err.Error(), Retryable: true}
		if errors.Is(err, spool.ErrClosed) {
			nack.Code, nack.Message = protocol.CodeUnavailable, "server is shutting down; resend on a new connection"
		}
		for _, s := range seqs {
			b = protocol.AppendJSON(b, protocol.TypeNack, s, nack)
		}
	}
	*c.out = b
	c.framesOut.Add(uint64(len(seqs)))
	c.kickLocked()
	c.wmu.Unlock()
	if err == nil {
		c.m.obs.Acked(len(seqs))
		c.m.obs.FramesOut(protocol.TypeAck, len(seqs))
	} else {
		c.m.obs.Nacked(len(seqs))
		c.m.obs.FramesOut(protocol.TypeNack, len(seqs))
	}
}

// lingerAfterError bounds how long a connection told ERROR may keep sending before
// its socket is closed.
const lingerAfterError = 2 * time.Second

// finish runs once the final ERROR (and everything queued before it) is written:
// send FIN so the peer reads the ERROR and then end-of-stream, and give the reader
// a deadline to see the peer close, after which the socket is closed regardless.
func (c *Conn) finish() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerAfterError))
}

// maxPendingOut caps what may wait for a connection that does not read: past it the
// client is a slow consumer and is cut at once, as nats-server does, rather than
// holding memory until the write timeout.
const maxPendingOut = 1 << 20

// slowConsumerLocked closes c without a goodbye: it is not reading, so an ERROR
// would only queue behind everything else. Caller holds wmu.
func (c *Conn) slowConsumerLocked() {
	c.closing = true
	if c.reason == "" {
		c.reason = ReasonWriteTimeout
	}
	go c.nc.Close()
}
