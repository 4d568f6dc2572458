package conn

import (
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// Settings is the part of the configuration connections obey. It is immutable once
// handed to Manager.Apply; a reload builds a new one. Values a connection must keep
// for its whole life (the frame limit) are copied into it at accept, as nats-server
// copies per-client limits, so a reload never changes the rules under a live parser.
type Settings struct {
	ServerID          string
	Version           string
	HandshakeTimeout  time.Duration
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	WriteTimeout      time.Duration
	MaxConns          int
	MaxFrameSize      int
	// Tokens are the accepted auth tokens; empty means an open server.
	Tokens map[string]struct{}
	// DrainTimeout bounds a drain; DrainSpread is the window GOAWAYs are spread over.
	DrainTimeout time.Duration
	DrainSpread  time.Duration
}

func (s *Settings) tokenOK(tok string) bool {
	if len(s.Tokens) == 0 {
		return true
	}
	_, ok := s.Tokens[tok]
	return ok
}

// maxHelloSize caps the first frame: nothing is known about the peer before HELLO,
// so it gets no more than a HELLO can need, whatever the configured frame limit.
const maxHelloSize = 16 << 10

// CloseReason says why a connection ended; it labels logs and metrics.
type CloseReason string

// Close reasons.
const (
	ReasonClient           CloseReason = "client"            // the peer closed or reset
	ReasonHeartbeatTimeout CloseReason = "heartbeat_timeout" // silent past heartbeat.timeout
	ReasonHandshake        CloseReason = "handshake"         // no valid HELLO (timeout, refused)
	ReasonProtocol         CloseReason = "error"             // malformed frame or protocol violation
	ReasonWriteTimeout     CloseReason = "write_timeout"     // did not read its acks in time
	ReasonDrain            CloseReason = "drain"             // cut at the drain deadline
	ReasonRevoked          CloseReason = "revoked"           // its token was removed
	ReasonReplaced         CloseReason = "replaced"          // a newer connection took its client id
	ReasonLimit            CloseReason = "limit"             // refused at accept: too many connections
	ReasonShutdown         CloseReason = "shutdown"          // closed by the server stopping
)

// Observer receives counts for metrics. Calls come from hot paths, batched per read or
// per write, so implementations must be cheap and must not block.
type Observer interface {
	Accepted()
	Closed(reason CloseReason, handshaken bool)
	FramesIn(t protocol.Type, n int)
	FramesOut(t protocol.Type, n int)
	BytesIn(n int)
	BytesOut(n int)
	Acked(n int)
	Nacked(n int)
	GoawaySent()
}

// NopObserver discards everything.
type NopObserver struct{}

func (NopObserver) Accepted()                    {}
func (NopObserver) Closed(CloseReason, bool)     {}
func (NopObserver) FramesIn(protocol.Type, int)  {}
func (NopObserver) FramesOut(protocol.Type, int) {}
func (NopObserver) BytesIn(int)                  {}
func (NopObserver) BytesOut(int)                 {}
func (NopObserver) Acked(int)                    {}
func (NopObserver) Nacked(int)                   {}
func (NopObserver) GoawaySent()                  {}
