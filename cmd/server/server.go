package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/admin"
	"github.com/hawk-agents/hawk/internal/auth"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/sdnotify"
	"github.com/hawk-agents/hawk/internal/spool"
	"github.com/hawk-agents/hawk/internal/tlsconf"
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
	spool  *spool.Spool           // nil unless destination is spool
	js     *jetstream.Destination // nil unless destination is jetstream
	dest   ingest.Destination     // the one of the two in use
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

	tokens    *auth.File        // auth.tokens_file; nil without one (auth.go)
	tls       *tlsconf.Reloader // nil without TLS (tls.go)
	tlsSeen   string            // tlsStamp of the files the last TLS reload read; under reloadMu
	tlsConfig *tls.Config       // the listener's, reading tls's material per handshake

	reloadMu sync.Mutex // one reload at a time: file watch and SIGUSR1 may coincide

	sd         sdnotify.Socket // systemd's notify socket; the zero value when not under systemd
	generation int             // 1, 2, 3… across upgrades (hawk_generation)
	control    *controlServer  // nil when control.socket is empty
	upgrades   chan upgradeRequest
	// servingDone is closed when the serving phase has ended and its listeners are
	// closed: from then on only a successor accepts.
	servingDone chan struct{}
	watch       *configWatch // nil without -config
	parentPID   int          // the process this one replaced (getppid at start), when started by an upgrade
	upgraded    atomic.Bool  // an upgrade succeeded: a successor serves
	stopping    atomic.Bool  // a stop signal ended (or is ending) the serving phase
	lastUpgrade atomic.Pointer[string]
	lastReload  atomic.Pointer[string]
}

// start opens everything the process serves with, in the upgrade contract's order
// (listeners, then what serves them, then Ready), and logs "listening". On error,
// what was opened is closed again.
func start(loader *config.Loader, cfg *config.Config) (_ *server, err error) {
	began := time.Now()
	s := &server{loader: loader, cfg: config.NewHolder(cfg), ready: admin.NewReadiness("starting"),
		sd: sdnotify.FromEnv(), upgrades: make(chan upgradeRequest), servingDone: make(chan struct{})}
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
	if s.tokens, err = openTokensFile(cfg); err != nil {
		return nil, err
	}
	settings, err := settingsFrom(cfg, version, s.tokens)
	if err != nil {
		return nil, err
	}
	if lvl, msg := authMode(cfg, settings.Auth); s.log.Core().Enabled(lvl) {
		s.log.Check(lvl, msg).Write(zap.String("tokens_file", cfg.Auth.TokensFile))
	}

	// hawk writes the PID file itself (pidfile.go): under systemd it must name the
	// new process only from the old one's exit, not from the new one's Ready.
	if s.upg, err = upgrade.New(upgrade.Options{Timeout: cfg.Upgrade.Timeout}); err != nil {
		return nil, err
	}
	undo = append(undo, s.upg.Stop)
	s.generation = generationFromEnv(s.upg.Inherited())
	s.log = s.log.With(zap.Int("generation", s.generation))
	// What this process's own upgrade execs inherits: the next generation.
	if err := os.Setenv(config.GenerationEnv, strconv.Itoa(s.generation+1)); err != nil {
		return nil, fmt.Errorf("set %s: %w", config.GenerationEnv, err)
	}
	if s.upg.Inherited() {
		s.parentPID = os.Getppid()
		s.log.Info("started by an upgrade: inheriting listening sockets from the parent process")
	}
	// Every listener before Ready: sockets inherited and not claimed by then are closed.
	var inherited bool
	if s.ln, inherited, err = s.upg.ListenInherited("protocol", cfg.Listen); err != nil {
		return nil, err
	}
	undo = append(undo, func() { s.ln.Close() })
	if s.upg.Inherited() && !inherited {
		s.log.Warn("listen is not the previous process's protocol address: opened it afresh; the previous process's socket "+
			"closes with its drain and its agents must reconnect to this address", zap.String("addr", cfg.Listen))
	}
	var controlLn net.Listener
	if cfg.Control.Socket != "" {
		mode, _ := cfg.ControlMode() // validated
		if controlLn, _, err = s.upg.ListenUnix(cfg.Control.Socket, mode); err != nil {
			return nil, err
		}
		undo = append(undo, func() { controlLn.Close() })
	}
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
	if err = s.openTLS(cfg); err != nil {
		return nil, err
	}
	s.withTLS(settings)
	if s.dest, err = s.openDestination(cfg); err != nil {
		return nil, err
	}
	undo = append(undo, s.closeDestination)
	if s.dedup, err = dedup.New(dedup.Options{Window: cfg.Dedup.Window, MaxClients: cfg.Dedup.MaxClients}); err != nil {
		return nil, err
	}
	s.met.Dedup(s.dedup)
	if s.js == nil {
		s.startDedup(cfg, began)
	} else {
		// No spool to rebuild from: the stream's duplicate window (Nats-Msg-Id)
		// catches resends across processes; the table still answers them here.
		s.dedup.SetReady()
		s.stopDedup = func() {}
	}
	undo = append(undo, s.stopDedup)
	s.conns = conn.New(conn.Options{
		Settings:    settings,
		Destination: s.dest,
		Logger:      s.log.Named("conn"),
		Observer:    s.met.Conn(),
		Dedup:       s.dedup,
	})
	undo = append(undo, s.conns.Close)
	s.met.ReadConns(s.conns)
	// The legacy listeners exist before the handoff is claimed: the ready it sends
	// names them, and adopted legacy connections go to them.
	if err = s.startLegacy(); err != nil {
		return nil, err
	}
	undoHandoff, err := s.claimHandoff()
	if err != nil {
		return nil, err
	}
	undo = append(undo, undoHandoff)
	// The admin socket is served before Ready: from Ready on, the parent may close
	// its copy, and a request must find someone answering.
	if adminLn != nil {
		s.admin = startAdmin(adminLn, s.adminSource(), s.ready, s.log.Named("admin"))
		undo = append(undo, s.admin.close)
	}
	if controlLn != nil {
		s.startControl(controlLn)
		undo = append(undo, s.control.closeListener)
	}
	// The config watch is armed before Ready, so that no save after this process
	// reports ready is missed; one reload once it is armed catches a save made
	// between loading the file and arming the watch.
	if loader.File != "" {
		if s.watch, err = s.startWatch(loader.File); err != nil {
			return nil, err
		}
		undo = append(undo, s.watch.stop)
		s.reloadQuiet("watch armed", true)
	}
	if cfg.Dedup.BeforeReady {
		<-s.dedup.Ready() // the rebuild and a first pass over an upgrading parent's segments
	}
	s.met.SetGeneration(s.generation)
	if err := s.upg.Ready(); err != nil {
		return nil, err
	}
	s.pidFileAtReady()
	s.ready.SetReady()
	s.met.SetReady(true)
	if s.upg.Inherited() {
		s.met.Upgrade("success") // counted here: the parent's metrics go with it
		sum := time.Now().UTC().Format(time.RFC3339) + " success: this process (generation " + strconv.Itoa(s.generation) + ") took over"
		s.lastUpgrade.Store(&sum)
	}
	// The new process of an upgrade says READY=1 too, but not MAINPID=: the old
	// process stays the main process until it exits (pidfile.go says why).
	s.notify(sdnotify.Ready, sdnotify.Status(s.servingStatus()))
	s.log.Info("listening", zap.String("addr", s.ln.Addr().String()), zap.String("destination", cfg.Destination), zap.String("spool_dir", cfg.Spool.Dir),
		zap.Bool("inherited", inherited), zap.Duration("startup", time.Since(began)))
	if controlLn != nil {
		s.log.Info("control socket listening", zap.String("path", cfg.Control.Socket), zap.String("mode", cfg.Control.Mode))
	}
	s.logLegacyListening()
	if s.admin != nil {
		s.log.Info("admin listening", zap.String("addr", adminLn.Addr().String()), zap.Bool("pprof", cfg.Admin.Pprof))
	}
	return s, nil
}
