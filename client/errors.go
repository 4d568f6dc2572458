package client

import (
	"errors"
	"fmt"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// ErrClosed is returned by Report and Go once Close has been called, and to Reports
// (and the done of Go reports) still waiting for an ACK when Close gives up waiting.
var ErrClosed = errors.New("hawk: client closed")

// ErrTooLarge is returned by Report and Go for a payload larger than the server
// accepts (WELCOME max_frame_size) or than the protocol allows.
var ErrTooLarge = errors.New("hawk: report payload too large")

// NackError is returned by Report (and passed to Go's done) when the server
// refused the report with a non-retryable NACK. Retryable NACKs never reach the
// caller: the report is resent.
type NackError struct {
	Seq uint64
	protocol.Nack
}

func (e *NackError) Error() string {
	return fmt.Sprintf("hawk: report seq %d refused: %s: %s", e.Seq, e.Code, e.Message)
}

// Errors that end a connection from the client side. None reaches a Report caller.
var (
	errHeartbeatTimeout = errors.New("hawk: nothing received from the server for 3 heartbeat intervals")
	errWriteStuck       = errors.New("hawk: write to the server stuck for 3 heartbeat intervals")
	errGoawayDeadline   = errors.New("hawk: GOAWAY deadline passed")
	errRetired          = errors.New("hawk: connection retired after GOAWAY") // ended on purpose: not a failure
)

// refusalIsFinal reports whether an ERROR received in answer to HELLO means that
// trying again cannot help (a bad token, a malformed HELLO, a protocol mismatch).
// Load and lifecycle conditions (too many connections, shutting down, …) are
// retried with backoff. An unknown code is taken as final: retrying what we do not
// understand could hammer a server that is refusing us for a good reason.
func refusalIsFinal(code protocol.Code) bool {
	switch code {
	case protocol.CodeTooManyConns, protocol.CodeShutdown, protocol.CodeDrainTimeout,
		protocol.CodeHandshakeTimeout, protocol.CodeUnavailable, protocol.CodeReplaced,
		protocol.CodeHeartbeatTimeout, protocol.CodeSpoolWrite:
		return false
	}
	return true
}

// finalRefusal returns the server's ERROR if err is a final handshake refusal.
func finalRefusal(err error) (*protocol.ErrorPayload, bool) {
	var ep *protocol.ErrorPayload
	if errors.As(err, &ep) && refusalIsFinal(ep.Code) {
		return ep, true
	}
	return nil, false
}
