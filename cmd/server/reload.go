package main

import (
	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
)

// reload rebuilds the configuration from its sources, validates and diffs it, and
// applies it only if every change can be made in a running process. Nothing is
// touched on failure; one error line names every offending key.
func (s *server) reload(trigger string) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.loader.File == "" {
		s.log.Info("config reload: no config file was given (-config); nothing to reload", zap.String("trigger", trigger))
		return
	}
	running := s.cfg.Load()
	next, changes, err := config.Prepare(s.loader, running)
	if err != nil {
		s.met.Reload(false)
		s.log.Error("config reload rejected; the running configuration is unchanged", zap.String("trigger", trigger),
			zap.String("file", s.loader.File), zap.Error(err))
		return
	}
	if len(changes) == 0 {
		s.met.Reload(true)
		s.log.Info("config reload: no changes", zap.String("trigger", trigger))
		return
	}
	// Connections see one atomic snapshot of their settings; the spool and the
	// logger take their own values.
	if next.Log.Level != running.Log.Level {
		s.level.UnmarshalText([]byte(next.Log.Level)) // validated by Prepare
	}
	s.spool.SetFsync(next.Spool.Fsync == "always")
	s.spool.SetSegmentSize(next.Spool.SegmentSize)
	revoked := s.conns.Apply(settingsFrom(next, version))
	s.cfg.Store(next)
	for _, c := range changes {
		s.log.Info("config changed", zap.String("key", c.Key), zap.String("old", c.Old), zap.String("new", c.New))
	}
	s.met.Reload(true)
	s.log.Info("config reloaded", zap.String("trigger", trigger), zap.Int("changes", len(changes)), zap.Int("connections_revoked", revoked))
}
