package conn

// CloseReason says why a connection ended; it labels logs and metrics.
type CloseReason string

// Close reasons.
const (
	ReasonClient           CloseReason = "client"            // the peer closed or reset
	ReasonHeartbeatTimeout CloseReason = "heartbeat_timeout" // silent past heartbeat.timeout
	ReasonHandshake        CloseReason = "handshake"         // no valid HELLO (timeout, refused)
	ReasonProtocol         CloseReason = "protocol"          // malformed frame or protocol violation
	ReasonSlowConsumer     CloseReason = "slow_consumer"     // its writes made no progress for limits.write_timeout
	ReasonFrameTimeout     CloseReason = "frame_timeout"     // a started frame stayed incomplete past limits.frame_timeout
	ReasonDrain            CloseReason = "drain"             // cut at the drain deadline
	ReasonRevoked          CloseReason = "revoked"           // its token was removed
	ReasonReplaced         CloseReason = "replaced"          // a newer connection took its client id
	ReasonLimit            CloseReason = "limit"             // refused at accept: too many connections
	ReasonShutdown         CloseReason = "shutdown"          // closed by the server stopping
	ReasonHandoff          CloseReason = "handoff"           // moved to the new process after an upgrade: the client saw nothing
	ReasonHandoffLost      CloseReason = "handoff_lost"      // sent to a new process that died before acknowledging it
	ReasonCredentials      CloseReason = "credentials"       // its client certificate expired or its CA was removed, and it did not move
)
