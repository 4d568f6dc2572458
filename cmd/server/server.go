package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/admin"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/spool"
	"github.com/hawk-agents/hawk/internal/upgrade"
)

// server is the running daemon: what start opens, the serving phase runs and the
// draining phase closes, each resource once.
type server struct {
	loader *config.Loader
	cfg    *config.Holder
	level  zap.AtomicLevel
	log    *zap.Logger
	sigs   chan os.Signal // HUP, USR1, INT, TERM for the whole life of the process
	upg    *upgrade.Upgrader
	spool  *spool.Spool
	dedup  *dedup.Table
	// stopDedup stops following the previous process's spool (startDedup).
	stopDedup func()
	conns     *conn.Manager
	ln        net.Listener
	admin     *adminServer // nil when admin.addr is empty
	met       *metrics.Metrics
	ready     *admin.Readiness
	legacy    []*legacyListener // legacy.listeners, in configuration order
	handoff   handoffSide       // established connections across an upgrade (handoff.go)

	reloadMu sync.Mutex // one reload at a time: file watch and SIGUSR1 may coincide
}

// start opens everything the process serves with, in the upgrade contract's order
// (listeners, then what serves them, then Ready), and logs "listening". On error,
// what was opened is closed again.
func start(loader *config.Loader, cfg *config.Config) (_ *server, err error) {
	began := time.Now()
	s := &server{loader: loader, cfg: config.NewHolder(cfg), ready: admin.NewReadiness("starting")}
	// Before anything else: a SIGHUP's default action is to kill the process. The
	// channel stays registered until exit, so that no signal ever falls back to its
	// default action between the serving and the draining phase.
	s.sigs = make(chan os.Signal, 4)
	signal.Notify(s.sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGINT, syscall.SIGTERM)
	// A log pipe whose reader went away (a restarted log collector, the parent's
	// pipe after an upgrade) must cost log lines, not 50,000 connections: without
	// this, a write to a broken stderr kills a Go program with SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)

	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	undo = append(undo, func() { signal.Stop(s.sigs) })

	if s.level, err = zap.ParseAtomicLevel(cfg.Log.Level); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	s.log = newLogger(cfg.Log.Format, s.level)
	settings, err := settingsFrom(cfg, version)
	if err != nil {
		return nil, err
	}

	if s.upg, err = upgrade.New(upgrade.Options{PIDFile: cfg.Upgrade.PIDFile, Timeout: cfg.Upgrade.Timeout}); err != nil {
		return nil, err
	}
	undo = append(undo, s.upg.Stop)
	if s.upg.Inherited() {
		s.log.Info("started by an upgrade: inheriting listening sockets from the parent process")
	}
	// Every listener before Ready: sockets inherited and not claimed by then are closed.
	if s.ln, err = s.upg.Listen("protocol", cfg.Listen); err != nil {
		return nil, err
	}
	undo = append(undo, func() { s.ln.Close() })
	var adminLn net.Listener
	if cfg.Admin.Addr != "" {
		if adminLn, err = s.upg.Listen("admin", cfg.Admin.Addr); err != nil {
			return nil, err
		}
		undo = append(undo, func() { adminLn.Close() })
	}
	undo = append(undo, s.closeLegacy)
	if err = s.listenLegacy(cfg); err != nil {
		return nil, err
	}

	s.met = metrics.New(version, func() int { return s.conns.Count() })
	s.spool, err = spool.Open(spool.Options{
		Dir:         cfg.Spool.Dir,
		Fsync:       cfg.Spool.Fsync == config.FsyncAlways,
		SegmentSize: cfg.Spool.SegmentSize,
		Logger:      s.log.Named("spool"),
		Observer:    s.met.Spool(),
	})
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { s.spool.Close() })
	if s.dedup, err = dedup.New(dedup.Options{Window: cfg.Dedup.Window, MaxClients: cfg.Dedup.MaxClients}); err != nil {
		return nil, err
	}
	s.met.Dedup(s.dedup)
	s.startDedup(cfg, began)
	undo = append(undo, s.stopDedup)
	s.conns = conn.New(conn.Options{
		Settings:    settings,
		Destination: s.spool,
		Logger:      s.log.Named("conn"),
		Observer:    s.met.Conn(),
		Dedup:       s.dedup,
	})
	undo = append(undo, s.conns.Close)
	s.met.ReadConns(s.conns)
	undoHandoff, err := s.claimHandoff()
	if err != nil {
		return nil, err
	}
	undo = append(undo, undoHandoff)
	if err = s.startLegacy(); err != nil {
		return nil, err
	}
	// The admin socket is served before Ready: from Ready on, the parent may close
	// its copy, and a request must find someone answering.
	if adminLn != nil {
		s.admin = startAdmin(adminLn, s.adminSource(), s.ready, s.log.Named("admin"))
		undo = append(undo, s.admin.close)
	}
	if cfg.Dedup.BeforeReady {
		<-s.dedup.Ready() // the rebuild and a first pass over an upgrading parent's segments
	}
	if err := s.upg.Ready(); err != nil {
		return nil, err
	}
	s.ready.SetReady()
	s.met.SetReady(true)
	s.log.Info("listening", zap.String("addr", s.ln.Addr().String()), zap.String("spool_dir", cfg.Spool.Dir),
		zap.Bool("inherited", s.upg.Inherited()), zap.Duration("startup", time.Since(began)))
	s.logLegacyListening()
	if s.admin != nil {
		s.log.Info("admin listening", zap.String("addr", adminLn.Addr().String()), zap.Bool("pprof", cfg.Admin.Pprof))
	}
	return s, nil
}
