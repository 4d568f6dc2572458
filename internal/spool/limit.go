package spool

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/ingest"
)

// The hard limit. When retention may not remove what a reader has not finished
// (Options.Unsent without DiscardUnsent: the JetStream forwarder behind a NATS
// outage), removing closed segments cannot bring the directory under MaxBytes, so
// the committer refuses a batch that would take it past the limit instead: its
// reports are NACKed retryable with a hint (ingest.FullError), as on a full disk,
// and the spool grows no further. The forwarder catching up makes segments
// removable; the next retention pass removes them and writes go on.
//
// The committer counts the directory's bytes as the last retention pass found
// them plus what this process wrote since (dirBytes), so the check costs no system
// call. During an upgrade the other process's writes since the last pass are not
// counted: the directory can then exceed the limit by what that process wrote in
// one retention interval.

// fullRetryAfter is the retry hint of a refusal at the hard limit: about the time
// retention takes to notice that the forwarder has caught up (fullWakeEvery), with
// room for it to catch up.
const fullRetryAfter = time.Second

// fullWakeEvery bounds how often refusals wake retention for a fresh count.
const fullWakeEvery = 250 * time.Millisecond

// hardLimit reports whether MaxBytes is a hard limit now (the package doc).
func (s *Spool) hardLimit() bool { return s.unsent != nil && !s.discard && s.maxBytes.Load() > 0 }

// overLimit refuses a batch of n bytes that would take the directory past a hard
// MaxBytes. Refusing, it closes the current segment if it holds anything (so that
// the forwarder can finish it and retention remove it: a limit smaller than a
// segment would otherwise refuse for ever) and asks retention for a new count.
// It runs on the committer.
func (s *Spool) overLimit(n, records int) error {
	if !s.hardLimit() {
		return nil
	}
	limit := s.maxBytes.Load()
	have := s.dirBytes.Load()
	if have+int64(n) <= limit {
		return nil
	}
	if s.seg != nil && s.seg.size > 0 {
		s.rotateNow()
	}
	now := time.Now()
	if now.Sub(s.fullWake) >= fullWakeEvery {
		s.fullWake = now
		s.retainWake()
	}
	if now.Sub(s.fullLog) >= time.Second {
		s.fullLog = now
		s.log.Warn("spool full: segments not yet forwarded fill spool.max_bytes, refusing reports until the forwarder catches up",
			zap.Int64("spool_bytes", have), zap.Int64("max_bytes", limit), zap.Int("records", records))
	}
	if s.robs != nil {
		s.robs.RefusedFull(records)
	}
	return &ingest.FullError{
		Err:        fmt.Errorf("spool full: %d bytes not yet forwarded reach spool.max_bytes (%d); resend later", have, limit),
		RetryAfter: fullRetryAfter,
	}
}
