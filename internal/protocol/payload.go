package protocol

import (
	"encoding/json"
	"fmt"
)

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
	CodeSpoolWrite         Code = "spool_write_failed" // NACK, retryable
	CodeUnavailable        Code = "unavailable"        // NACK, retryable: server is shutting down
)

// Hello is the HELLO payload, the first frame a client sends.
type Hello struct {
	ClientID      string `json:"client_id"`
	Token         string `json:"token,omitempty"`
	ClientVersion string `json:"client_version,omitempty"`
}

// Welcome is the server's answer to an accepted HELLO.
type Welcome struct {
	ServerID            string `json:"server_id"`
	ServerVersion       string `json:"server_version"`
	ConnID              uint64 `json:"conn_id"`
	HeartbeatIntervalMS int64  `json:"heartbeat_interval_ms"`
	MaxFrameSize        int    `json:"max_frame_size"` // largest payload the server accepts
}

// Nack refuses one report (the frame's seq). Retryable means the same report may
// succeed if sent again, on this connection or another.
type Nack struct {
	Code      Code   `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

// Goaway tells a client to move to a new connection. The server keeps reading,
// persisting and acking on this connection until DeadlineMS after the GOAWAY was sent,
// then closes it with ERROR drain_timeout.
type Goaway struct {
	Reason     string `json:"reason"`
	DeadlineMS int64  `json:"deadline_ms"`
}

// ErrorPayload is the ERROR payload: why the server is about to close the connection.
type ErrorPayload struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *ErrorPayload) Error() string { return fmt.Sprintf("hawk: %s: %s", e.Code, e.Message) }

// AppendJSON appends a frame whose payload is v encoded as JSON. Control frames are
// rare, so the allocation in json.Marshal does not matter.
func AppendJSON(dst []byte, t Type, seq uint64, v any) []byte {
	p, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("protocol: encoding %s payload: %v", t, err)) // only our own types reach here
	}
	return AppendFrame(dst, t, seq, p)
}

// ParseJSON decodes a control payload into v, with an error that names the frame type.
func ParseJSON(f Frame, v any) error {
	if err := json.Unmarshal(f.Payload, v); err != nil {
		return &DecodeError{Code: CodeBadPayload, Msg: fmt.Sprintf("%s payload is not valid JSON: %v", f.Type, err)}
	}
	return nil
}
