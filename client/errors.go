package client

import (
	"errors"
	"fmt"
	"time"

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

// finalRefusal returns the server's ERROR if err is one whose code is final: not
// retryable per the protocol's retry table (protocol.Code.Retryable, PROTOCOL.md
// section 5), whenever it arrives, in answer to HELLO or on an established
// connection. A code this version does not know is final.
func finalRefusal(err error) (*protocol.ErrorPayload, bool) {
	var ep *protocol.ErrorPayload
	if errors.As(err, &ep) && !ep.Code.Retryable() {
		return ep, true
	}
	return nil, false
}

// retryAfter is the least wait the server asked for before the next connection
// attempt (ERROR retry_after_ms, sent with busy), or 0.
func retryAfter(err error) time.Duration {
	var ep *protocol.ErrorPayload
	if errors.As(err, &ep) && ep.RetryAfterMS > 0 {
		return time.Duration(ep.RetryAfterMS) * time.Millisecond
	}
	return 0
}
