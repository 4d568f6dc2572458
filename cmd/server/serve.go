package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/oklog/run"
	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/admin"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/spool"
	"github.com/hawk-agents/hawk/internal/upgrade"
)

// errUpgraded and errSignal end the actor group; what follows is the same drain.
var errUpgraded = errors.New("replaced by a new process")

type signalError struct{ sig os.Signal }

func (e signalError) Error() string { return "received " + e.sig.String() }

// server is the running daemon: what main wires together and the actors share.
type server struct {
	loader *config.Loader
	cfg    *config.Holder
	level  zap.AtomicLevel
	log    *zap.Logger
	upg    *upgrade.Upgrader
	spool  *spool.Spool
	conns  *conn.Manager
	ln     net.Listener
	admin  *adminServer // nil when admin.addr is empty
	met    *metrics.Metrics
	ready  *admin.Readiness

	reloadMu sync.Mutex // one reload at a time: file watch and SIGUSR1 may coincide
}

func serve(loader *config.Loader, cfg *config.Config) error {
	start := time.Now()
	// Before anything else: a SIGHUP's default action is to kill the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// A log pipe whose reader went away (a restarted log collector, the parent's
	// pipe after an upgrade) must cost log lines, not 50,000 connections: without
	// this, a write to a broken stderr kills a Go program with SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	level, err := zap.ParseAtomicLevel(cfg.Log.Level)
	if err != nil {
		return fmt.Errorf("log.level: %w", err)
	}
	log := newLogger(cfg.Log.Format, level)
	defer log.Sync()
	s := &server{loader: loader, cfg: config.NewHolder(cfg), level: level, log: log, ready: admin.NewReadiness("starting")}

	s.upg, err = upgrade.New(upgrade.Options{PIDFile: cfg.Upgrade.PIDFile, Timeout: cfg.Upgrade.Timeout})
	if err != nil {
		return err
	}
	if s.upg.Inherited() {
		log.Info("started by an upgrade: inheriting listening sockets from the parent process")
	}
	// Every listener before Ready: sockets inherited and not claimed by then are closed.
	s.ln, err = s.upg.Listen("protocol", cfg.Listen)
	if err != nil {
		return err
	}
	var adminLn net.Listener
	if cfg.Admin.Addr != "" {
		if adminLn, err = s.upg.Listen("admin", cfg.Admin.Addr); err != nil {
			return err
		}
	}
	s.met = metrics.New(version, func() int { return s.conns.Count() })
	s.spool, err = spool.Open(spool.Options{
		Dir:         cfg.Spool.Dir,
		Fsync:       cfg.Spool.Fsync == "always",
		SegmentSize: cfg.Spool.SegmentSize,
		Logger:      log.Named("spool"),
		Observer:    s.met.Spool(),
	})
	if err != nil {
		return err
	}
	s.conns = conn.New(conn.Options{
		Settings:    settingsFrom(cfg, version),
		Destination: s.spool,
		Logger:      log.Named("conn"),
		Observer:    s.met.Conn(),
	})
	if adminLn != nil {
		s.admin = startAdmin(adminLn, s.adminSource(), s.ready, log.Named("admin"))
	}
	if err := s.upg.Ready(); err != nil {
		s.spool.Close()
		return err
	}
	s.ready.SetReady()
	s.met.SetReady(true)
	log.Info("listening", zap.String("addr", s.ln.Addr().String()), zap.String("spool_dir", cfg.Spool.Dir),
		zap.Bool("inherited", s.upg.Inherited()), zap.Duration("startup", time.Since(start)))
	if s.admin != nil {
		log.Info("admin listening", zap.String("addr", adminLn.Addr().String()), zap.Bool("pprof", cfg.Admin.Pprof))
	}
	if s.upg.Inherited() {
		go func() {
			if err := s.upg.WaitForParent(context.Background()); err != nil {
				log.Warn("previous process ended badly", zap.Error(err))
				return
			}
			log.Info("upgrade handoff finished: the previous process has exited")
		}()
	}

	stopped := s.actors(sigs).Run()
	reason := "shutdown"
	if errors.Is(stopped, errUpgraded) {
		reason = "upgrade"
	} else {
		s.upg.Stop() // no successor: kill an upgrade still starting, refuse new ones
	}
	log.Info("stopping", zap.String("reason", reason), zap.String("cause", stopped.Error()))
	drained := make(chan struct{})
	defer close(drained)
	go s.signalsWhileDraining(sigs, drained)
	s.ready.SetNotReady("draining: " + reason)
	s.met.SetReady(false)
	if reason == "upgrade" {
		// The successor serves the admin socket now; with no successor this process
		// keeps answering (/readyz 503, /metrics) until its drain ends.
		s.admin.close()
	}

	// The listeners are closed (each actor's interrupt did it): only a successor, if
	// any, accepts now. Tell clients GOAWAY, spread out, and serve them until they go.
	res := s.conns.Drain(context.Background(), reason)
	s.conns.Close() // every close logged and counted before "exiting"
	s.met.Drained(res.Duration)
	s.admin.close()
	flushStart := time.Now()
	if err := s.spool.Close(); err != nil {
		log.Error("spool close failed", zap.Error(err))
	}
	s.upg.Stop()
	log.Info("exiting", zap.String("reason", reason), zap.Duration("drain", res.Duration),
		zap.Duration("spool_flush", time.Since(flushStart)), zap.Int("goaways", res.Goaways),
		zap.Int("closed_by_client", res.Closed), zap.Int("cut_at_deadline", res.Cut))
	return nil
}

// actors is the oklog/run group. Any actor returning ends the group; each interrupt
// makes its actor return promptly.
func (s *server) actors(sigs <-chan os.Signal) *run.Group {
	var g run.Group
	// Protocol listener.
	g.Add(func() error {
		return s.conns.Serve(s.ln)
	}, func(error) {
		s.ln.Close()
	})
	// Replaced by a successor: tableflip closes Exit after a successful upgrade.
	upgradeDone := make(chan struct{})
	g.Add(func() error {
		select {
		case <-s.upg.Exit():
			return errUpgraded
		case <-upgradeDone:
			return nil
		}
	}, func(error) { close(upgradeDone) })
	// Config file watch.
	if s.loader.File != "" {
		watchCtx, stopWatch := context.WithCancel(context.Background())
		g.Add(func() error {
			return config.Watch(watchCtx, s.loader.File, 200*time.Millisecond, func() { s.reload("file change") })
		}, func(error) { stopWatch() })
	}
	// Signals.
	sigCtx, stopSignals := context.WithCancel(context.Background())
	g.Add(func() error {
		return s.handleSignals(sigCtx, sigs)
	}, func(error) { stopSignals() })
	return &g
}

func (s *server) handleSignals(ctx context.Context, ch <-chan os.Signal) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case sig := <-ch:
			switch sig {
			case syscall.SIGHUP:
				// Upgrade blocks until the child is ready or failed; the group keeps
				// serving meanwhile, and a second SIGHUP is refused, not queued.
				go s.upgrade()
			case syscall.SIGUSR1:
				go s.reload("SIGUSR1")
			default:
				return signalError{sig}
			}
		}
	}
}

// signalsWhileDraining answers signals that arrive once the drain has begun: there
// is nothing left to upgrade or stop, but the operator must hear why nothing happens.
func (s *server) signalsWhileDraining(sigs <-chan os.Signal, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				s.met.Upgrade("refused")
				s.log.Warn("upgrade refused", zap.Error(errors.New("this process is draining and about to exit; signal the new process once this one has exited")))
			case syscall.SIGUSR1:
				s.log.Warn("config reload refused: this process is draining")
			default:
				s.log.Warn("already draining; the drain ends by its deadline", zap.String("signal", sig.String()))
			}
		}
	}
}

func (s *server) upgrade() {
	start := time.Now()
	s.log.Info("upgrade requested (SIGHUP): starting the new binary", zap.String("binary", os.Args[0]))
	if err := s.upg.Upgrade(); err != nil {
		if errors.Is(err, upgrade.ErrInProgress) || errors.Is(err, upgrade.ErrUpgraded) || errors.Is(err, upgrade.ErrParentDraining) {
			s.met.Upgrade("refused")
			s.log.Warn("upgrade refused", zap.Error(err))
			return
		}
		s.met.Upgrade("failure")
		s.log.Error("upgrade failed: this process keeps serving", zap.Error(err), zap.Duration("after", time.Since(start)))
		return
	}
	s.met.Upgrade("success")
	s.log.Info("upgrade succeeded: new process is ready; draining this one", zap.Duration("sighup_to_ready", time.Since(start)))
}

// settingsFrom extracts what connections obey from a configuration.
func settingsFrom(c *config.Config, version string) *conn.Settings {
	id := c.ServerID
	if id == "" {
		id, _ = os.Hostname()
	}
	tokens := make(map[string]struct{}, len(c.Auth.Tokens))
	for _, t := range c.Auth.Tokens {
		tokens[t] = struct{}{}
	}
	return &conn.Settings{
		ServerID:          id,
		Version:           version,
		HandshakeTimeout:  c.Handshake.Timeout,
		HeartbeatInterval: c.Heartbeat.Interval,
		HeartbeatTimeout:  c.HeartbeatTimeout(),
		WriteTimeout:      c.Limits.WriteTimeout,
		MaxConns:          c.Limits.MaxConns,
		MaxFrameSize:      c.Limits.MaxFrameSize,
		Tokens:            tokens,
		DrainTimeout:      c.Drain.Timeout,
		DrainSpread:       c.Drain.Spread,
	}
}
