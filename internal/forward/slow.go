package forward

import (
	"errors"
	"time"
)

// A slow stream: the Publisher waits as long as acknowledgements keep coming, so a
// stream slower than a publish of MaxLines records is not sent them again (what it
// has not acknowledged yet is still in its queue). But a publish is the unit of
// progress: the position moves, and is saved, between publishes, and a crash
// publishes the last one again, which the stream drops as duplicates only within
// its duplicate window. So the forwarder sizes its publishes to take about a
// quarter to a half of jetstream.publish_timeout (pace): a publish stays short
// whatever the stream's pace, and one that stalls loses little.

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

// initialLines is what pace starts at: a stream slower than the timeout for a
// full publish is not sent one to begin with (its retry would come back as
// duplicates), and a fast one is at MaxLines within a few publishes.
const initialLines = 256

func newPace(maxLines int, timeout time.Duration) pace {
	return pace{lines: min(initialLines, maxLines), max: maxLines, timeout: timeout}
}

func (p *pace) floor() int { return min(minLines, p.max) }

// succeeded: every one of the n lines of a publish was acknowledged, dups of them
// as duplicates, the last one took after the publish started. Over half of the
// timeout: half the records next time. Within a quarter of it: twice, unless
// most were duplicates, which the stream acknowledges without storing them (after
// a failed publish), and so much faster than what it stores.
func (p *pace) succeeded(n, dups int, took time.Duration) {
	switch {
	case p.timeout > 0 && took > p.timeout/2:
		p.lines = max(p.lines/2, p.floor())
	case dups*2 > n:
	case p.timeout <= 0 || took <= p.timeout/4:
		p.lines = min(p.lines*2, p.max)
	}
}

// timedOut: the first acked lines of a publish were acknowledged, then none for
// the timeout; the next publish carries at most half of either.
func (p *pace) timedOut(acked int) {
	p.lines = max(min(p.lines/2, acked/2), p.floor())
}

// isTimeout tells whether err says the stream stopped acknowledging (the
// Publisher's contract), as net.Error's Timeout does.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
