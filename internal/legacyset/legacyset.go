// Package legacyset runs the configured legacy listeners as one set: opened, served, reloaded, handed off, drained.
package legacyset

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/oklog/run"
	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/legacy"
	"github.com/hawk-agents/hawk/internal/metrics"
)

// listener is one configured legacy listener: its socket from the upgrader and
// what serves it.
type listener struct {
	cfg config.LegacyListener
	ln  net.Listener
	l   *legacy.Listener
}

// Set is legacy.listeners, in configuration order.
type Set struct {
	list []*listener
	log  *zap.Logger
}

// Settings is the live part of a listener's configuration.
func Settings(c *config.LegacyListener) (*legacy.Settings, error) {
	allow, err := c.AllowPrefixes()
	if err != nil {
		return nil, err
	}
	return &legacy.Settings{Allow: allow, IdleTimeout: c.IdleTimeout, MaxFrameSize: c.MaxFrameSize}, nil
}

// Listen opens every legacy listener's socket through listen (the upgrader's),
// under the name "legacy:<name>", so that an upgrade hands it over like the
// others. It is part of the daemon's "every listener before Ready"; on error what
// it opened is closed again.
func Listen(cfgs []config.LegacyListener, listen func(name, addr string) (net.Listener, error), log *zap.Logger) (*Set, error) {
	s := &Set{log: log}
	for _, c := range cfgs {
		ln, err := listen("legacy:"+c.Name, c.Address)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("legacy.listeners %s: %w", c.Name, err)
		}
		s.list = append(s.list, &listener{cfg: c, ln: ln})
	}
	return s, nil
}

// Options is what Start gives every listener.
type Options struct {
	Destination ingest.Destination
	Metrics     *metrics.Metrics
	// Conns numbers the connections (ids unique across native and legacy ones)
	// and holds limits.write_timeout.
	Conns *conn.Manager
}

// Start creates what serves each listener (its reaper runs from here; Serve runs
// in the serving phase, AddActors).
func (s *Set) Start(o Options) error {
	for _, ll := range s.list {
		st, err := Settings(&ll.cfg)
		if err != nil {
			return err
		}
		var l *legacy.Listener
		l, err = legacy.New(legacy.Options{
			Name:         ll.cfg.Name,
			Format:       legacy.Format(ll.cfg.Format),
			Settings:     st,
			Destination:  o.Destination,
			Logger:       s.log.Named("legacy"),
			Observer:     o.Metrics.Legacy(ll.cfg.Name, func() int { return l.Count() }),
			NewID:        o.Conns.NewID,
			WriteTimeout: func() time.Duration { return o.Conns.Settings().WriteTimeout },
			Uploads:      o.Conns.Uploads(),
		})
		if err != nil {
			return err
		}
		ll.l = l
	}
	return nil
}

// Close closes the sockets and stops the listeners' reapers: the daemon's undo.
func (s *Set) Close() {
	for _, ll := range s.list {
		ll.ln.Close()
		if ll.l != nil {
			ll.l.Close()
		}
	}
}

// LogListening logs each listener's address.
func (s *Set) LogListening(log *zap.Logger) {
	for _, ll := range s.list {
		log.Info("legacy listening", zap.String("listener", ll.cfg.Name), zap.String("format", ll.cfg.Format),
			zap.String("addr", ll.ln.Addr().String()), zap.Strings("allow", ll.cfg.Allow))
	}
}

// AddActors adds one serving-phase actor per listener: it serves until the phase
// ends, which closes the listener on the way out.
func (s *Set) AddActors(g *run.Group) {
	for _, ll := range s.list {
		g.Add(func() error {
			return ll.l.Serve(ll.ln)
		}, func(error) {
			ll.ln.Close()
		})
	}
}

// Groups are the listeners as the handoff's sending side sees them.
func (s *Set) Groups() []handoff.Group {
	out := make([]handoff.Group, len(s.list))
	for i, ll := range s.list {
		out[i] = ll.l
	}
	return out
}

// Adopters are the listeners as the handoff's receiving side sees them.
func (s *Set) Adopters() []handoff.Adopter {
	out := make([]handoff.Adopter, len(s.list))
	for i, ll := range s.list {
		out[i] = ll.l
	}
	return out
}

// Drain serves the legacy connections, after their listeners were closed, until
// they leave or timeout (drain.timeout) passes, then cuts them; the returned
// channel is closed when every listener is drained and closed. The formats have
// no GOAWAY: after an upgrade, the connections the handoff could not move stay on
// the old process until they disconnect or are cut.
func (s *Set) Drain(ctx context.Context, timeout time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		waits := make(chan struct{}, len(s.list))
		for _, ll := range s.list {
			go func() {
				ll.l.Drain(ctx, timeout)
				ll.l.Close()
				waits <- struct{}{}
			}()
		}
		for range s.list {
			<-waits
		}
	}()
	return done
}

// Connections is /v1/connections: native and legacy connections share one id
// sequence, so one list ordered by id pages across both.
func (s *Set) Connections(native *conn.Manager, after uint64, limit int) []conn.Info {
	out := native.Connections(after, limit)
	if len(s.list) == 0 {
		return out
	}
	for _, ll := range s.list {
		out = append(out, ll.l.Connections(after, limit)...)
	}
	slices.SortFunc(out, func(a, b conn.Info) int { return cmp.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Apply is a reload of legacy.listeners: each running listener takes its new
// allow, idle_timeout and max_frame_size (new connections); connections from
// networks no longer allowed are closed.
func (s *Set) Apply(next []config.LegacyListener) {
	for _, ll := range s.list {
		for i := range next {
			c := &next[i]
			if c.Name != ll.cfg.Name {
				continue
			}
			st, err := Settings(c)
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
