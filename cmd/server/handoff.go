package main

import (
	"context"
	"time"

	"github.com/hawk-agents/hawk/internal/handoff"
)

// handoffSide is this process's part in moving established connections across an
// upgrade (internal/handoff): as the old process it sends them to its successor,
// as the new one it receives them from its parent.
type handoffSide struct {
	out *handoff.Sender
	in  *handoff.Receiver
}

// claimHandoff, in start before Ready, claims the channel a parent passed and
// starts receiving its connections; s.conns and s.legacy must exist.
func (s *server) claimHandoff() (undo func(), err error) {
	met := s.met.Handoff()
	groups := []handoff.Group{s.conns}
	adopters := []handoff.Adopter{s.conns}
	for _, ll := range s.legacy {
		groups = append(groups, ll.l)
		adopters = append(adopters, ll.l)
	}
	s.handoff.out = handoff.NewSender(groups, met, s.log)
	s.handoff.in = handoff.NewReceiver(handoff.ReceiverOptions{Adopters: adopters, Reject: s.conns.Reject,
		Gate: s.dedup.Ready(), Counter: met, Log: s.log})
	return s.handoff.in.Claim(s.upg.InheritedFile)
}

// handOffConnections runs at the start of the drain, before the GOAWAY drain. In a
// process started by an upgrade it first waits for the parent's handoff to end, so
// the drain finds every connection adopted. After an upgrade it moves this
// process's connections to the successor (upgrade.handoff, read now); the drain
// that follows finds only those that fell back.
func (s *server) handOffConnections(ctx context.Context, reason string) {
	<-s.handoff.in.Done()
	if reason != reasonUpgrade {
		return
	}
	on, timeout := s.handoffSettings()
	s.handoff.out.Send(ctx, on, timeout)
}

// handoffSettings are upgrade.handoff and upgrade.handoff_timeout as in force now:
// read at each upgrade, so a reload applies them to the next one.
func (s *server) handoffSettings() (on bool, timeout time.Duration) {
	cfg := s.cfg.Load()
	return cfg.Upgrade.Handoff, cfg.Upgrade.HandoffTimeout
}
