package config

import (
	_ "embed"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Config is one complete, typed configuration. It is immutable once Load returns it:
// nobody writes to it (the Tokens slice included); a reload builds a new one and swaps
// the pointer (see Holder).
//
// Each field's koanf tag is its key's name (nested by section); what a key means, its
// default and whether a reload applies it are in the keys table (see Keys).
type Config struct {
	Listen    string    `koanf:"listen"`
	ProxyFrom string    `koanf:"listen_proxy_from"` // see ProxyPrefixes
	ServerID  string    `koanf:"server_id"`         // "" means the hostname: see EffectiveServerID
	Log       Log       `koanf:"log"`
	Auth      Auth      `koanf:"auth"`
	Heartbeat Heartbeat `koanf:"heartbeat"`
	Handshake Handshake `koanf:"handshake"`
	TLS       TLS       `koanf:"tls"`
	Limits    Limits    `koanf:"limits"`
	Spool     Spool     `koanf:"spool"`
	Dedup     Dedup     `koanf:"dedup"`
	Drain     Drain     `koanf:"drain"`
	Upgrade   Upgrade   `koanf:"upgrade"`
	Admin     Admin     `koanf:"admin"`
	Control   Control   `koanf:"control"`
	Legacy    Legacy    `koanf:"legacy"`
	UDP       UDP       `koanf:"udp"`

	// Destination is where reports become durable: DestinationSpool or
	// DestinationJetStream (the jetstream section).
	Destination string    `koanf:"destination"`
	JetStream   JetStream `koanf:"jetstream"`
	Uploads     Uploads   `koanf:"uploads"`
}

// Uploads is the uploads.* section: files agents send on their connections.
type Uploads struct {
	Enabled     bool          `koanf:"enabled"`
	Dir         string        `koanf:"dir"` // "": <spool.dir>/uploads
	MaxFileSize int64         `koanf:"max_file_size" unit:"bytes"`
	ClientQuota int64         `koanf:"client_quota" unit:"bytes"`
	TotalQuota  int64         `koanf:"total_quota" unit:"bytes"`
	Expiry      time.Duration `koanf:"expiry"`
	MaxInFlight int64         `koanf:"max_in_flight" unit:"bytes"`
	// Bucket is the Object Store bucket of finished files with destination:
	// jetstream; "" keeps them in Dir.
	Bucket         string        `koanf:"bucket"`
	BucketReplicas int           `koanf:"bucket_replicas"`
	BucketMaxBytes int64         `koanf:"bucket_max_bytes" unit:"bytes"`
	BucketTTL      time.Duration `koanf:"bucket_ttl"`
}

// InBucket reports whether finished files go to the Object Store bucket.
func (c *Config) InBucket() bool {
	return c.Uploads.Enabled && c.Destination == DestinationJetStream && c.Uploads.Bucket != ""
}

// Log is the log.* section.
type Log struct {
	Level  string `koanf:"level"`  // debug|info|warn|error
	Format string `koanf:"format"` // console|json
}

// Auth is the auth.* section.
type Auth struct {
	// Credentials are "NAME SECRET ID-PATTERN..." lines (internal/auth). Secret:
	// never log them; Redacted and Diff replace them by a count.
	Credentials Secrets `koanf:"credentials"`
	// TokensFile holds more credentials, one line each; "" means none.
	TokensFile string `koanf:"tokens_file"`
	// Tokens are unbound tokens: each covers every client id. Secret, like Credentials.
	Tokens Secrets `koanf:"tokens"`
	// Open serves unauthenticated agents from non-loopback addresses when there
	// are no credentials at all.
	Open bool `koanf:"open"`
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
	Interval time.Duration `koanf:"interval"`
	Timeout  time.Duration `koanf:"timeout"` // 0 means 3 × Interval: use Config.HeartbeatTimeout
}

// Handshake is the handshake.* section.
type Handshake struct {
	Timeout time.Duration `koanf:"timeout"`
}

// TLS is the tls.* section: TLS on the native listener (on when CertFile is set).
type TLS struct {
	CertFile     string        `koanf:"cert_file"`
	KeyFile      string        `koanf:"key_file"`
	MinVersion   string        `koanf:"min_version"`    // "1.2"|"1.3"
	ClientCAFile string        `koanf:"client_ca_file"` // "" means no client certificates
	ClientAuth   string        `koanf:"client_auth"`    // none|optional|required
	ClientIDFrom string        `koanf:"client_id_from"` // uri_san|dns_san|cn
	ExpiryGoaway time.Duration `koanf:"expiry_goaway"`
	// TicketKeysFile is the shared session ticket keys file; "" means keys of
	// hawk's own, rotated every TicketKeyRotation.
	TicketKeysFile     string        `koanf:"ticket_keys_file"`
	TicketKeyRotation  time.Duration `koanf:"ticket_key_rotation"`
	TicketKeysPrevious int           `koanf:"ticket_keys_previous"`
}

// Limits is the limits.* section.
type Limits struct {
	MaxConns int `koanf:"max_conns"`
	// HandshakeRate is new connections admitted per second; 0 means unlimited.
	HandshakeRate int           `koanf:"handshake_rate"`
	MaxFrameSize  int           `koanf:"max_frame_size" unit:"bytes"` // payload bytes
	MaxInFlight   int           `koanf:"max_in_flight"`               // unanswered REPORTs per connection
	WriteTimeout  time.Duration `koanf:"write_timeout"`
	FrameTimeout  time.Duration `koanf:"frame_timeout"`
}

// Spool is the spool.* section.
type Spool struct {
	Dir         string        `koanf:"dir"`
	Fsync       string        `koanf:"fsync"`                     // FsyncNever|FsyncAlways
	SegmentSize int64         `koanf:"segment_size" unit:"bytes"` // bytes
	MaxBytes    int64         `koanf:"max_bytes" unit:"bytes"`    // retention; 0: no limit
	MaxAge      time.Duration `koanf:"max_age"`                   // retention; 0: no limit
	CacheBytes  int64         `koanf:"cache_bytes" unit:"bytes"`  // page cache kept; 0: left to the kernel
	Discard     string        `koanf:"discard"`                   // DiscardNew|DiscardOld
	FileMode    string        `koanf:"file_mode"`                 // octal permissions of segments (SegmentMode)
}

// JetStream is the jetstream.* section: the NATS JetStream destination
// (destination: jetstream; see internal/jetstream).
type JetStream struct {
	URLs           string        `koanf:"urls"`    // comma-separated NATS server URLs
	Stream         string        `koanf:"stream"`  // must exist
	Subject        string        `koanf:"subject"` // template; <client_id> is replaced
	Creds          string        `koanf:"creds"`   // credentials file; "" means none
	TLSCA          string        `koanf:"tls_ca"`
	TLSCert        string        `koanf:"tls_cert"`
	TLSKey         string        `koanf:"tls_key"`
	MaxPending     int           `koanf:"max_pending"` // publishes awaiting their ack
	PublishTimeout time.Duration `koanf:"publish_timeout"`
	ConnectTimeout time.Duration `koanf:"connect_timeout"`
	RetryAfter     time.Duration `koanf:"retry_after"`   // the NACK's retry hint
	RetryHorizon   time.Duration `koanf:"retry_horizon"` // the stream's duplicate window must cover it
	RequireDurable bool          `koanf:"require_durable"`
	SyncAlways     bool          `koanf:"sync_always"` // the operator's word: the servers run sync_interval: always
	Mode           string        `koanf:"mode"`        // JetStreamDirect|JetStreamSpooled
}

// Dedup is the dedup.* section.
type Dedup struct {
	Window       int   `koanf:"window"`                     // seqs, a power of two
	MaxClients   int   `koanf:"max_clients"`                // clients remembered
	RebuildBytes int64 `koanf:"rebuild_bytes" unit:"bytes"` // bytes of spool tail read at start
	BeforeReady  bool  `koanf:"rebuild_before_ready"`
}

// Drain is the drain.* section.
type Drain struct {
	Timeout time.Duration `koanf:"timeout"`
	Spread  time.Duration `koanf:"spread"` // <= Timeout
}

// Upgrade is the upgrade.* section.
type Upgrade struct {
	PIDFile string        `koanf:"pid_file"` // "" means none
	Timeout time.Duration `koanf:"timeout"`
	// Handoff moves established connections to the new process (internal/handoff).
	Handoff        bool          `koanf:"handoff"`
	HandoffTimeout time.Duration `koanf:"handoff_timeout"`
}

// Admin is the admin.* section.
type Admin struct {
	Addr  string `koanf:"addr"` // "" disables the admin listener
	Pprof bool   `koanf:"pprof"`
}

// Control is the control.* section: the local socket hawk upgrade, reload and
// status talk to.
type Control struct {
	Socket string `koanf:"socket"` // "" disables the control socket
	Mode   string `koanf:"mode"`   // octal file permissions of the socket
}

// ControlMode is control.mode as file permissions.
func (c *Config) ControlMode() (os.FileMode, error) {
	m, err := strconv.ParseUint(c.Control.Mode, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("must be octal permissions such as 0600, not %q", c.Control.Mode)
	}
	return os.FileMode(m), nil
}

// ProxyPrefixes parses listen_proxy_from: the networks whose connections carry
// a PROXY protocol v2 header. A bare address is a network of one.
func (c *Config) ProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(c.ProxyFrom, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("must be addresses or CIDRs separated by commas, not %q", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Values of destination.
const (
	DestinationSpool     = "spool"
	DestinationJetStream = "jetstream"
)

// Values of jetstream.mode.
const (
	JetStreamDirect  = "direct"  // ACK once JetStream acknowledged the publish
	JetStreamSpooled = "spooled" // ACK once in the spool; a forwarder publishes
)

// Spooled reports whether reports go to the spool first: destination spool, or
// jetstream in mode spooled.
func (c *Config) Spooled() bool {
	return c.Destination != DestinationJetStream || c.JetStream.Mode == JetStreamSpooled
}

// Values of spool.discard: what spool.max_bytes does when only segments not yet
// forwarded (jetstream.mode: spooled) are left to remove.
const (
	DiscardNew = "new" // refuse new reports (retryable NACK) until the forwarder catches up
	DiscardOld = "old" // remove the oldest segments anyway, counting what they held
)

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

// Redacted returns every key with its value, flat ("limits.max_conns" → 100000), for logs
// and /v1/config. Secrets are replaced: auth.tokens becomes "[redacted N tokens]".
// Durations are strings ("10s"), sizes and counts are int64, bools are bools, strings
// are strings; the map is the caller's to keep.
func (c *Config) Redacted() map[string]any {
	out := make(map[string]any, len(keys))
	for i := range keys {
		k := &keys[i]
		v := k.get(c)
		switch {
		case k.Secret:
			out[k.Name] = redact(v)
		case k.kind == kindDuration:
			out[k.Name] = v.(time.Duration).String()
		case k.kind == kindObjects:
			if l, ok := v.([]UDPListener); ok {
				out[k.Name] = redactedUDPListeners(l)
				break
			}
			out[k.Name] = redactedListeners(v.([]LegacyListener))
		default:
			out[k.Name] = v
		}
	}
	return out
}

// Clone returns a deep copy (Tokens included).
func (c *Config) Clone() *Config {
	n := *c
	n.Auth.Tokens = slices.Clone(c.Auth.Tokens)
	n.Auth.Credentials = slices.Clone(c.Auth.Credentials)
	n.Legacy.Listeners = cloneListeners(c.Legacy.Listeners)
	n.UDP.Listeners = cloneUDPListeners(c.UDP.Listeners)
	return &n
}

//go:embed defaults.yaml
var defaultsYAML []byte

// DefaultsYAML returns the embedded defaults.yaml: every key, its default and what it
// does. It is also the reference for writing a config file.
func DefaultsYAML() []byte { return slices.Clone(defaultsYAML) }

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
