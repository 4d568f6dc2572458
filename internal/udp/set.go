package udp

import (
	"fmt"
	"net"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/ingest"
)

// Set is udp.listeners, in configuration order.
type Set struct {
	cfgs  []config.UDPListener
	conns []*net.UDPConn
	list  []*Listener
	log   *zap.Logger
}

// SettingsOf is the live part of a listener's configuration.
func SettingsOf(c *config.UDPListener) (*Settings, error) {
	allow, err := c.AllowPrefixes()
	if err != nil {
		return nil, err
	}
	return &Settings{Allow: allow, Reply: c.Reply, MaxPending: c.MaxPending}, nil
}

// Listen opens every listener's socket through listen (the upgrader's), under the
// name "udp:<name>", so that an upgrade hands the socket itself to the new
// process, and sets its receive buffer. On error what it opened is closed again.
func Listen(cfgs []config.UDPListener, listen func(name, addr string) (net.PacketConn, error), log *zap.Logger) (*Set, error) {
	s := &Set{log: log}
	for _, c := range cfgs {
		pc, err := listen("udp:"+c.Name, c.Address)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("udp.listeners %s: %w", c.Name, err)
		}
		uc, ok := pc.(*net.UDPConn)
		if !ok {
			pc.Close()
			s.Close()
			return nil, fmt.Errorf("udp.listeners %s: %T is not a UDP socket", c.Name, pc)
		}
		s.cfgs, s.conns = append(s.cfgs, c), append(s.conns, uc)
		if _, err := SetReceiveBuffer(uc, c.ReceiveBuffer); err != nil {
			s.Close()
			return nil, fmt.Errorf("udp.listeners %s: receive_buffer: %w", c.Name, err)
		}
	}
	return s, nil
}

// Start creates and starts every listener: from here on the sockets are read.
// observer gives each listener its metrics; drops is what reads its socket's
// kernel drop counter. creds and dd serve report listeners (Options).
func (s *Set) Start(dest ingest.Destination, observer func(name string, drops func() (uint64, error)) Observer,
	creds Credentials, dd *dedup.Table) error {
	for i, c := range s.cfgs {
		st, err := SettingsOf(&c)
		if err != nil {
			return err
		}
		inode, err := Inode(s.conns[i])
		if err != nil {
			return fmt.Errorf("udp.listeners %s: %w", c.Name, err)
		}
		l := New(Options{Name: c.Name, Format: c.Format, Conn: s.conns[i], MaxDatagram: c.MaxDatagram, Settings: st,
			Destination: dest, Observer: observer(c.Name, func() (uint64, error) { return KernelDrops(inode) }),
			Logger: s.log.Named("udp"), Credentials: creds, Dedup: dd})
		s.list = append(s.list, l)
		l.Start()
	}
	return nil
}

// Stop stops reading every socket and returns once what was read is durable (or
// failed): the last step before the destination is closed. The sockets stay open
// until Close, and a new process that inherited them reads on.
func (s *Set) Stop() {
	if s == nil {
		return
	}
	for _, l := range s.list {
		go l.Stop()
	}
	for _, l := range s.list {
		l.Stop()
	}
}

// Close stops the listeners and closes the sockets: the daemon's undo.
func (s *Set) Close() {
	s.Stop()
	for _, c := range s.conns {
		c.Close()
	}
}

// LogListening logs each listener's address and receive buffer.
func (s *Set) LogListening(log *zap.Logger) {
	for i, c := range s.cfgs {
		got, _ := SetReceiveBuffer(s.conns[i], 0)
		log.Info("udp listening", zap.String("listener", c.Name), zap.String("format", c.Format),
			zap.String("addr", s.conns[i].LocalAddr().String()), zap.Strings("allow", c.Allow), zap.Int("receive_buffer", got))
	}
}

// Apply is a reload of udp.listeners: each running listener, matched by name,
// takes its new allow, reply and max_pending.
func (s *Set) Apply(next []config.UDPListener) {
	if s == nil {
		return
	}
	for i, l := range s.list {
		for j := range next {
			if next[j].Name != s.cfgs[i].Name {
				continue
			}
			st, err := SettingsOf(&next[j])
			if err != nil { // validated by Prepare
				s.log.Error("udp.listeners not applied", zap.String("listener", next[j].Name), zap.Error(err))
				continue
			}
			l.Apply(st)
		}
	}
}
