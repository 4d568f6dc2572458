package conn

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// The receiving side of a handoff (internal/handoff): a connection the previous
// process stopped at its quiet point resumes here, on the same socket, as if it
// had been accepted and had completed its handshake here. The client sees nothing.

// Adopt takes over the socket f (it becomes the connection, State.Open) described
// by st, and starts serving it where the old process stopped:
// with the partial frame it had read and, over TLS, its session. The connection gets an id of this process;
// connected_since stays the original connect time. The token it authenticated with
// is checked against this process's settings: one no longer accepted is revoked
// at once, as a reload would.
func (m *Manager) Adopt(f *os.File, st *handoff.State) error {
	nc, err := st.Open(f)
	if err != nil {
		return err
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		nc.Close()
		return fmt.Errorf("adopt conn %d (%s): not a socket connection", st.ConnID, st.ClientID)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		nc.Close()
		return fmt.Errorf("adopt conn %d (%s): %w", st.ConnID, st.ClientID, err)
	}
	now := mono.Now()
	c := &Conn{
		id:          m.nextID.Add(1),
		m:           m,
		nc:          nc,
		rc:          rc,
		remote:      st.Remote,
		since:       st.Since.UnixNano(),
		accepted:    now,
		maxFrame:    int32(st.MaxFrame),
		maxInFlight: int32(st.MaxInFlight),
		clientID:    st.ClientID,
		token:       st.Token,
		ackRange:    st.Ack == protocol.AckModeRange,
	}
	if st.TLS != nil {
		if err := c.adoptTLS(nc, rc, st.TLS); err != nil {
			nc.Close()
			return fmt.Errorf("adopt conn %d (%s): TLS session: %w", st.ConnID, st.ClientID, err)
		}
	}
	c.framesIn.Store(st.FramesIn)
	c.framesOut.Store(st.FramesOut)
	c.bytesIn.Store(st.BytesIn)
	c.bytesOut.Store(st.BytesOut)
	c.lastSeen.Store(now)
	c.readFn = c.readRaw
	c.writeFn = c.writeRaw
	if len(st.Partial) > 0 {
		buf := getReadBuf()
		if len(st.Partial) >= len(*buf) {
			// Room for more of the frame than the old reader had: a buffer the
			// partial frame fills would read nothing, which is EOF. Doubling, as
			// parse grows it.
			putReadBuf(buf)
			big := make([]byte, min(protocol.Needed(st.Partial), 2*len(st.Partial)))
			buf = &big
		}
		c.rlen = copy(*buf, st.Partial)
		c.rbuf = buf
		c.trackPartial(false, now)
	}
	if m.dedup != nil && st.DedupHas {
		// The old process acknowledged these: a resend must be answered, not stored,
		// even before this process's follow of its spool has read them.
		c.dd = m.dedup.Attach(c.clientID)
		c.dd.MergeDurable(st.DedupHi, st.DedupDurable)
	} else {
		c.attachDedup()
	}
	c.resumeUploads(st.Uploads)
	c.slot.Store(true)
	m.slots.Add(1)
	m.reg.Add(c)
	m.live.Add(1)
	m.reg.bind(c)
	c.state.Store(stateActive)
	if c.stillAuthorized(m.Settings()) {
		if m.draining.Load() {
			m.sendGoaway(c)
		} else if c.isTLS() {
			c.armExpiry() // a CA removed meanwhile, and the expiry GOAWAY, as at HELLO
		}
	}
	if ce := m.log.Check(zap.DebugLevel, "connection adopted from the previous process"); ce != nil {
		ce.Write(zap.Uint64("conn_id", c.id), zap.Uint64("previous_conn_id", st.ConnID), zap.String("client_id", c.clientID),
			zap.String("remote", c.remote), zap.Int("partial_bytes", len(st.Partial)))
	}
	c.serveAnew()
	return nil
}

// Reject answers a socket whose state this process cannot use with ERROR
// handoff_failed naming the problem, then closes it; on a goroutine of its own, so
// the handoff does not wait for the client.
func (m *Manager) Reject(f *os.File, problem error) {
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		m.log.Warn("handoff: a connection could not be answered", zap.Error(err), zap.NamedError("problem", problem))
		return
	}
	m.log.Warn("handoff: connection rejected", zap.String("remote", nc.RemoteAddr().String()), zap.Error(problem))
	m.live.Add(1)
	go func() {
		defer m.live.Done()
		refuse(nc, &protocol.ErrorPayload{Code: protocol.CodeHandoffFailed, Message: problem.Error()})
	}()
}
