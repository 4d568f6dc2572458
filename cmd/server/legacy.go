package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/legacy"
)

// legacyListener is one configured legacy listener: its socket from the upgrader
// and what serves it.
type legacyListener struct {
	cfg config.LegacyListener
	ln  net.Listener
	l   *legacy.Listener
}

// legacySettings is the live part of a listener's configuration.
func legacySettings(c *config.LegacyListener) (*legacy.Settings, error) {
	allow, err := c.AllowPrefixes()
	if err != nil {
		return nil, err
	}
	return &legacy.Settings{Allow: allow, IdleTimeout: c.IdleTimeout, MaxFrameSize: c.MaxFrameSize}, nil
}

// listenLegacy opens every legacy listener's socket through the upgrader, under
// the name "legacy:<name>", so that an upgrade hands it over like the others. It is
// part of start's "every listener before Ready"; on error the caller closes what
// s.legacy holds.
func (s *server) listenLegacy(cfg *config.Config) error {
	for _, c := range cfg.Legacy.Listeners {
		ln, err := s.upg.Listen("legacy:"+c.Name, c.Address)
		if err != nil {
			return fmt.Errorf("legacy.listeners %s: %w", c.Name, err)
		}
		s.legacy = append(s.legacy, &legacyListener{cfg: c, ln: ln})
	}
	return nil
}

// startLegacy creates what serves each legacy listener (its reaper runs from here;
// Serve runs in the serving phase).
func (s *server) startLegacy() error {
	for _, ll := range s.legacy {
		st, err := legacySettings(&ll.cfg)
		if err != nil {
			return err
		}
		var l *legacy.Listener
		l, err = legacy.New(legacy.Options{
			Name:         ll.cfg.Name,
			Format:       legacy.Format(ll.cfg.Format),
			Settings:     st,
			Destination:  s.dest,
			Logger:       s.log.Named("legacy"),
			Observer:     s.met.Legacy(ll.cfg.Name, func() int { return l.Count() }),
			NewID:        s.conns.NewID,
			WriteTimeout: func() time.Duration { return s.conns.Settings().WriteTimeout },
		})
		if err != nil {
			return err
		}
		ll.l = l
	}
	return nil
}

// closeLegacy closes the sockets and stops the listeners' reapers: start's undo.
func (s *server) closeLegacy() {
	for _, ll := range s.legacy {
		ll.ln.Close()
		if ll.l != nil {
			ll.l.Close()
		}
	}
}

func (s *server) logLegacyListening() {
	for _, ll := range s.legacy {
		s.log.Info("legacy listening", zap.String("listener", ll.cfg.Name), zap.String("format", ll.cfg.Format),
			zap.String("addr", ll.ln.Addr().String()), zap.Strings("allow", ll.cfg.Allow))
	}
}

// drainLegacy serves the legacy connections, after their listeners were closed,
// until they leave or drain.timeout passes, then cuts them; the returned channel is
// closed when every listener is drained and closed. The formats have no GOAWAY:
// after an upgrade, the connections handOffLegacy could not move stay on the old
// process until they disconnect or are cut.
func (s *server) drainLegacy(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	timeout := s.conns.Settings().DrainTimeout
	go func() {
		defer close(done)
		waits := make(chan struct{}, len(s.legacy))
		for _, ll := range s.legacy {
			go func() {
				ll.l.Drain(ctx, timeout)
				ll.l.Close()
				waits <- struct{}{}
			}()
		}
		for range s.legacy {
			<-waits
		}
	}()
	return done
}

// connections is /v1/connections: native and legacy connections share one id
// sequence, so one list ordered by id pages across both.
func (s *server) connections(after uint64, limit int) []conn.Info {
	out := s.conns.Connections(after, limit)
	if len(s.legacy) == 0 {
		return out
	}
	for _, ll := range s.legacy {
		out = append(out, ll.l.Connections(after, limit)...)
	}
	slices.SortFunc(out, func(a, b conn.Info) int { return cmp.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// partlyLiveOptions are the options of restart-only keys of which a reload may
// change some parts (config.Diff reports those as live changes of the key, and
// the rest as restart-only changes, which Prepare refuses).
var partlyLiveOptions = map[string]liveOption{
	"legacy.listeners": legacyListenersOption{},
}

// legacyListenersOption: each running listener takes its new allow, idle_timeout
// and max_frame_size (new connections); connections from networks no longer
// allowed are closed.
type legacyListenersOption struct{}

func (legacyListenersOption) apply(s *server, r *reloading) {
	for _, ll := range s.legacy {
		for i := range r.next.Legacy.Listeners {
			c := &r.next.Legacy.Listeners[i]
			if c.Name != ll.cfg.Name {
				continue
			}
			st, err := legacySettings(c)
			if err != nil { // validated by Prepare; if it ever failed, say so
				s.log.Error("legacy.listeners not applied", zap.String("listener", c.Name), zap.Error(err))
				continue
			}
			if n := ll.l.Apply(st); n > 0 {
				s.log.Info("legacy connections closed: their network is no longer allowed", zap.String("listener", c.Name), zap.Int("connections", n))
			}
		}
	}
}
