package main

import (
	"fmt"
	"github.com/hawk-agents/hawk/internal/auth"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
)

// A live option is what a changed live key does to the running server, as in
// nats-server's reload.go: each kind of change is a type that applies itself.
// Several keys may share one option (every connection setting is one conns.Apply);
// a reload applies each option once, however many of its keys changed.
type liveOption interface {
	apply(s *server, r *reloading)
}

// reloading is one reload being applied: the new configuration, what derives from
// it, and what applying did (for the "config reloaded" line).
type reloading struct {
	next     *config.Config
	settings *conn.Settings // the connections' part of next
	tokens   *auth.File     // next's auth.tokens_file, opened again when the name changed
	revoked  int            // connections closed because their credential no longer covers them
}

// liveOptions maps every live key to its option. A live key missing here would be
// accepted by a reload and then ignored; TestEveryLiveKeyHasAnOption guards it.
var liveOptions = map[string]liveOption{
	"log.level":             logLevelOption{},
	"spool.fsync":           spoolFsyncOption{},
	"spool.segment_size":    spoolSegmentSizeOption{},
	"auth.tokens":           connSettingsOption{},
	"auth.credentials":      connSettingsOption{},
	"auth.tokens_file":      connSettingsOption{},
	"auth.open":             connSettingsOption{},
	"heartbeat.interval":    connSettingsOption{},
	"heartbeat.timeout":     connSettingsOption{},
	"handshake.timeout":     connSettingsOption{},
	"limits.max_conns":      connSettingsOption{},
	"limits.handshake_rate": connSettingsOption{},
	"limits.max_frame_size": connSettingsOption{},
	"limits.max_in_flight":  connSettingsOption{},
	"limits.write_timeout":  connSettingsOption{},
	"limits.frame_timeout":  connSettingsOption{},
	"drain.timeout":         connSettingsOption{},
	"drain.spread":          connSettingsOption{},
	"admin.pprof":           readLiveOption{},
	// Read from the configuration at the moment of each upgrade.
	"upgrade.handoff":         readLiveOption{},
	"upgrade.handoff_timeout": readLiveOption{},
	"dedup.max_clients":       dedupMaxClientsOption{},
	"tls.client_id_from":      connSettingsOption{},
	"tls.expiry_goaway":       connSettingsOption{},
}

// logLevelOption: the logger's level is an AtomicLevel.
type logLevelOption struct{}

func (logLevelOption) apply(s *server, r *reloading) {
	// Prepare validated the level, so this cannot fail; if it ever did, say so.
	if err := s.level.UnmarshalText([]byte(r.next.Log.Level)); err != nil {
		s.log.Error("log.level not applied", zap.Error(err))
	}
}

// spoolFsyncOption: from the spool's next batch on.
type spoolFsyncOption struct{}

func (spoolFsyncOption) apply(s *server, r *reloading) {
	if s.spool != nil { // destination jetstream: nothing to apply
		s.spool.SetFsync(r.next.Spool.Fsync == config.FsyncAlways)
	}
}

// spoolSegmentSizeOption: from the spool's next rotation check on.
type spoolSegmentSizeOption struct{}

func (spoolSegmentSizeOption) apply(s *server, r *reloading) {
	if s.spool != nil {
		s.spool.SetSegmentSize(r.next.Spool.SegmentSize)
	}
}

// dedupMaxClientsOption: from the next client the table has not seen on.
type dedupMaxClientsOption struct{}

func (dedupMaxClientsOption) apply(s *server, r *reloading) {
	s.dedup.SetMaxClients(r.next.Dedup.MaxClients)
}

// connSettingsOption: connections see one atomic snapshot of their settings;
// those holding a removed token are closed.
type connSettingsOption struct{}

func (connSettingsOption) apply(s *server, r *reloading) {
	r.revoked = s.conns.Apply(r.settings)
}

// readLiveOption: the value is read from the configuration in force whenever it
// is used (admin.pprof, on every request), so storing the new configuration is
// all it takes.
type readLiveOption struct{}

func (readLiveOption) apply(*server, *reloading) {}

// reloadResult is what a reload did, for hawk reload and hawk status.
type reloadResult struct {
	err     error    // the rejection; nil when applied (or nothing to apply)
	changes []string // "key: old -> new", as logged
	none    string   // why nothing was done, when err is nil and changes empty
}

func (r reloadResult) summary() string {
	switch {
	case r.err != nil:
		return "config reload rejected; the running configuration is unchanged: " + r.err.Error()
	case len(r.changes) == 0:
		return "config reload: " + r.none
	}
	return fmt.Sprintf("config reloaded: %d changed: %s", len(r.changes), strings.Join(r.changes, "; "))
}

// reload rebuilds the configuration from its sources, validates and diffs it, and
// applies it only if every change can be made in a running process. Nothing is
// touched on failure; one error line names every offending key.
func (s *server) reload(trigger string) reloadResult {
	res := s.reloadQuiet(trigger, false)
	sum := time.Now().UTC().Format(time.RFC3339) + " " + res.summary()
	s.lastReload.Store(&sum)
	return res
}

// reloadQuiet is reload; with quiet, a reload that finds nothing changed is neither
// logged nor counted (the one the file watch makes when it is armed).
func (s *server) reloadQuiet(trigger string, quiet bool) reloadResult {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	// Every reload (SIGUSR1, hawk reload, a config file change) reads the TLS files
	// again, whatever the configuration says.
	s.reloadTLS(trigger)
	s.reloadTokensFile(trigger)
	if s.loader.File == "" {
		s.log.Info("config reload: no config file was given (-config); nothing to reload", zap.String("trigger", trigger))
		return reloadResult{none: "no config file was given (-config); nothing to reload"}
	}
	running := s.cfg.Load()
	next, changes, err := config.Prepare(s.loader, running)
	r := &reloading{next: next, tokens: s.tokens}
	if err == nil && next.Auth.TokensFile != running.Auth.TokensFile {
		r.tokens, err = openTokensFile(next)
	}
	if err == nil {
		// Derived before anything is applied: the hostname (an empty server_id) and
		// the tokens file are what Prepare cannot vouch for.
		r.settings, err = settingsFrom(next, version, r.tokens)
		if err == nil {
			s.withTLS(r.settings)
		}
	}
	if err != nil {
		s.met.Reload(false)
		s.log.Error("config reload rejected; the running configuration is unchanged", zap.String("trigger", trigger),
			zap.String("file", s.loader.File), zap.Error(err))
		return reloadResult{err: err}
	}
	if len(changes) == 0 {
		if !quiet {
			s.met.Reload(true)
			s.log.Info("config reload: no changes", zap.String("trigger", trigger))
		}
		return reloadResult{none: "no changes in " + s.loader.File}
	}
	applied := make(map[liveOption]bool, len(changes))
	for _, c := range changes { // Prepare refused restart-only keys: all of these are live
		opt, ok := liveOptions[c.Key]
		if !ok {
			opt, ok = partlyLiveOptions[c.Key] // legacy.listeners: its live parts
		}
		if !ok {
			s.log.Error("config reload: live key has no option; its new value is stored but not applied", zap.String("key", c.Key))
			continue
		}
		if !applied[opt] {
			applied[opt] = true
			opt.apply(s, r)
		}
	}
	s.cfg.Store(next)
	s.tokens = r.tokens
	res := reloadResult{}
	for _, c := range changes {
		s.log.Info("config changed", zap.String("key", c.Key), zap.String("old", c.Old), zap.String("new", c.New))
		res.changes = append(res.changes, c.Key+": "+c.Old+" -> "+c.New)
	}
	s.met.Reload(true)
	s.log.Info("config reloaded", zap.String("trigger", trigger), zap.Int("changes", len(changes)), zap.Int("connections_revoked", r.revoked))
	return res
}
