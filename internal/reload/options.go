package reload

import (
	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/auth"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/spool"
)

// Target is what a reload changes in the running process.
type Target struct {
	Level  zap.AtomicLevel
	Spool  *spool.Spool // nil unless destination is spool
	Dedup  *dedup.Table
	Conns  *conn.Manager
	Legacy LegacyListeners // nil: no legacy listener
	UDP    UDPListeners    // nil: no UDP listener
	Log    *zap.Logger
}

// LegacyListeners is the running legacy listeners (legacyset.Set).
type LegacyListeners interface {
	// Apply gives each running listener its new live settings.
	Apply(next []config.LegacyListener)
}

// UDPListeners is the running UDP listeners (udp.Set).
type UDPListeners interface {
	// Apply gives each running listener its new live settings.
	Apply(next []config.UDPListener)
}

// A live option is what a changed live key does to the running server, as in
// nats-server's reload.go: each kind of change is a type that applies itself.
// Several keys may share one option (every connection setting is one conns.Apply);
// a reload applies each option once, however many of its keys changed.
type liveOption interface {
	apply(t *Target, r *reloading)
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
	"spool.max_bytes":       spoolRetentionOption{},
	"spool.max_age":         spoolRetentionOption{},
	"spool.cache_bytes":     spoolCacheOption{},
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

// partlyLiveOptions are the options of restart-only keys of which a reload may
// change some parts (config.Diff reports those as live changes of the key, and
// the rest as restart-only changes, which Prepare refuses).
var partlyLiveOptions = map[string]liveOption{
	"legacy.listeners": legacyListenersOption{},
	"udp.listeners":    udpListenersOption{},
}

// logLevelOption: the logger's level is an AtomicLevel.
type logLevelOption struct{}

func (logLevelOption) apply(t *Target, r *reloading) {
	// Prepare validated the level, so this cannot fail; if it ever did, say so.
	if err := t.Level.UnmarshalText([]byte(r.next.Log.Level)); err != nil {
		t.Log.Error("log.level not applied", zap.Error(err))
	}
}

// spoolFsyncOption: from the spool's next batch on.
type spoolFsyncOption struct{}

func (spoolFsyncOption) apply(t *Target, r *reloading) {
	if t.Spool != nil { // destination jetstream: nothing to apply
		t.Spool.SetFsync(r.next.Spool.Fsync == config.FsyncAlways)
	}
}

// spoolSegmentSizeOption: from the spool's next rotation check on.
type spoolSegmentSizeOption struct{}

func (spoolSegmentSizeOption) apply(t *Target, r *reloading) {
	if t.Spool != nil {
		t.Spool.SetSegmentSize(r.next.Spool.SegmentSize)
	}
}

// spoolRetentionOption: at once (a retention pass starts).
type spoolRetentionOption struct{}

func (spoolRetentionOption) apply(t *Target, r *reloading) {
	if t.Spool != nil {
		t.Spool.SetRetention(r.next.Spool.MaxBytes, r.next.Spool.MaxAge)
	}
}

// spoolCacheOption: at once (segments past the new size leave the page cache).
type spoolCacheOption struct{}

func (spoolCacheOption) apply(t *Target, r *reloading) {
	if t.Spool != nil {
		t.Spool.SetCacheBytes(r.next.Spool.CacheBytes)
	}
}

// dedupMaxClientsOption: from the next client the table has not seen on.
type dedupMaxClientsOption struct{}

func (dedupMaxClientsOption) apply(t *Target, r *reloading) {
	t.Dedup.SetMaxClients(r.next.Dedup.MaxClients)
}

// connSettingsOption: connections see one atomic snapshot of their settings;
// those holding a removed token are closed.
type connSettingsOption struct{}

func (connSettingsOption) apply(t *Target, r *reloading) {
	r.revoked = t.Conns.Apply(r.settings)
}

// readLiveOption: the value is read from the configuration in force whenever it
// is used (admin.pprof, on every request), so storing the new configuration is
// all it takes.
type readLiveOption struct{}

func (readLiveOption) apply(*Target, *reloading) {}

// legacyListenersOption: each running listener takes its new allow, idle_timeout
// and max_frame_size (new connections); connections from networks no longer
// allowed are closed.
type legacyListenersOption struct{}

func (legacyListenersOption) apply(t *Target, r *reloading) {
	if t.Legacy != nil {
		t.Legacy.Apply(r.next.Legacy.Listeners)
	}
}

// udpListenersOption: each running UDP listener takes its new allow, reply and
// max_pending, from its next datagram on.
type udpListenersOption struct{}

func (udpListenersOption) apply(t *Target, r *reloading) {
	if t.UDP != nil {
		t.UDP.Apply(r.next.UDP.Listeners)
	}
}
