package protocol

// Code names a NACK or ERROR condition. Codes are stable strings; agents match on them.
type Code string

// Error and NACK codes.
const (
	CodeBadMagic           Code = "bad_magic"
	CodeUnsupportedVersion Code = "unsupported_version"
	CodeUnknownType        Code = "unknown_type"
	CodeFrameTooLarge      Code = "frame_too_large"
	CodeBadCRC             Code = "bad_crc"
	CodeBadPayload         Code = "bad_payload"        // a control payload that is not the JSON it must be
	CodeProtocol           Code = "protocol_violation" // a valid frame at the wrong time (REPORT before HELLO, …)
	CodeHandshakeTimeout   Code = "handshake_timeout"
	CodeUnauthorized       Code = "unauthorized"
	CodeHeartbeatTimeout   Code = "heartbeat_timeout"
	CodeTooManyConns       Code = "too_many_connections"
	CodeReplaced           Code = "replaced" // a newer connection with the same client id arrived
	CodeTokenRevoked       Code = "token_revoked"
	CodeDrainTimeout       Code = "drain_timeout"
	CodeShutdown           Code = "shutdown"
	CodeSlowConsumer       Code = "slow_consumer"      // the client made no read progress for limits.write_timeout
	CodeFrameTimeout       Code = "frame_timeout"      // a started frame did not complete within limits.frame_timeout
	CodeTooManyInFlight    Code = "too_many_in_flight" // more unanswered REPORTs than WELCOME's max_in_flight
	CodeBusy               Code = "busy"               // handshake admission rate exceeded; retry after retry_after_ms
	CodeSpoolWrite         Code = "spool_write_failed" // NACK, retryable
	CodeUnavailable        Code = "unavailable"        // NACK, retryable: server is shutting down
	CodeHandoffFailed      Code = "handoff_failed"     // after an upgrade, the new process could not resume this connection
)

// CodeDestinationUnavailable is a NACK, retryable: the destination (a broker: NATS
// JetStream) did not confirm the report; resend after retry_after_ms, on this
// connection or another.
const CodeDestinationUnavailable Code = "destination_unavailable"

// retryable says, for every code, whether reconnecting (after a backoff, and after
// retry_after_ms when the ERROR carries it) and resending can succeed. It is the
// "retry" column of docs/PROTOCOL.md section 5, and what the Go client obeys
// whenever it receives the code, in answer to HELLO or later.
var retryable = map[Code]bool{
	CodeBadMagic:           false, // the peer does not speak hawk
	CodeUnsupportedVersion: false,
	CodeUnknownType:        false, // a peer bug: resending repeats it
	CodeFrameTooLarge:      false,
	CodeBadCRC:             true, // bytes can be damaged in transit; the frame is resent whole
	CodeBadPayload:         false,
	CodeProtocol:           false,
	CodeHandshakeTimeout:   true,
	CodeUnauthorized:       false, // fix the token
	CodeHeartbeatTimeout:   true,
	CodeTooManyConns:       true,
	CodeReplaced:           true,
	CodeTokenRevoked:       false, // fix the token
	CodeDrainTimeout:       true,
	CodeShutdown:           true,
	CodeSlowConsumer:       true,
	CodeFrameTimeout:       true,
	CodeTooManyInFlight:    false, // a peer bug: it ignored WELCOME's max_in_flight
	CodeBusy:               true,
	CodeSpoolWrite:         true,
	CodeUnavailable:        true,

	CodeDestinationUnavailable: true,
	CodeHandoffFailed:          true, // reconnect and resend, as after any ERROR

	// Upload codes come in UPLOAD_STATE and concern one upload: "retryable" says
	// whether sending again (from the answer's offset) can succeed.
	CodeUploadOffset:      true,
	CodeUploadUnknown:     true, // open it again, then resend
	CodeUploadBadName:     false,
	CodeUploadBadID:       false,
	CodeUploadConflict:    false,
	CodeUploadTooLarge:    false,
	CodeUploadQuota:       true, // after files are taken away or partials expire
	CodeUploadMismatch:    false,
	CodeUploadWriteFailed: true,
	CodeUploadDisabled:    false,
}

// Retryable reports whether reconnecting and resending can help after this code.
// A code this version does not know is not retryable: retrying what is not
// understood could hammer a server that refuses for a reason.
func (c Code) Retryable() bool { return retryable[c] }

// Codes lists every code this version knows, for tests and documentation checks.
func Codes() []Code {
	out := make([]Code, 0, len(retryable))
	for c := range retryable {
		out = append(out, c)
	}
	return out
}
