package reload

import (
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/filestamp"
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/ticketkeys"
	"github.com/hawk-agents/hawk/internal/tlsconf"
)

// tickets is the TLS listener's session ticket keys: read from tls.ticket_keys_file
// (again at every reload and when it changes), or hawk's own, rotated every
// rotation and passed to the next process of an upgrade.
type tickets struct {
	ring     *ticketkeys.Ring
	file     string // "": hawk's own keys
	rotation time.Duration
	previous int
	seen     string // stamp of the file the last read read; under the Reloader's mu
	met      *metrics.Metrics
	log      *zap.Logger
}

// openTickets gives files the keys its handshakes use: the keys file's, else those
// the previous process passed in inherited (nil: none), else a new key.
func openTickets(c *config.TLS, files *tlsconf.Reloader, inherited *os.File, met *metrics.Metrics, log *zap.Logger) (*tickets, error) {
	t := &tickets{file: c.TicketKeysFile, rotation: c.TicketKeyRotation, previous: c.TicketKeysPrevious, met: met, log: log}
	apply := func(keys []ticketkeys.Key) { files.SetTicketKeys(keys) }
	if t.file != "" {
		if inherited != nil {
			inherited.Close()
		}
		t.seen = t.stamp()
		keys, err := ticketkeys.ReadFile(t.file)
		if err != nil {
			return nil, err
		}
		t.ring = ticketkeys.NewRing(keys, time.Now(), apply)
		log.Info("TLS session ticket keys from the keys file", zap.String("ticket_keys_file", t.file), zap.Int("keys", len(keys)))
		return t, nil
	}
	if inherited != nil {
		keys, rotated, err := ticketkeys.Inherit(inherited)
		if err == nil {
			t.ring = ticketkeys.NewRing(keys, rotated, apply)
			clear(keys)
			log.Info("TLS session ticket keys passed by the previous process: its tickets resume here",
				zap.Int("keys", len(keys)), zap.Time("rotated", rotated))
			return t, nil
		}
		log.Warn("TLS session ticket keys of the previous process unusable: tickets it issued will not resume", zap.Error(err))
	}
	t.ring = ticketkeys.NewRing([]ticketkeys.Key{ticketkeys.NewKey()}, time.Now(), apply)
	return t, nil
}

func (t *tickets) stamp() string {
	s := filestamp.Of(t.file)
	if fi, err := os.Stat(t.file); err == nil {
		s += fi.Mode().String() // a chmod that makes the file acceptable is a change
	}
	return s
}

// reload reads the keys file again, if there is one; a bad file keeps the keys in
// force. Called with the Reloader's mu held.
func (t *tickets) reload(trigger string) {
	if t.file == "" {
		return
	}
	t.seen = t.stamp() // before reading: a change made meanwhile is seen by the next poll
	keys, err := ticketkeys.ReadFile(t.file)
	if err != nil {
		t.met.TicketKeys("failure")
		t.log.Error("TLS session ticket keys not reloaded; the keys in force stay", zap.String("trigger", trigger), zap.Error(err))
		return
	}
	defer clear(keys)
	if t.ring.Equal(keys) {
		return
	}
	t.ring.Set(keys, time.Now())
	t.met.TicketKeys("reloaded")
	t.log.Info("TLS session ticket keys reloaded", zap.String("trigger", trigger), zap.String("ticket_keys_file", t.file), zap.Int("keys", len(keys)))
}

// rotate puts a new key first if the first has encrypted for rotation; it
// returns how long until the next rotation is due.
func (t *tickets) rotate(now time.Time) time.Duration {
	_, rotated := t.ring.Keys()
	if due := rotated.Add(t.rotation).Sub(now); due > 0 && due <= t.rotation {
		return due
	}
	t.ring.Rotate(now, t.previous)
	t.met.TicketKeys("rotated")
	t.log.Info("TLS session ticket key rotated", zap.Int("keys_kept", t.previous), zap.Duration("next_in", t.rotation))
	return t.rotation
}

// TicketKeysWatch is the serving-phase actor that keeps the session ticket keys:
// it reads the keys file again when it changes, or rotates hawk's own keys on
// schedule. nil without TLS.
func (r *Reloader) TicketKeysWatch() (func() error, func(error)) {
	if r.o.TLS == nil {
		return nil, nil
	}
	t := r.o.TLS.tickets
	if t.file != "" {
		return r.poll(tlsPollInterval, func() {
			if t.stamp() != t.seen {
				t.reload("ticket keys file changed")
			}
		})
	}
	stop := make(chan struct{})
	return func() error {
			timer := time.NewTimer(t.rotate(time.Now()))
			defer timer.Stop()
			for {
				select {
				case <-stop:
					return nil
				case now := <-timer.C:
					timer.Reset(t.rotate(now))
				}
			}
		}, func(error) {
			close(stop)
		}
}

// PassTicketKeys passes the session ticket keys to the new process of the
// upgrade about to start, through pass (upgrade.PassFile); nothing without TLS.
// With a keys file the new process reads the file itself and ignores them.
func (r *Reloader) PassTicketKeys(pass func(name string, f *os.File) error) error {
	if r.o.TLS == nil {
		return nil
	}
	if err := ticketkeys.Pass(r.o.TLS.tickets.ring, pass); err != nil {
		return fmt.Errorf("pass TLS session ticket keys: %w", err)
	}
	return nil
}
