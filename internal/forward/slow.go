package forward

import (
	"errors"
	"time"

	"go.uber.org/zap"
)

// A stream slower than what one publish carries: the Publisher fails the lines it
// could not get acknowledged within its timeout, and those are published again.
// With a fixed number of records per publish, a stream that takes longer than the
// timeout for that many would be sent the same lines again and again, over a link
// that was already the bottleneck, and never get ahead. So the forwarder keeps
// what was acknowledged and publishes fewer records at once (pace), as the
// JetStream destination's window does for agents' reports (internal/jetstream).

// minLines is the fewest records per publish pace goes down to: small enough for
// a stream that takes a few hundred records a second, large enough that the round
// trips do not bound a fast one.
const minLines = 64

// pace is how many records the forwarder publishes at once.
type pace struct {
	lines   int
	max     int           // Options.MaxLines
	timeout time.Duration // Options.PublishTimeout; 0: unknown
}

func (p *pace) floor() int { return min(minLines, p.max) }

// succeeded: every line of a publish was acknowledged, the last took after it
// started. Quick: twice the records next time; slower than half the timeout: half.
func (p *pace) succeeded(took time.Duration) {
	switch {
	case p.timeout <= 0 || took <= p.timeout/4:
		p.lines = min(p.lines*2, p.max)
	case took > p.timeout/2:
		p.lines = max(p.lines/2, p.floor())
	}
}

// timedOut: the first acked lines of a publish were acknowledged, the next not
// within the timeout; the stream takes about acked records per timeout, so the
// next publish carries at most half of that.
func (p *pace) timedOut(acked int) {
	p.lines = max(min(p.lines/2, acked/2), p.floor())
}

// isTimeout tells whether err says the stream was too slow (the Publisher's
// contract), as net.Error's Timeout does.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// slow takes a publish that timed out after acked lines were acknowledged: the
// next publishes carry fewer records, and the operator hears of it at most once
// a minute. When acked is 0 the error goes to Run like any other (counted,
// logged, retried after RetryAfter); otherwise it is counted here and the
// forwarder goes on at once with the lines left.
func (f *forwarder) slow(acked int, err error) {
	f.pace.timedOut(acked)
	if acked > 0 {
		f.o.Observer.Failed(err)
	}
	if now := f.o.Now(); now.Sub(f.slowLog) >= time.Minute {
		f.slowLog = now
		f.log.Warn("jetstream acknowledges forwarded records slower than jetstream.publish_timeout: publishing fewer at once",
			zap.Int("records_per_publish", f.pace.lines), zap.Int("acked_before_timeout", acked), zap.Error(err))
	}
}
