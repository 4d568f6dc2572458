package protocol

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Hello is the HELLO payload, the first frame a client sends.
type Hello struct {
	ClientID      string `json:"client_id"`
	Token         string `json:"token,omitempty"`
	ClientVersion string `json:"client_version,omitempty"`
	// Ack asks for an acknowledgement mode: AckModeRange, or empty for one ACK per
	// report. A server that does not know the mode asked for answers one ACK per report.
	Ack string `json:"ack,omitempty"`
}

// Welcome is the server's answer to an accepted HELLO.
type Welcome struct {
	ServerID            string `json:"server_id"`
	ServerVersion       string `json:"server_version"`
	ConnID              uint64 `json:"conn_id"`
	HeartbeatIntervalMS int64  `json:"heartbeat_interval_ms"`
	MaxFrameSize        int    `json:"max_frame_size"` // largest payload the server accepts
	// MaxInFlight is the most REPORTs a client may have sent and not yet seen
	// answered (ACK or NACK) on this connection, as MQTT 5's Receive Maximum. 0 means
	// the server did not say (an older server): the client keeps its own bound.
	MaxInFlight int `json:"max_in_flight"`
	// MaxUploadInFlight is the most UPLOAD_CHUNK data bytes a client may have sent
	// and not yet seen answered on this connection. 0 (absent) means the server
	// takes no uploads.
	MaxUploadInFlight int `json:"max_upload_in_flight,omitempty"`
	// Ack is the acknowledgement mode the server grants for this connection:
	// AckModeRange when the HELLO asked for it, absent (one ACK per report) otherwise.
	Ack string `json:"ack,omitempty"`
}

// Nack refuses one report (the frame's seq). Retryable means the same report may
// succeed if sent again, on this connection or another.
type Nack struct {
	Code      Code   `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
	// RetryAfterMS, when above 0, is the server's hint: resend no sooner than this
	// many milliseconds (destination_unavailable). Absent (0) from older servers.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

// Goaway tells a client to move to a new connection. The server keeps reading,
// persisting and acking on this connection until DeadlineMS after the GOAWAY was sent,
// then closes it with ERROR drain_timeout.
type Goaway struct {
	Reason     string `json:"reason"`
	DeadlineMS int64  `json:"deadline_ms"`
	// ReconnectAfterMS is a jittered delay the server chose for this connection: the
	// client opens its new connection that long after the GOAWAY (never later than
	// the deadline), so that a whole fleet does not hit the new process at once.
	ReconnectAfterMS int64 `json:"reconnect_after_ms"`
}

// ErrorPayload is the ERROR payload: why the server is about to close the connection.
type ErrorPayload struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// RetryAfterMS, when not 0, is the least time the client waits before it
	// reconnects (ERROR busy carries it).
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

func (e *ErrorPayload) Error() string { return fmt.Sprintf("hawk: %s: %s", e.Code, e.Message) }

// AppendJSON appends a frame whose payload is v encoded as JSON. Control frames are
// rare, so the allocation in json.Marshal does not matter.
func AppendJSON(dst []byte, t Type, seq uint64, v any) []byte {
	// Messages can quote what a peer sent; clipping them here, where every ERROR and
	// NACK is encoded, is what lets PROTOCOL.md bound every server frame.
	switch p := v.(type) {
	case *ErrorPayload:
		if len(p.Message) > MaxMessageLen {
			c := *p
			c.Message = clipMessage(c.Message)
			v = &c
		}
	case *Nack:
		if len(p.Message) > MaxMessageLen {
			c := *p
			c.Message = clipMessage(c.Message)
			v = &c
		}
	}
	p, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("protocol: encoding %s payload: %v", t, err)) // only our own types reach here
	}
	return AppendFrame(dst, t, seq, p)
}

// MaxMessageLen bounds the message of an ERROR or NACK, in bytes; a longer one is
// cut at a UTF-8 boundary and ends in "…". With it, no payload the server sends
// exceeds MaxServerPayload.
const MaxMessageLen = 1024

// MaxServerPayload is the most payload bytes of any frame the server sends
// (PROTOCOL.md 3.2): a client may use it as its limit for server frames.
const MaxServerPayload = 4096

func clipMessage(m string) string {
	const ellipsis = "…"
	cut := MaxMessageLen - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(m[cut]) {
		cut--
	}
	return m[:cut] + ellipsis
}

// ParseJSON decodes a control payload into v, with an error that names the frame type.
func ParseJSON(f Frame, v any) error {
	if err := json.Unmarshal(f.Payload, v); err != nil {
		return &DecodeError{Code: CodeBadPayload, Msg: fmt.Sprintf("%s payload is not valid JSON: %v", f.Type, err)}
	}
	return nil
}
