package handoff

// Why a connection falls back (stays with the old process, which drains it:
// GOAWAY for native connections, served until drain.timeout for legacy ones).
// They label hawk_handoff_connections_total{result="fallback"} and the
// "fallback_<reason>" fields of the handoff's log line.
const (
	// Decided for a whole group before any connection is asked.
	ReasonNotReady   = "not_ready"   // the new process did not say it was ready within upgrade.handoff_timeout
	ReasonNoListener = "no_listener" // the new process has nowhere to adopt the group (no listener of that name)
	ReasonFormat     = "format"      // its listener of that name speaks another format
	// Decided by the connection when asked (Conn.HandoffRequest).
	ReasonTLS       = "tls"       // a TLS session outside hawk's TLS 1.3 record layer (TLS 1.2): crypto/tls exports no state
	ReasonHandshake = "handshake" // not through its handshake yet
	ReasonClosing   = "closing"   // closing for another reason
	ReasonGoaway    = "goaway"    // told GOAWAY already
	ReasonTransfer  = "transfer"  // a file connection (legacy format file): its stream stays with this process to its end
	// Decided while the handoff runs.
	ReasonBusy        = "busy"        // reports in flight or output pending at the deadline
	ReasonTimeout     = "timeout"     // not quiet by the deadline
	ReasonClosed      = "closed"      // torn down before its quiet point
	ReasonChannel     = "channel"     // the channel broke before it was sent
	ReasonInterrupted = "interrupted" // the handoff was interrupted
)
