package conn

import (
	"net"
	"time"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// maxPendingOut caps what may wait for a connection that does not read: past it the
// client is a slow consumer and is cut at once, as nats-server does, rather than
// holding memory until the write timeout.
const maxPendingOut = 1 << 20

// lingerAfterError bounds how long a connection told ERROR may keep sending before
// its socket is closed.
const lingerAfterError = 2 * time.Second

// outLocked is the one way onto a connection's pending output, for every producer:
// the reader (WELCOME, PONG), the destination's committer (ACK, NACK), the drain
// (GOAWAY) and every ERROR. As nats-server's queueOutbound, it is where the output
// cap is enforced: it returns the buffer to append to, or nil when nothing more may
// be queued because the connection is closing, or because its unread output passed
// maxPendingOut, in which case the connection is closed now as a slow consumer.
// The caller holds wmu, appends, and calls queuedLocked.
func (c *Conn) outLocked() *[]byte {
	switch {
	case c.closing:
		return nil
	case c.out == nil:
		c.out = getWriteBuf()
	case len(*c.out) > maxPendingOut:
		c.slowConsumerLocked()
		return nil
	}
	return c.out
}

// queuedLocked counts n frames of type t just appended by the caller of outLocked
// and makes sure a flusher is running. Caller holds wmu.
func (c *Conn) queuedLocked(t protocol.Type, n int) {
	c.framesOut.Add(uint64(n))
	c.m.obs.FramesOut(t, n)
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
}

// slowConsumerLocked closes c without a goodbye: it is not reading, so an ERROR
// would only queue behind everything else. Caller holds wmu.
func (c *Conn) slowConsumerLocked() {
	c.releaseSlot()
	c.closing = true
	if c.reason == "" {
		c.reason = ReasonSlowConsumer
	}
	go c.nc.Close() // not under wmu: the reader may be blocked on it
}

// send queues one control frame (PONG, WELCOME, GOAWAY); false if it was not queued.
func (c *Conn) send(t protocol.Type, seq uint64, payload any) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	out := c.outLocked()
	if out == nil {
		return false
	}
	if payload == nil {
		*out = protocol.AppendFrame(*out, t, seq, nil)
	} else {
		*out = protocol.AppendJSON(*out, t, seq, payload)
	}
	c.queuedLocked(t, 1)
	return true
}

// Committed implements ingest.Waiter: the destination calls it once the batch
// holding these reports is durable (err == nil) or failed.
func (c *Conn) Committed(seqs []uint64, err error) {
	c.committedDedup(seqs, err)
	c.wmu.Lock()
	out := c.outLocked()
	if out == nil {
		// The connection is gone or going: the client resends whatever it has not
		// seen acked, and (client id, seq) tells a duplicate apart.
		c.wmu.Unlock()
		return
	}
	b := *out
	t := protocol.TypeAck
	if err == nil {
		for _, s := range seqs {
			b = protocol.AppendFrame(b, protocol.TypeAck, s, nil)
		}
	} else {
		t = protocol.TypeNack
		nack := ingest.Nack(err)
		for _, s := range seqs {
			b = protocol.AppendJSON(b, protocol.TypeNack, s, nack)
		}
	}
	*out = b
	c.queuedLocked(t, len(seqs))
	c.wmu.Unlock()
	if err == nil {
		c.m.obs.Acked(len(seqs))
	} else {
		c.m.obs.Nacked(len(seqs))
	}
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
			closing, reason := c.closing, c.reason
			c.wmu.Unlock()
			putWriteBuf(buf)
			if closing {
				c.finish(reason)
			}
			return
		}
		c.wmu.Unlock()

		c.writeStart.Store(mono.Now())
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

// finish runs once the final ERROR (and everything queued before it) is written.
// At the drain deadline the socket is closed at once: the time to leave is over.
// Otherwise the peer gets a goodbye, so that it reads the ERROR before the end.
func (c *Conn) finish(reason CloseReason) {
	if reason == ReasonDrain {
		c.nc.Close()
		return
	}
	goodbye(c.nc)
}

// goodbye sends FIN after what was written, so the peer reads it and then
// end-of-stream, and gives the reader lingerAfterError to see the peer close: a
// socket closed with unread input sends a reset, which can destroy the last frame
// before the peer reads it.
func goodbye(nc net.Conn) {
	if tc, ok := nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	nc.SetReadDeadline(time.Now().Add(lingerAfterError))
}
