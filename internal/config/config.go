package config

import (
	_ "embed"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap/zapcore"
)

// Config is one complete, typed configuration. It is immutable once Load returns it:
// nobody writes to it (the Tokens slice included); a reload builds a new one and swaps
// the pointer (see Holder).
type Config struct {
	Listen    string // listen: protocol listener address (restart-only)
	ServerID  string // server_id: "" means the hostname, see EffectiveServerID (restart-only)
	Log       Log
	Auth      Auth
	Heartbeat Heartbeat
	Handshake Handshake
	Limits    Limits
	Spool     Spool
	Drain     Drain
	Upgrade   Upgrade
	Admin     Admin
}

// Log is the log.* section.
type Log struct {
	Level  string // log.level: debug|info|warn|error (live)
	Format string // log.format: console|json (restart-only)
}

// Auth is the auth.* section.
type Auth struct {
	// Tokens (auth.tokens) are the accepted tokens; empty means an open server. Secret:
	// never log them; Redacted and Diff replace them by a count.
	Tokens Secrets
}

// Secrets is a list of secret strings. It ranges and indexes like a []string, but
// printing it (%v, %+v, %#v, also as a field of Config) or encoding it as JSON (zap.Any)
// shows "[redacted N tokens]" only.
type Secrets []string

func (s Secrets) String() string   { return redact(s) }
func (s Secrets) GoString() string { return redact(s) }

// MarshalJSON encodes the redaction, never the values.
func (s Secrets) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(redact(s))), nil }

// Heartbeat is the heartbeat.* section.
type Heartbeat struct {
	Interval time.Duration // heartbeat.interval: announced in WELCOME (live, new connections)
	Timeout  time.Duration // heartbeat.timeout: 0 means 3 × Interval; use Config.HeartbeatTimeout (live)
}

// Handshake is the handshake.* section.
type Handshake struct {
	Timeout time.Duration // handshake.timeout: HELLO must arrive within (live)
}

// Limits is the limits.* section.
type Limits struct {
	MaxConns     int           // limits.max_conns (live; connections above a lowered limit stay)
	MaxFrameSize int           // limits.max_frame_size: payload bytes, 64..64 MiB (live, new connections)
	WriteTimeout time.Duration // limits.write_timeout (live)
}

// Spool is the spool.* section.
type Spool struct {
	Dir         string // spool.dir (restart-only)
	Fsync       string // spool.fsync: FsyncNever|FsyncAlways (live)
	SegmentSize int64  // spool.segment_size: bytes, >= 4096 (live)
}

// Drain is the drain.* section.
type Drain struct {
	Timeout time.Duration // drain.timeout (live)
	Spread  time.Duration // drain.spread: GOAWAYs are spread over this window, <= Timeout (live)
}

// Upgrade is the upgrade.* section.
type Upgrade struct {
	PIDFile string        // upgrade.pid_file: "" means none (restart-only)
	Timeout time.Duration // upgrade.timeout: the new binary must be ready within (restart-only: tableflip takes it once per process)
}

// Admin is the admin.* section.
type Admin struct {
	Addr  string // admin.addr: "" disables the admin listener (restart-only)
	Pprof bool   // admin.pprof: serve /debug/pprof on the admin listener (live)
}

// Values of spool.fsync.
const (
	FsyncNever  = "never"
	FsyncAlways = "always"
)

// HeartbeatTimeout is the effective heartbeat timeout: heartbeat.timeout, or 3 ×
// heartbeat.interval when it is 0.
func (c *Config) HeartbeatTimeout() time.Duration {
	if c.Heartbeat.Timeout > 0 {
		return c.Heartbeat.Timeout
	}
	return 3 * c.Heartbeat.Interval
}

// EffectiveServerID is server_id, or the hostname when server_id is empty.
func (c *Config) EffectiveServerID() (string, error) {
	if c.ServerID != "" {
		return c.ServerID, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("config: server_id is empty and the hostname is unknown: %w", err)
	}
	return h, nil
}

// ZapLevel is log.level as a zap level (the value is validated, so never fails; an
// unexpected value maps to info).
func (l Log) ZapLevel() zapcore.Level {
	lvl, err := zapcore.ParseLevel(l.Level)
	if err != nil {
		return zapcore.InfoLevel
	}
	return lvl
}

// Redacted returns every key with its value, flat ("limits.max_conns" → 100000), for logs
// and /v1/config. Secrets are replaced: auth.tokens becomes "[redacted N tokens]".
// Durations are strings ("10s"), sizes and counts are int64, bools are bools, strings
// are strings; the map is the caller's to keep.
func (c *Config) Redacted() map[string]any {
	out := make(map[string]any, len(specs))
	for i := range specs {
		s := &specs[i]
		v := s.get(c)
		switch {
		case s.secret:
			out[s.key] = redact(v)
		case s.kind == kindDuration:
			out[s.key] = v.(time.Duration).String()
		default:
			out[s.key] = v
		}
	}
	return out
}

// Clone returns a deep copy (Tokens included).
func (c *Config) Clone() *Config {
	n := *c
	n.Auth.Tokens = slices.Clone(c.Auth.Tokens)
	return &n
}

//go:embed defaults.yaml
var defaultsYAML []byte

// DefaultsYAML returns the embedded defaults.yaml: every key, its default and what it
// does. It is also the reference for writing a config file.
func DefaultsYAML() []byte { return slices.Clone(defaultsYAML) }

// defaultConfig is defaults.yaml decoded, computed once; see Default.
var defaultConfig = mustDefaults()

// Default returns a new Config holding the defaults (defaults.yaml), handy for tests.
func Default() *Config { return defaultConfig.Clone() }

func mustDefaults() *Config {
	flat, ferrs, err := parseYAML(defaultsYAML, sourceDefaults)
	if err != nil || len(ferrs) > 0 {
		panic(fmt.Sprintf("config: embedded defaults.yaml is broken: %v %v", err, ferrs))
	}
	c := &Config{}
	for i := range specs {
		s := &specs[i]
		raw, ok := flat[s.key]
		if !ok {
			panic("config: embedded defaults.yaml has no value for " + s.key)
		}
		v, reason := s.decode(raw)
		if reason == "" {
			reason = s.set(c, v)
		}
		if reason != "" {
			panic("config: embedded defaults.yaml: " + s.key + ": " + reason)
		}
	}
	if err := Validate(c); err != nil {
		panic("config: embedded defaults.yaml is invalid: " + err.Error())
	}
	return c
}

// Holder holds the configuration in force: readers Load a snapshot without locking,
// a reload Stores a new one.
type Holder struct{ p atomic.Pointer[Config] }

// NewHolder returns a Holder holding c (which must not be nil).
func NewHolder(c *Config) *Holder {
	h := &Holder{}
	h.Store(c)
	return h
}

// Load returns the configuration in force. Never nil for a Holder made by NewHolder.
func (h *Holder) Load() *Config { return h.p.Load() }

// Store makes c the configuration in force. c must not be nil, and must not be modified
// afterwards.
func (h *Holder) Store(c *Config) {
	if c == nil {
		panic("config: Holder.Store(nil)")
	}
	h.p.Store(c)
}

// kind is how a key's value is typed and parsed.
type kind uint8

const (
	kindString   kind = iota
	kindDuration      // Go duration string: "10s", "1m30s"
	kindInt           // integer
	kindSize          // byte count: integer or "64MiB", see ParseSize
	kindBool          // true|false
	kindList          // list of strings; a string is split on commas
)

func (k kind) String() string {
	switch k {
	case kindString:
		return "a string"
	case kindDuration:
		return "a duration"
	case kindInt:
		return "an integer"
	case kindSize:
		return "a size"
	case kindBool:
		return "a boolean"
	case kindList:
		return "a list of strings"
	}
	return "?"
}

// spec describes one configuration key. The table below is the single source of truth:
// defaults.yaml must hold exactly these keys, and flags, env names, decoding, Redacted
// and Diff are all driven by it.
type spec struct {
	key     string
	kind    kind
	restart bool // a change needs an upgrade (SIGHUP), a reload refuses it
	secret  bool // never printed: Redacted, Diff and errors show a count only
	usage   string
	field   func(*Config) any // pointer to the Config field
}

var specs = []spec{
	{key: "listen", kind: kindString, restart: true, usage: "protocol listener address, host:port",
		field: func(c *Config) any { return &c.Listen }},
	{key: "server_id", kind: kindString, restart: true, usage: `server id sent to clients; "" means the hostname`,
		field: func(c *Config) any { return &c.ServerID }},
	{key: "log.level", kind: kindString, usage: "log level: debug|info|warn|error",
		field: func(c *Config) any { return &c.Log.Level }},
	{key: "log.format", kind: kindString, restart: true, usage: "log format: console|json",
		field: func(c *Config) any { return &c.Log.Format }},
	{key: "auth.tokens", kind: kindList, secret: true, usage: "accepted tokens, comma separated; none means an open server (prefer the file or HAWK_AUTH_TOKENS: flags show in ps)",
		field: func(c *Config) any { return &c.Auth.Tokens }},
	{key: "heartbeat.interval", kind: kindDuration, usage: "heartbeat interval announced to clients",
		field: func(c *Config) any { return &c.Heartbeat.Interval }},
	{key: "heartbeat.timeout", kind: kindDuration, usage: "close a connection silent this long; 0 means 3 × heartbeat.interval",
		field: func(c *Config) any { return &c.Heartbeat.Timeout }},
	{key: "handshake.timeout", kind: kindDuration, usage: "HELLO must arrive within",
		field: func(c *Config) any { return &c.Handshake.Timeout }},
	{key: "limits.max_conns", kind: kindInt, usage: "maximum concurrent connections",
		field: func(c *Config) any { return &c.Limits.MaxConns }},
	{key: "limits.max_frame_size", kind: kindSize, usage: "maximum frame payload (bytes or 1MiB), 64..64MiB",
		field: func(c *Config) any { return &c.Limits.MaxFrameSize }},
	{key: "limits.write_timeout", kind: kindDuration, usage: "close a client that does not read for this long",
		field: func(c *Config) any { return &c.Limits.WriteTimeout }},
	{key: "spool.dir", kind: kindString, restart: true, usage: "spool directory",
		field: func(c *Config) any { return &c.Spool.Dir }},
	{key: "spool.fsync", kind: kindString, usage: "fsync mode: never|always",
		field: func(c *Config) any { return &c.Spool.Fsync }},
	{key: "spool.segment_size", kind: kindSize, usage: "segment size (bytes or 64MiB), >= 4096",
		field: func(c *Config) any { return &c.Spool.SegmentSize }},
	{key: "drain.timeout", kind: kindDuration, usage: "drain deadline",
		field: func(c *Config) any { return &c.Drain.Timeout }},
	{key: "drain.spread", kind: kindDuration, usage: "spread GOAWAYs over this window, <= drain.timeout",
		field: func(c *Config) any { return &c.Drain.Spread }},
	{key: "upgrade.pid_file", kind: kindString, restart: true, usage: `PID file; "" means none`,
		field: func(c *Config) any { return &c.Upgrade.PIDFile }},
	{key: "upgrade.timeout", kind: kindDuration, restart: true, usage: "the new binary must be ready within (read once per process)",
		field: func(c *Config) any { return &c.Upgrade.Timeout }},
	{key: "admin.addr", kind: kindString, restart: true, usage: `admin HTTP listener address; "" disables it`,
		field: func(c *Config) any { return &c.Admin.Addr }},
	{key: "admin.pprof", kind: kindBool, usage: "serve /debug/pprof on the admin listener",
		field: func(c *Config) any { return &c.Admin.Pprof }},
}

// Indexes over specs. They are initialized by a var initializer, not init(), because
// defaultConfig's initializer (which runs before any init function) needs them.
var specByKey, specByEnv, sections = indexSpecs()

const envPrefix = "HAWK_"

// indexSpecs returns key → spec, env variable → spec, and the set of sections (every
// proper prefix of a key: "limits"). It panics on an ambiguous table.
func indexSpecs() (map[string]*spec, map[string]*spec, map[string]bool) {
	byKey := map[string]*spec{}
	byEnv := map[string]*spec{}
	secs := map[string]bool{}
	for i := range specs {
		s := &specs[i]
		if _, dup := byKey[s.key]; dup {
			panic("config: key " + s.key + " defined twice")
		}
		byKey[s.key] = s
		env := envName(s.key)
		if o, dup := byEnv[env]; dup {
			panic("config: keys " + o.key + " and " + s.key + " map to the same variable " + env)
		}
		byEnv[env] = s
		parts := strings.Split(s.key, ".")
		for j := 1; j < len(parts); j++ {
			secs[strings.Join(parts[:j], ".")] = true
		}
	}
	for k := range byKey {
		if secs[k] {
			panic("config: key " + k + " is also a section")
		}
	}
	return byKey, byEnv, secs
}

// envName is the environment variable for a key: limits.max_conns → HAWK_LIMITS_MAX_CONNS.
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// get returns the key's value in c: string, time.Duration, int64 (for ints and sizes),
// bool or []string.
func (s *spec) get(c *Config) any {
	switch p := s.field(c).(type) {
	case *string:
		return *p
	case *time.Duration:
		return *p
	case *int:
		return int64(*p)
	case *int64:
		return *p
	case *bool:
		return *p
	case *Secrets:
		return []string(*p)
	}
	panic("config: unhandled field type for " + s.key)
}

// set stores a value produced by decode into c; it returns a reason if it does not fit.
func (s *spec) set(c *Config, v any) string {
	switch p := s.field(c).(type) {
	case *string:
		*p = v.(string)
	case *time.Duration:
		*p = v.(time.Duration)
	case *int:
		n := v.(int64)
		if int64(int(n)) != n {
			return fmt.Sprintf("%d is out of range", n)
		}
		*p = int(n)
	case *int64:
		*p = v.(int64)
	case *bool:
		*p = v.(bool)
	case *Secrets:
		*p = Secrets(v.([]string))
	default:
		panic("config: unhandled field type for " + s.key)
	}
	return ""
}

// format renders a value for Diff and error messages; secrets are redacted.
func (s *spec) format(v any) string {
	if s.secret {
		return redact(v)
	}
	switch v := v.(type) {
	case string:
		return v
	case time.Duration:
		return v.String()
	case int64:
		if s.kind == kindSize {
			return FormatSize(v)
		}
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case []string:
		return strings.Join(v, ",")
	}
	return fmt.Sprint(v)
}

// equal compares two values of the key; lists compare as sets (order and duplicates do
// not matter to a token list).
func (s *spec) equal(a, b any) bool {
	if la, ok := a.([]string); ok {
		lb := b.([]string)
		return slices.Equal(setOf(la), setOf(lb))
	}
	return a == b
}

func setOf(l []string) []string {
	out := slices.Clone(l)
	sort.Strings(out)
	return slices.Compact(out)
}

func redact(v any) string {
	n := 0
	switch l := v.(type) {
	case []string:
		n = len(l)
	case Secrets:
		n = len(l)
	}
	return fmt.Sprintf("[redacted %d tokens]", n)
}
