package daemon

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/admin"
	"github.com/hawk-agents/hawk/internal/auth"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/control"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/fdtable"
	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/legacyset"
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/notify"
	"github.com/hawk-agents/hawk/internal/pidfile"
	"github.com/hawk-agents/hawk/internal/reload"
	"github.com/hawk-agents/hawk/internal/sdnotify"
	"github.com/hawk-agents/hawk/internal/ticketkeys"
	"github.com/hawk-agents/hawk/internal/udp"
	"github.com/hawk-agents/hawk/internal/upgrade"
)

// start opens everything the process serves with, in the upgrade contract's order
// (listeners, then what serves them, then Ready), and logs "listening". On error,
// what was opened is closed again.
func start(o Options) (_ *Daemon, err error) {
	began := time.Now()
	cfg := o.Config
	d := &Daemon{version: o.Version, cfg: config.NewHolder(cfg), ready: admin.NewReadiness("starting"),
		up: upgrades{requests: make(chan upgradeRequest), servingDone: make(chan struct{})}}
	// Before anything else: a SIGHUP's default action is to kill the process. The
	// channel stays registered until exit, so that no signal ever falls back to its
	// default action between the serving and the draining phase.
	d.sigs = make(chan os.Signal, 4)
	signal.Notify(d.sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGINT, syscall.SIGTERM)
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
	undo = append(undo, func() { signal.Stop(d.sigs) })

	level, err := zap.ParseAtomicLevel(cfg.Log.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	d.log = newLogger(cfg.Log.Format, level, o.Version)
	tokens, err := reload.OpenTokensFile(cfg)
	if err != nil {
		return nil, err
	}
	settings, err := reload.SettingsFrom(cfg, o.Version, tokens)
	if err != nil {
		return nil, err
	}
	if lvl, msg := reload.AuthMode(cfg, settings.Auth); d.log.Core().Enabled(lvl) {
		d.log.Check(lvl, msg).Write(zap.String("tokens_file", cfg.Auth.TokensFile))
	}

	// hawk writes the PID file itself (internal/pidfile): under systemd it must
	// name the new process only from the old one's exit, not from the new one's Ready.
	upg, err := upgrade.New(upgrade.Options{Timeout: cfg.Upgrade.Timeout})
	if err != nil {
		return nil, err
	}
	d.upg = upg
	undo = append(undo, upg.Stop)
	d.generation = generationFromEnv(upg.Inherited())
	d.log = d.log.With(zap.Int("generation", d.generation))
	// Room in the descriptor table for every connection the limit allows, grown
	// beside the start and held for the process's life (internal/fdtable): no
	// accept, adoption or upgrade then waits for the kernel to grow the table.
	d.fds = fdtable.Reserve(fdtable.Want(cfg.Limits.MaxConns), d.reserved(cfg.Limits.MaxConns))
	undo = append(undo, func() { d.fds.Close() })
	// What this process's own upgrade execs inherits: the next generation.
	if err := os.Setenv(config.GenerationEnv, strconv.Itoa(d.generation+1)); err != nil {
		return nil, fmt.Errorf("set %s: %w", config.GenerationEnv, err)
	}
	sd := sdnotify.FromEnv()
	d.notify = notify.New(notify.Options{Socket: sd, Log: d.log, Count: func() int { return d.conns.Count() },
		Generation: d.generation, Version: o.Version, LastUpgrade: d.up.lastUpgrade})
	d.pidfile = pidfile.New(func() string { return d.cfg.Load().Upgrade.PIDFile }, sd.Enabled(), d.log)
	if upg.Inherited() {
		d.parentPID = os.Getppid()
		d.log.Info("started by an upgrade: inheriting listening sockets from the parent process")
	}
	// Every listener before Ready: sockets inherited and not claimed by then are closed.
	var inherited bool
	if d.ln, inherited, err = upg.ListenInherited("protocol", cfg.Listen); err != nil {
		return nil, err
	}
	undo = append(undo, func() { d.ln.Close() })
	if upg.Inherited() && !inherited {
		d.log.Warn("listen is not the previous process's protocol address: opened it afresh; the previous process's socket "+
			"closes with its drain and its agents must reconnect to this address", zap.String("addr", cfg.Listen))
	}
	var controlLn net.Listener
	if cfg.Control.Socket != "" {
		mode, _ := cfg.ControlMode() // validated
		if controlLn, _, err = upg.ListenUnix(cfg.Control.Socket, mode); err != nil {
			return nil, err
		}
		undo = append(undo, func() { controlLn.Close() })
	}
	var adminLn net.Listener
	if cfg.Admin.Addr != "" {
		if adminLn, err = upg.Listen("admin", cfg.Admin.Addr); err != nil {
			return nil, err
		}
		undo = append(undo, func() { adminLn.Close() })
	}
	if d.legacy, err = legacyset.Listen(cfg.Legacy.Listeners, upg.Listen, d.log); err != nil {
		return nil, err
	}
	undo = append(undo, d.legacy.Close)
	if d.udp, err = udp.Listen(cfg.UDP.Listeners, upg.ListenPacket, d.log); err != nil {
		return nil, err
	}
	undo = append(undo, d.udp.Close)

	d.met = metrics.New(o.Version, func() int { return d.conns.Count() })
	// The parent's session ticket keys, so that its tickets resume here.
	tickets, err := upg.InheritedFile(ticketkeys.Name)
	if err != nil {
		d.log.Warn("TLS session ticket keys of the previous process not inherited", zap.Error(err))
	}
	tlsFiles, err := reload.OpenTLS(cfg, tickets, d.met, d.log)
	if err != nil {
		return nil, err
	}
	tlsFiles.Complete(settings)
	if err = d.dest.open(cfg, d.met, d.ready, d.log); err != nil {
		return nil, err
	}
	undo = append(undo, func() { d.dest.close(d.log) })
	if d.dedup, err = dedup.New(dedup.Options{Window: cfg.Dedup.Window, MaxClients: cfg.Dedup.MaxClients}); err != nil {
		return nil, err
	}
	d.met.Dedup(d.dedup)
	if d.dest.js == nil {
		d.startDedup(cfg, began)
		d.dest.spool.Retain(d.dedup.Ready())
	} else {
		// No spool to rebuild from: the stream's duplicate window (Nats-Msg-Id)
		// catches resends across processes; the table still answers them here.
		d.dedup.SetReady()
		d.stopDedup = func() {}
		d.dedupDone = make(chan struct{})
		close(d.dedupDone)
	}
	undo = append(undo, d.stopDedup)
	uploads, err := d.startUploads(cfg)
	if err != nil {
		return nil, err
	}
	if d.stopUploads != nil {
		undo = append(undo, d.stopUploads)
	}
	proxyFrom, _ := cfg.ProxyPrefixes() // validated
	d.conns = conn.New(conn.Options{
		Settings:       settings,
		Destination:    d.dest.dest,
		Logger:         d.log.Named("conn"),
		Observer:       d.met.Conn(),
		Dedup:          d.dedup,
		Uploads:        uploads,
		UploadInFlight: int(cfg.Uploads.MaxInFlight),
		ProxyFrom:      proxyFrom,
	})
	undo = append(undo, d.conns.Close)
	tlsFiles.Trust(d.conns) // before claimHandoff: adopted connections are checked against it
	d.met.ReadConns(d.conns)
	// The legacy listeners exist before the handoff is claimed: the ready it sends
	// names them, and adopted legacy connections go to them.
	if err = d.legacy.Start(legacyset.Options{Destination: d.dest.dest, Metrics: d.met, Conns: d.conns}); err != nil {
		return nil, err
	}
	// The UDP sockets are read from here on, before Ready: after an upgrade the
	// parent reads the same sockets until it exits, and each datagram goes to one.
	// Report listeners check credentials as the connections do, under the same
	// settings (a reload changes them).
	creds := func() (*auth.Set, bool) { s := d.conns.Settings(); return s.Auth, s.AuthOpen }
	if err = d.udp.Start(d.dest.dest, d.met.UDP, creds, d.dedup); err != nil {
		return nil, err
	}
	undo = append(undo, d.udp.Stop) // before the destination closes: what was read is stored
	undoHandoff, err := d.claimHandoff()
	if err != nil {
		return nil, err
	}
	undo = append(undo, undoHandoff)
	d.reload = reload.New(reload.Options{Loader: o.Loader, Config: d.cfg, Version: o.Version, TLS: tlsFiles, Tokens: tokens, Metrics: d.met, Log: d.log,
		Target: reload.Target{Level: level, Spool: d.dest.spool, Dedup: d.dedup, Conns: d.conns, Legacy: d.legacy, UDP: d.udp, Log: d.log}})
	// The admin socket is served before Ready: from Ready on, the parent may close
	// its copy, and a request must find someone answering.
	if adminLn != nil {
		d.admin = admin.Serve(adminLn, d.adminSource(), d.ready, d.log.Named("admin"))
		undo = append(undo, d.admin.Close)
	}
	if controlLn != nil {
		d.control = control.Serve(controlLn, controlHandler{d}, d.log)
		undo = append(undo, d.control.Close)
	}
	// The config watch is armed before Ready, so that no save after this process
	// reports ready is missed (StartWatch reloads once it is armed).
	if d.watch, err = d.reload.StartWatch(); err != nil {
		return nil, err
	}
	if d.watch != nil {
		undo = append(undo, d.watch.Stop)
	}
	if cfg.Dedup.BeforeReady {
		<-d.dedup.Ready() // the rebuild and a first pass over an upgrading parent's segments
	}
	d.met.SetGeneration(d.generation)
	if err := upg.Ready(); err != nil {
		return nil, err
	}
	d.pidfile.AtReady(upg.Inherited())
	d.ready.SetReady()
	d.met.SetReady(true)
	if upg.Inherited() {
		d.met.Upgrade("success") // counted here: the parent's metrics go with it
		sum := time.Now().UTC().Format(time.RFC3339) + " success: this process (generation " + strconv.Itoa(d.generation) + ") took over"
		d.up.last.Store(&sum)
	}
	// The new process of an upgrade says READY=1 too, but not MAINPID=: the old
	// process stays the main process until it exits (internal/pidfile says why).
	d.notify.Send(sdnotify.Ready, sdnotify.Status(d.notify.ServingStatus()))
	d.log.Info("listening", append([]zap.Field{zap.String("addr", d.ln.Addr().String()), zap.String("destination", cfg.Destination), zap.String("spool_dir", cfg.Spool.Dir),
		zap.Bool("inherited", inherited), zap.Duration("startup", time.Since(began))}, startTimes(o.Began, began, upg.Inherited())...)...)
	if controlLn != nil {
		d.log.Info("control socket listening", zap.String("path", cfg.Control.Socket), zap.String("mode", cfg.Control.Mode))
	}
	d.legacy.LogListening(d.log)
	d.udp.LogListening(d.log)
	if d.admin != nil {
		d.log.Info("admin listening", zap.String("addr", adminLn.Addr().String()), zap.Bool("pprof", cfg.Admin.Pprof))
	}
	return d, nil
}

// generationFromEnv is this process's generation: 1 when started by hand or by
// systemd, the parent's plus one (passed in config.GenerationEnv) after an upgrade.
func generationFromEnv(inherited bool) int {
	if !inherited {
		return 1
	}
	g, err := strconv.Atoi(os.Getenv(config.GenerationEnv))
	if err != nil || g < 2 {
		return 2 // a parent too old to pass it on: at least the second
	}
	return g
}

// heapFloorWait bounds how long the new process's collector stays held after
// the handoff for its heap to reach the parent's heap goal (handoff.ReceiverOptions).
const heapFloorWait = 5 * time.Second

// claimHandoff, before Ready, builds both sides of the handoff over every kind of
// connection this process holds, claims the channel a parent passed and starts
// receiving its connections.
func (d *Daemon) claimHandoff() (undo func(), err error) {
	met := d.met.Handoff()
	d.out = handoff.NewSender(append([]handoff.Group{d.conns}, d.legacy.Groups()...), met, d.log)
	d.in = handoff.NewReceiver(handoff.ReceiverOptions{
		Adopters: append([]handoff.Adopter{d.conns}, d.legacy.Adopters()...),
		Reject:   d.conns.Reject,
		Gate:     d.dedup.Ready(),
		Counter:  met,
		Log:      d.log,
		// Under load the heap reaches the parent's goal within a second or two
		// of the handoff; a quiet one gives the operator's GOGC back after this.
		HeapFloorWait: heapFloorWait,
	})
	return d.in.Claim(d.upg.InheritedFile)
}

func (d *Daemon) adminSource() admin.Source {
	return admin.Source{
		Gatherer:    d.met.Registry,
		Connections: func(after uint64, limit int) []conn.Info { return d.legacy.Connections(d.conns, after, limit) },
		Config:      func() map[string]any { return d.cfg.Load().Redacted() },
		Pprof:       func() bool { return d.cfg.Load().Admin.Pprof },
	}
}

// reserved logs how the descriptor table's reservation went: a warning when the
// descriptor limit is below limits.max_conns (connections past it are refused
// by accept, whatever the limit says), debug otherwise.
func (d *Daemon) reserved(maxConns int) func(fdtable.Result) {
	log := d.log // the goroutine that calls back must not read d.log as start sets it
	return func(r fdtable.Result) {
		fields := []zap.Field{zap.Duration("took", r.Took), zap.Int("limits.max_conns", maxConns)}
		switch {
		case r.Err != nil:
			log.Debug("descriptor table not reserved: it grows as connections come", append(fields, zap.Error(r.Err))...)
		case r.Capped && r.Size < maxConns: // capped: the table's size is the limit
			log.Warn("the descriptor limit (RLIMIT_NOFILE; systemd LimitNOFILE) is below limits.max_conns: connections past it are refused; "+
				"raise the limit or lower limits.max_conns", append(fields, zap.Int("descriptor_limit", r.Size))...)
		default:
			log.Debug("descriptor table reserved", append(fields, zap.Int("size", r.Size))...)
		}
	}
}
