package config

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The generated files (defaults.yaml, the key table in doc.go and the one in
// docs/CONFIGURATION.md) are rendered from the keys table below by a test, which also
// fails when a committed copy disagrees with the table.
//go:generate go test -run ^TestGeneratedFiles$ -update

// Reload says what it takes for a change of a key to apply.
type Reload uint8

const (
	// Live keys are applied by a reload (the config file changed, or SIGUSR1).
	Live Reload = iota + 1
	// RestartOnly keys are refused by a reload: a change needs an upgrade (SIGHUP),
	// which starts a new process that reads them.
	RestartOnly
)

func (r Reload) String() string {
	switch r {
	case Live:
		return "live"
	case RestartOnly:
		return "restart-only"
	}
	return "Reload(" + strconv.Itoa(int(r)) + ")"
}

// Key is everything about one configuration key. The keys table is the single source of
// these facts: loading, flags, environment names, Redacted, Diff and Prepare are driven
// by it, and defaults.yaml and the key tables of doc.go and docs/CONFIGURATION.md are
// generated from it.
// The Config field a key decodes into is the one whose koanf tags spell its Name
// (Listen `koanf:"listen"`, Limits `koanf:"limits"` / MaxConns `koanf:"max_conns"`); a
// size's field is also tagged unit:"bytes", which is how decodeHook tells it from an int.
type Key struct {
	// Name is the key: its path in the YAML file, and the flag's name
	// (-limits.max_conns). Env gives its environment variable.
	Name string
	// Default is the default as text, in the form the environment and flags take
	// ("10s", "1MiB", "a,b"); for a list, "" is the empty list (the environment cannot
	// say that: HAWK_AUTH_TOKENS= is one empty token).
	Default string
	// Example is a valid value other than Default, as text like Default (it is also
	// accepted as a quoted YAML string). It is valid together with every other key's
	// default, so setting it alone in a config file makes a valid configuration, and a
	// reload applies it if the key is Live.
	Example string
	// Reload says whether a reload applies a change (Live) or refuses it (RestartOnly).
	Reload Reload
	// Secret values are never shown: Redacted, Diff and errors give a count only.
	Secret bool
	// Doc says what the key does, in sentences; its first sentence is the flag's help.
	Doc string
	// DefaultNote and ReloadNote qualify the default and the reload class in the
	// generated tables: "(debug, info, warn, error)", " (new connections)".
	DefaultNote, ReloadNote string

	kind kind
}

// Keys returns every key, in the order of defaults.yaml. The slice is a copy, the
// caller's to keep.
func Keys() []Key { return slices.Clone(keys) }

// Live reports whether a reload applies a change of the key.
func (k Key) Live() bool { return k.Reload == Live }

// Env is the environment variable setting the key: limits.max_conns →
// HAWK_LIMITS_MAX_CONNS.
func (k Key) Env() string { return envName(k.Name) }

// kind is how a key's value is written and parsed.
type kind uint8

const (
	kindString   kind = iota + 1
	kindDuration      // Go duration: "10s", "1m30s"
	kindInt           // integer
	kindSize          // byte count: an integer, or "64MiB" (see ParseSize)
	kindBool          // true|false
	kindList          // list of strings; as text, comma separated
	kindObjects       // a list of objects (legacy.listeners); as text, YAML flow (see decodeListeners)
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
	case kindObjects:
		return "a list of listeners"
	}
	return "?"
}

// flagType is the value's name in -help.
func (k kind) flagType() string {
	return [...]string{kindString: "string", kindDuration: "duration", kindInt: "int", kindSize: "size",
		kindBool: "bool", kindList: "list", kindObjects: "yaml"}[k]
}

// keys is the table. Keep the order of the sections: defaults.yaml and the tables follow
// it. Examples must stay valid with every other default (drain.spread ≤ drain.timeout,
// heartbeat.timeout > heartbeat.interval); TestKeyExamples checks.
var keys = []Key{
	{Name: "listen", kind: kindString, Default: "127.0.0.1:7373", Example: "127.0.0.1:8000", Reload: RestartOnly,
		Doc: "Protocol listener, host:port. An empty host listens on every interface."},
	{Name: "listen_proxy_from", kind: kindString, Default: "", Example: "10.0.0.5,10.0.1.0/24", Reload: RestartOnly,
		Doc: "Load balancers, as comma-separated addresses or CIDRs, whose connections to listen start with a PROXY protocol " +
			"v2 header (HAProxy send-proxy-v2): the agent's address it carries is used for limits.handshake_rate's per-source " +
			"shares, auth.open and the logs. A connection from one of them without a valid header within handshake.timeout is " +
			"closed; connections from other addresses are served as they come, and a header from them is a protocol error.",
		DefaultNote: "(none)"},
	{Name: "server_id", kind: kindString, Default: "", Example: "edge-1", Reload: RestartOnly,
		Doc:         `Server id sent to clients in WELCOME; "" means the machine's hostname.`,
		DefaultNote: "(hostname)"},

	{Name: "log.level", kind: kindString, Default: "info", Example: "debug", Reload: Live,
		Doc:         "Log level: debug, info, warn or error.",
		DefaultNote: "(debug, info, warn, error)"},
	{Name: "log.format", kind: kindString, Default: "console", Example: "json", Reload: RestartOnly,
		Doc:         "Log format: console (human) or json.",
		DefaultNote: "(console, json)"},

	{Name: "auth.credentials", kind: kindList, Default: "",
		Example: "fleet-web sha256:4d1566a1d7df42a8517456d60ea06ed284e535cfe4c956aa6ee172dbcdf945f7 web-*", Reload: Live, Secret: true,
		Doc: "Credentials, each binding a secret to the client ids it may speak for: \"NAME SECRET ID-PATTERN...\", where SECRET " +
			"is the token or sha256:<hex of its SHA-256> and an ID-PATTERN is an exact id or a pattern with * (any run) and ? (any " +
			"one character). A HELLO whose client id its token's credential does not cover gets ERROR unauthorized. " +
			`Secret: logs and /v1/config show "[redacted N tokens]".`,
		DefaultNote: "(none)",
		ReloadNote:  "; removed credentials and ids no longer covered close their connections"},
	{Name: "auth.tokens_file", kind: kindString, Default: "", Example: "/etc/hawk/tokens", Reload: Live,
		Doc: "File of credentials, one \"NAME SECRET ID-PATTERN...\" line each (# comments), read besides auth.credentials. " +
			"It is read again when it changes (checked every second) and on every reload; a bad version keeps the last good one.",
		DefaultNote: "(none)",
		ReloadNote:  "; the file's contents reload live"},
	{Name: "auth.tokens", kind: kindList, Default: "", Example: "example-token-1,example-token-2", Reload: Live, Secret: true,
		Doc: "Unbound tokens: each lets an agent speak for ANY client id. Kept for old configurations; use auth.credentials. " +
			`Secret: logs and /v1/config show "[redacted N tokens]".`,
		DefaultNote: "(unbound: use auth.credentials)",
		ReloadNote:  "; removed tokens close their connections"},
	{Name: "auth.open", kind: kindBool, Default: "false", Example: "true", Reload: Live,
		Doc: "With no credentials (auth.credentials, auth.tokens_file, auth.tokens) and no verified client certificate, serve " +
			"agents from non-loopback addresses too. Off, such a server refuses them with ERROR unauthorized.",
		DefaultNote: "(open server: loopback only)",
		ReloadNote:  " (new connections)"},

	{Name: "heartbeat.interval", kind: kindDuration, Default: "10s", Example: "3s", Reload: Live,
		Doc:        "Heartbeat interval announced to clients in WELCOME.",
		ReloadNote: " (new connections)"},
	{Name: "heartbeat.timeout", kind: kindDuration, Default: "0s", Example: "20s", Reload: Live,
		Doc:         "A connection silent this long is closed. 0 means 3 x interval; otherwise it must be longer than interval.",
		DefaultNote: "= 3 × interval"},

	{Name: "handshake.timeout", kind: kindDuration, Default: "5s", Example: "2s", Reload: Live,
		Doc: "HELLO must arrive within this long after accept."},

	{Name: "tls.cert_file", kind: kindString, Default: "", Example: "/etc/hawk/tls/server.crt", Reload: RestartOnly,
		Doc: "PEM certificate (chain) of the native listener; with tls.key_file it turns TLS on. The files' contents are reloaded " +
			"without a restart (a file change, SIGUSR1, hawk reload); a bad new file keeps the last good one (hawk_tls_reloads_total{result=\"failure\"}).",
		DefaultNote: "(plaintext)", ReloadNote: " (contents reload live)"},
	{Name: "tls.key_file", kind: kindString, Default: "", Example: "/etc/hawk/tls/server.key", Reload: RestartOnly,
		Doc: "PEM private key of tls.cert_file.", DefaultNote: "(plaintext)", ReloadNote: " (contents reload live)"},
	{Name: "tls.min_version", kind: kindString, Default: "1.2", Example: "1.3", Reload: RestartOnly,
		Doc: "Lowest TLS version accepted: 1.2 or 1.3.", DefaultNote: "(1.2, 1.3)"},
	{Name: "tls.client_ca_file", kind: kindString, Default: "", Example: "/etc/hawk/tls/clients-ca.pem", Reload: RestartOnly,
		Doc: "PEM bundle of the CAs client certificates must chain to (mutual TLS, see tls.client_auth). A reload that removes a CA " +
			"tells the connections it admitted GOAWAY credentials.",
		DefaultNote: "(no client certificates)", ReloadNote: " (contents reload live)"},
	{Name: "tls.client_auth", kind: kindString, Default: "required", Example: "optional", Reload: RestartOnly,
		Doc:         "With tls.client_ca_file: required (every client presents a certificate) or optional (verified if presented); none ignores the bundle.",
		DefaultNote: "(none, optional, required)"},
	{Name: "tls.client_id_from", kind: kindString, Default: "uri_san", Example: "cn", Reload: Live,
		Doc: "The client certificate field a HELLO's client_id must equal: uri_san (the first URI SAN, whole), dns_san (the first DNS SAN) or cn " +
			"(the subject common name). A HELLO naming another id gets ERROR unauthorized.",
		DefaultNote: "(uri_san, dns_san, cn)", ReloadNote: " (new connections)"},
	{Name: "tls.expiry_goaway", kind: kindDuration, Default: "10m", Example: "1h", Reload: Live,
		Doc: "A connection admitted with a client certificate is told GOAWAY credentials this long (plus up to a quarter more, jitter) " +
			"before the certificate's NotAfter, and closed at NotAfter if it has not moved. 0 turns it off.",
		ReloadNote: " (new connections)"},
	{Name: "tls.ticket_keys_file", kind: kindString, Default: "", Example: "/etc/hawk/tls/ticket.keys", Reload: RestartOnly,
		Doc: "File of session ticket keys shared by the instances a client may reconnect to (behind a balancer, across restarts), " +
			"so that a reconnect resumes its TLS session instead of a full handshake: one key a line, 64 hex digits (openssl rand -hex 32), " +
			"the first encrypting new tickets and every one decrypting; mode 600 or 640. Its contents are reloaded without a restart " +
			"(a file change, SIGUSR1, hawk reload); a bad new file keeps the keys in force (hawk_tls_ticket_key_changes_total{result=\"failure\"}). " +
			"Without it hawk makes its own keys, rotates them every tls.ticket_key_rotation and passes them to the new process of an upgrade.",
		DefaultNote: "(keys of hawk's own)", ReloadNote: " (contents reload live)"},
	{Name: "tls.ticket_key_rotation", kind: kindDuration, Default: "24h", Example: "6h", Reload: RestartOnly,
		Doc: "Without tls.ticket_keys_file: how long a session ticket key encrypts new tickets before a new one replaces it; " +
			"it then decrypts for tls.ticket_keys_previous more rotations. At least 1s."},
	{Name: "tls.ticket_keys_previous", kind: kindInt, Default: "6", Example: "1", Reload: RestartOnly,
		Doc: "Without tls.ticket_keys_file: how many replaced session ticket keys still decrypt tickets (0 to 15). With the defaults " +
			"a ticket is good for 6 to 7 days, as long as crypto/tls accepts one: an agent connected for days still resumes."},

	{Name: "limits.max_conns", kind: kindInt, Default: "100000", Example: "50", Reload: Live,
		Doc:        "Maximum concurrent connections. Lowering it does not close the connections already above the new limit.",
		ReloadNote: " (existing connections stay)"},
	{Name: "limits.handshake_rate", kind: kindInt, Default: "5000", Example: "2000", Reload: Live,
		Doc: "New connections admitted per second (a token bucket with a tenth of a second's worth of burst); " +
			"a connection over the rate gets ERROR busy with retry_after_ms before its HELLO, and a drain " +
			"spreads its GOAWAYs so that its clients reconnect within 90% of the rate. 0 means unlimited. " +
			"With TLS a handshake costs the server about 0.44 ms of CPU (TLS 1.3, ECDSA P-256), some 2,300 " +
			"a second per core: set the rate below what the cores sustain beside the reports, say 1000 per core.",
		DefaultNote: "(0: unlimited)"},
	{Name: "limits.max_frame_size", kind: kindSize, Default: "1MiB", Example: "128KiB", Reload: Live,
		Doc:         "Maximum frame payload in bytes, 64 to 64MiB.",
		DefaultNote: "(64 B – 64 MiB)",
		ReloadNote:  " (new connections)"},
	{Name: "limits.max_in_flight", kind: kindInt, Default: "1024", Example: "256", Reload: Live,
		Doc: "Most REPORTs a client may have sent and not yet seen answered (ACK or NACK) on one connection, 1 to 65535; " +
			"announced in WELCOME. One more closes the connection with ERROR too_many_in_flight. " +
			"It also bounds the ACKs and NACKs a connection can have queued for a client that stopped reading.",
		DefaultNote: "(1 – 65535)",
		ReloadNote:  " (new connections)"},
	{Name: "limits.write_timeout", kind: kindDuration, Default: "10s", Example: "4s", Reload: Live,
		Doc: "A connection whose writes make no progress for this long (the client reads nothing) is closed as a slow consumer, " +
			"with ERROR slow_consumer when it can still be written. A client that reads, however slowly, is not cut."},
	{Name: "limits.frame_timeout", kind: kindDuration, Default: "30s", Example: "10s", Reload: Live,
		Doc: "A frame whose first byte has arrived must be complete within this long, or the connection is closed with ERROR frame_timeout. " +
			"Unlike heartbeat.timeout, which any byte resets, it stops a client that drips bytes and never finishes a frame; " +
			"it must leave time for a max_frame_size frame on the slowest link (1 MiB in 30s is 35 KB/s)."},

	{Name: "destination", kind: kindString, Default: DestinationSpool, Example: DestinationJetStream, Reload: RestartOnly,
		Doc: "Where reports become durable before they are ACKed. spool: the local spool (spool.*); jetstream: a NATS " +
			"JetStream stream (jetstream.*), ACKed once JetStream acknowledged the publish.",
		DefaultNote: "(spool, jetstream)"},

	{Name: "spool.dir", kind: kindString, Default: "./data", Example: "/var/lib/hawk/spool", Reload: RestartOnly,
		Doc: "Directory of the spool segments."},
	{Name: "spool.fsync", kind: kindString, Default: FsyncNever, Example: FsyncAlways, Reload: Live,
		Doc:         "Fsync mode. never: the OS flushes in its own time; always: fsync before acknowledging.",
		DefaultNote: "(never, always)"},
	{Name: "spool.segment_size", kind: kindSize, Default: "64MiB", Example: "1MiB", Reload: Live,
		Doc: "A segment is rotated past this size, at least 4096 bytes."},
	{Name: "spool.max_bytes", kind: kindSize, Default: "0", Example: "20GiB", Reload: Live,
		Doc: "Retention: while the spool directory's segments hold more than this, the oldest closed segments are removed. " +
			"A segment still written (this process's, or an upgrading parent's newest) is never removed, so the directory can " +
			"exceed it by those. 0 keeps everything.",
		DefaultNote: "(no limit)"},
	{Name: "spool.max_age", kind: kindDuration, Default: "0s", Example: "168h", Reload: Live,
		Doc:         "Retention: a closed segment whose last write is older than this is removed. 0 keeps everything.",
		DefaultNote: "(no limit)"},
	{Name: "spool.cache_bytes", kind: kindSize, Default: "256MiB", Example: "1GiB", Reload: Live,
		Doc: "Page cache: a closed segment stays in the kernel's page cache until the closed segments newer than it hold this " +
			"many bytes; then it is written back and dropped from it, so that a spool written for months does not fill the " +
			"machine's memory with records read again only by a shipper that fell behind, and new writes do not pay to reclaim " +
			"that memory. Keep it at least dedup.rebuild_bytes: a restarted process reads that much of the newest " +
			"segments. The segment being written stays whatever the size. 0 leaves the page cache to the kernel.",
		DefaultNote: "(0: left to the kernel)"},
	{Name: "spool.discard", kind: kindString, Default: DiscardNew, Example: DiscardOld, Reload: RestartOnly,
		Doc: "With jetstream.mode: spooled and spool.max_bytes, what happens when the segments not yet forwarded fill " +
			"spool.max_bytes (NATS down for long): new: the limit is hard, reports are NACKed spool_write (retryable, " +
			"with retry_after_ms) until the forwarder catches up; old: the oldest segments are removed anyway and their " +
			"records never reach the stream (hawk_spool_discarded_records_total). Without the forwarder every closed " +
			"segment may be removed and this does nothing.",
		DefaultNote: "(new, old)"},
	{Name: "spool.file_mode", kind: kindString, Default: "0640", Example: "0600", Reload: RestartOnly,
		Doc: "Permissions of the spool's segments, in octal, whatever the umask: 0640 lets a log shipper in hawk's group read them " +
			"and nobody else. A directory hawk creates gets the same bits plus search (x) where read is given (0640: 0750). " +
			"The owner must keep read and write."},

	{Name: "jetstream.urls", kind: kindString, Default: "nats://127.0.0.1:4222", Example: "nats://n1:4222,nats://n2:4222,nats://n3:4222", Reload: RestartOnly,
		Doc: "NATS server URLs, comma separated (destination: jetstream)."},
	{Name: "jetstream.stream", kind: kindString, Default: "HAWK_REPORTS", Example: "REPORTS", Reload: RestartOnly,
		Doc: "The JetStream stream reports go to. It must exist (hawk does not create it) and cover jetstream.subject; checked at start."},
	{Name: "jetstream.subject", kind: kindString, Default: "hawk.reports.<client_id>", Example: "fleet.a.<client_id>", Reload: RestartOnly,
		Doc: "Subject template of a report's message: <client_id> is replaced by the client id, escaped into one subject token " +
			"(bytes other than A-Z a-z 0-9 - _ become %XX)."},
	{Name: "jetstream.creds", kind: kindString, Default: "", Example: "/etc/hawk/nats.creds", Reload: RestartOnly,
		Doc: `NATS credentials file (JWT and nkey seed); "" means none.`, DefaultNote: "(none)"},
	{Name: "jetstream.tls_ca", kind: kindString, Default: "", Example: "/etc/hawk/nats-ca.pem", Reload: RestartOnly,
		Doc: `CA bundle to verify the NATS servers with; "" means the system roots (TLS only if a URL is tls://).`, DefaultNote: "(system)"},
	{Name: "jetstream.tls_cert", kind: kindString, Default: "", Example: "/etc/hawk/nats-client.pem", Reload: RestartOnly,
		Doc: `Client certificate for NATS (with jetstream.tls_key); "" means none.`, DefaultNote: "(none)"},
	{Name: "jetstream.tls_key", kind: kindString, Default: "", Example: "/etc/hawk/nats-client.key", Reload: RestartOnly,
		Doc: `Key of jetstream.tls_cert; "" means none.`, DefaultNote: "(none)"},
	{Name: "jetstream.max_pending", kind: kindInt, Default: "16384", Example: "4096", Reload: RestartOnly,
		Doc: "Most publishes awaiting JetStream's acknowledgement, 1 to 1048576; past it, connections stop being read " +
			"(back-pressure, as with a slow disk). hawk allows fewer while acknowledgements take longer than half of " +
			"jetstream.publish_timeout, so that a slow broker makes it hold reports back rather than let them time out and be resent."},
	{Name: "jetstream.publish_timeout", kind: kindDuration, Default: "5s", Example: "2s", Reload: RestartOnly,
		Doc: "A publish not acknowledged within this long fails: its reports are NACKed destination_unavailable (retryable). " +
			"In jetstream.mode spooled, the forwarder's publish fails when no acknowledgement came for this long, and its " +
			"publishes are sized to take at most half of it."},
	{Name: "jetstream.connect_timeout", kind: kindDuration, Default: "5s", Example: "10s", Reload: RestartOnly,
		Doc: "How long start waits to connect and check the stream before giving up."},
	{Name: "jetstream.retry_after", kind: kindDuration, Default: "1s", Example: "2s", Reload: RestartOnly,
		Doc: "The retry hint (retry_after_ms) of a destination_unavailable NACK."},
	{Name: "jetstream.retry_horizon", kind: kindDuration, Default: "2m", Example: "10m", Reload: RestartOnly,
		Doc: "The longest time an agent keeps resending a report. The stream's duplicate window must be at least this " +
			"long, or start is refused: a resend after the window would be stored twice."},
	{Name: "jetstream.require_durable", kind: kindBool, Default: "true", Example: "false", Reload: RestartOnly,
		Doc: "Refuse to start unless the stream is durable: file storage and 3 or more replicas, or jetstream.sync_always. " +
			"false: start anyway and log a warning."},
	{Name: "jetstream.sync_always", kind: kindBool, Default: "false", Example: "true", Reload: RestartOnly,
		Doc: "Your word that the NATS servers run with jetstream { sync_interval: always } (a client cannot see it): " +
			"then a stream with fewer than 3 replicas counts as durable."},
	{Name: "jetstream.mode", kind: kindString, Default: JetStreamDirect, Example: JetStreamSpooled, Reload: RestartOnly,
		Doc: "With destination: jetstream, direct: a report is ACKed once JetStream acknowledged its publish; spooled: " +
			"ACKed once durable in the local spool (spool.*), then forwarded to the stream in the background, so hawk " +
			"starts, serves and upgrades while NATS is down. Retention (spool.max_bytes, spool.max_age) never removes " +
			"a segment not yet forwarded.",
		DefaultNote: "(direct, spooled)"},

	{Name: "dedup.window", kind: kindInt, Default: "4096", Example: "1024", Reload: RestartOnly,
		Doc: "Per client, how many seqs below its highest the server remembers as durable, so that a resend of one is " +
			"ACKed again instead of stored twice: a power of two, 64 to 16777216. Keep it at least the most reports a " +
			"client has unacknowledged (limits.max_in_flight); older seqs are stored again. Costs window/8 bytes per client remembered.",
		DefaultNote: "(power of two)"},
	{Name: "dedup.max_clients", kind: kindInt, Default: "200000", Example: "50000", Reload: Live,
		Doc: "Most clients whose windows are remembered; past it, the least recently used ones without a connection " +
			"are forgotten (their resends are stored again). Connected clients are always remembered.",
		ReloadNote: " (from the next new client)"},
	{Name: "dedup.rebuild_bytes", kind: kindSize, Default: "256MiB", Example: "64MiB", Reload: RestartOnly,
		Doc: "At start, the windows are rebuilt from this many bytes of the newest spool segments; reports wait until " +
			"it is done. 0 rebuilds nothing. An upgrade's new process receives the old one's windows instead, and " +
			"rebuilds only when they cannot be passed."},
	{Name: "dedup.rebuild_before_ready", kind: kindBool, Default: "false", Example: "true", Reload: RestartOnly,
		Doc: "Rebuild (and, after an upgrade, read the old process's segments once) before declaring the process ready. " +
			"false: ready at once, and the first reports wait for the rebuild; true: an upgrade's old process keeps " +
			"serving until the rebuild is done, so no report waits, and SIGHUP-to-ready grows by the rebuild time."},

	{Name: "drain.timeout", kind: kindDuration, Default: "30s", Example: "20s", Reload: Live,
		Doc: "How long a drain waits for clients to move before closing them."},
	{Name: "drain.spread", kind: kindDuration, Default: "5s", Example: "1s", Reload: Live,
		Doc:         "GOAWAYs are spread over this window, so clients do not reconnect all at once. At most drain.timeout.",
		DefaultNote: "(≤ drain.timeout)"},

	{Name: "upgrade.pid_file", kind: kindString, Default: "", Example: "/run/hawk/hawk.pid", Reload: RestartOnly,
		Doc:         `PID file, rewritten by each new process; "" means none.`,
		DefaultNote: "(none)"},
	{Name: "upgrade.timeout", kind: kindDuration, Default: "60s", Example: "90s", Reload: RestartOnly,
		Doc: "The new binary must be ready within this long, or the upgrade is abandoned and this process keeps serving. " +
			"The upgrader reads it once, at start."},
	{Name: "upgrade.handoff", kind: kindBool, Default: "true", Example: "false", Reload: Live,
		Doc: "After an upgrade, hand each established plaintext connection (native and legacy) to the new process: " +
			"same socket, no GOAWAY, no reconnect. false: every connection is drained with GOAWAY as before. Read at each upgrade."},
	{Name: "upgrade.handoff_timeout", kind: kindDuration, Default: "5s", Example: "2s", Reload: Live,
		Doc: "How long the handoff waits for a connection to reach a quiet point (no report in flight, no output pending) " +
			"before it falls back to the GOAWAY drain for it. Read at each upgrade."},

	{Name: "admin.addr", kind: kindString, Default: "127.0.0.1:7374", Example: "127.0.0.1:9090", Reload: RestartOnly,
		Doc:         `Admin HTTP listener (health, metrics, /v1/config), host:port; "" disables it.`,
		DefaultNote: "(`\"\"` disables)"},
	{Name: "admin.pprof", kind: kindBool, Default: "false", Example: "true", Reload: Live,
		Doc: "Serve /debug/pprof on the admin listener."},

	{Name: "control.socket", kind: kindString, Default: "", Example: "/run/hawk/control.sock", Reload: RestartOnly,
		Doc: "Unix socket the hawk upgrade, hawk reload and hawk status commands talk to; handed over on upgrades " +
			`like every listener. "" disables it (and those commands).`,
		DefaultNote: "(`\"\"` disables)"},
	{Name: "control.mode", kind: kindString, Default: "0600", Example: "0660", Reload: RestartOnly,
		Doc: "File permissions of control.socket, in octal: whoever may connect may upgrade and reload the server."},

	{Name: "legacy.listeners", kind: kindObjects, Default: "", Reload: RestartOnly,
		Example: `[{name: metrics, address: "127.0.0.1:7380", format: ffff, allow: [127.0.0.1/32]}]`,
		Doc: "Listeners for the older wire formats (docs/PROTOCOL.md, Legacy formats), a list of objects: " +
			"name (a-z, 0-9, _, -; labels metrics and records), address (host:port), format (ffff, c8c9, headers or file: file needs uploads.enabled), " +
			"allow (required: the source networks permitted, as CIDRs; a connection from elsewhere is closed at accept), " +
			"max_frame_size (the largest data of a frame; default and ceiling 65535 for ffff, default 1MiB otherwise) and " +
			"idle_timeout (a connection silent this long is closed; for ffff the heartbeat timeout, default 10s; 5m otherwise). " +
			"In the environment and flags the list is YAML flow text, e.g. " +
			`HAWK_LEGACY_LISTENERS='[{name: m, address: ":7380", format: ffff, allow: [10.0.0.0/8]}]'. ` +
			"A reload applies allow (closing connections from networks no longer allowed), idle_timeout and max_frame_size " +
			"(new connections) of a listener, matched by name; adding or removing a listener, or changing its address or format, needs an upgrade.",
		DefaultNote: "(none)",
		ReloadNote:  "; allow, idle_timeout, max_frame_size: live"},
	{Name: "udp.listeners", kind: kindObjects, Default: "", Reload: RestartOnly,
		Example: `[{name: lines, address: "127.0.0.1:7390", format: lines, allow: [127.0.0.1/32]}]`,
		Doc: "UDP datagram listeners, a list of objects: name (a-z, 0-9, _, -; labels metrics and records), address (host:port), " +
			"format (lines: each datagram is one report; syslog: RFC 5424 or RFC 3164, parsed into fields; report: hawk's REPORT with client id and token, ACKed once durable, deduplicated), " +
			"allow (required: the source networks whose datagrams are read, as CIDRs; others are refused and counted), " +
			"max_datagram (the largest datagram stored, default 65507), receive_buffer (SO_RCVBUF, default 4MiB; " +
			"the kernel caps it at net.core.rmem_max; 0 keeps the kernel's default), max_pending (datagrams read and not yet durable; " +
			"past it a datagram is dropped and counted, default 65536) and reply (answer each stored datagram with a receipt " +
			"no larger than it, default false). The socket is handed to the new process at an upgrade: no datagram the kernel accepted is lost. " +
			"A reload applies allow, reply and max_pending of a listener, matched by name; any other change needs an upgrade.",
		DefaultNote: "(none)",
		ReloadNote:  "; allow, reply, max_pending: live"},

	{Name: "uploads.enabled", kind: kindBool, Default: "false", Example: "true", Reload: RestartOnly,
		Doc: "Take files from agents on their connections (docs/PROTOCOL.md 4.3); off, an upload is answered upload_disabled."},
	{Name: "uploads.dir", kind: kindString, Default: "", Example: "/var/lib/hawk/uploads", Reload: RestartOnly,
		Doc:         "Directory of the uploads: partial/ holds uploads in progress, files/ the published files. Empty: <spool.dir>/uploads.",
		DefaultNote: "(<spool.dir>/uploads)"},
	{Name: "uploads.max_file_size", kind: kindSize, Default: "8GiB", Example: "1GiB", Reload: RestartOnly,
		Doc: "The largest file an agent may upload; 0: no limit."},
	{Name: "uploads.client_quota", kind: kindSize, Default: "16GiB", Example: "2GiB", Reload: RestartOnly,
		Doc: "Bytes one client id may hold in uploads, partial and published (apart from the spool's retention); 0: no limit."},
	{Name: "uploads.total_quota", kind: kindSize, Default: "64GiB", Example: "100GiB", Reload: RestartOnly,
		Doc: "Bytes all uploads together may hold, partial and published; 0: no limit."},
	{Name: "uploads.expiry", kind: kindDuration, Default: "24h", Example: "1h", Reload: RestartOnly,
		Doc: "A partial upload no connection has open and that got no byte for this long is removed; 0: never."},
	{Name: "uploads.max_in_flight", kind: kindSize, Default: "4MiB", Example: "1MiB", Reload: RestartOnly,
		Doc: "Chunk data bytes a client may have sent and not seen answered, announced in WELCOME (max_upload_in_flight): " +
			"what an interruption can cost in bytes sent twice."},
	{Name: "uploads.bucket", kind: kindString, Default: "HAWK_FILES", Example: "FILES", Reload: RestartOnly,
		Doc: "With destination: jetstream, the NATS JetStream Object Store bucket finished files go to (created if absent; " +
			"A-Z a-z 0-9 _ -). A commit is answered once the file is published in uploads.dir; then it is put into the " +
			"bucket (retried while NATS is down), announced with its bucket and object, and removed from uploads.dir. " +
			`"" keeps finished files in uploads.dir.`,
		DefaultNote: `("" keeps files local)`},
	{Name: "uploads.bucket_replicas", kind: kindInt, Default: "3", Example: "1", Reload: RestartOnly,
		Doc: "Replicas of uploads.bucket when hawk creates it, 1 to 5. With jetstream.require_durable, files are put only " +
			"into a bucket of 3 or more replicas (or with jetstream.sync_always), since the local copy is removed then."},
	{Name: "uploads.bucket_max_bytes", kind: kindSize, Default: "0", Example: "500GiB", Reload: RestartOnly,
		Doc: "Size limit of uploads.bucket when hawk creates it; a full bucket refuses new files, which wait in uploads.dir. " +
			"0: no limit.", DefaultNote: "(no limit)"},
	{Name: "uploads.bucket_ttl", kind: kindDuration, Default: "0s", Example: "720h", Reload: RestartOnly,
		Doc: "Age at which JetStream removes an object of uploads.bucket, when hawk creates it; 0: never.", DefaultNote: "(never)"},
}

// keyIndex is the indexes over keys, built on first use (index) so that importing the
// package costs nothing.
type keyIndex struct {
	byName, byEnv map[string]*Key  // key name, environment variable → key
	sections      map[string]bool  // every proper prefix of a key: "limits"
	field         map[string][]int // key name → its Config field's index path
}

var index = sync.OnceValue(indexKeys)

// indexKeys finds each key's Config field and builds the indexes. It panics on an
// inconsistent table: a key without a field or a field without a key, a field of the
// wrong type (a size without unit:"bytes" or the converse), a duplicate, a key that is
// also a section, a missing Reload. Every new process builds it before it is ready, so
// it allocates little: maps sized once, sections and paths as substrings and one buffer.
func indexKeys() *keyIndex {
	n := len(keys)
	x := &keyIndex{byName: make(map[string]*Key, n), byEnv: make(map[string]*Key, n), sections: make(map[string]bool, n/2), field: make(map[string][]int, n)}
	for i := range keys {
		k := &keys[i]
		if _, dup := x.byName[k.Name]; dup {
			panic("config: key " + k.Name + " defined twice")
		}
		x.byName[k.Name] = k
		if k.Reload != Live && k.Reload != RestartOnly {
			panic("config: key " + k.Name + " says neither Live nor RestartOnly")
		}
		env := envName(k.Name)
		if o, dup := x.byEnv[env]; dup {
			panic("config: keys " + o.Name + " and " + k.Name + " map to the same variable " + env)
		}
		x.byEnv[env] = k
		for j := range len(k.Name) {
			if k.Name[j] == '.' {
				x.sections[k.Name[:j]] = true
			}
		}
	}
	// The index paths share one array: they are short, and kept for the process's life.
	paths := make([]int, 0, 3*n)
	walkFields(reflect.TypeFor[Config](), nil, nil, func(path []byte, f reflect.StructField, at []int) {
		k := x.byName[string(path)]
		if k == nil {
			panic("config: Config field " + string(path) + " has no key in the table")
		}
		if _, dup := x.field[k.Name]; dup {
			panic("config: two Config fields are tagged " + k.Name)
		}
		if !fits(k.kind, f.Type) || (k.kind == kindSize) != (f.Tag.Get("unit") == "bytes") {
			panic(fmt.Sprintf("config: key %s is %s, but its field is a %s `%s`", k.Name, k.kind, f.Type, f.Tag))
		}
		from := len(paths)
		paths = append(paths, at...)
		x.field[k.Name] = paths[from:len(paths):len(paths)]
	})
	for i := range keys {
		name := keys[i].Name
		if _, ok := x.field[name]; !ok {
			panic("config: key " + name + " has no Config field (koanf tags)")
		}
		if x.sections[name] {
			panic("config: key " + name + " is also a section")
		}
	}
	return x
}

// fits reports whether a key of kind k may decode into a field of type t.
func fits(k kind, t reflect.Type) bool {
	switch k {
	case kindString:
		return t == reflect.TypeFor[string]()
	case kindDuration:
		return t == reflect.TypeFor[time.Duration]()
	case kindInt, kindSize:
		return t == reflect.TypeFor[int]() || t == reflect.TypeFor[int64]()
	case kindBool:
		return t == reflect.TypeFor[bool]()
	case kindList:
		return t == reflect.TypeFor[Secrets]()
	case kindObjects:
		return t == reflect.TypeFor[[]LegacyListener]() || t == reflect.TypeFor[[]UDPListener]()
	}
	return false
}

// walkFields calls visit with every non-struct field of t (recursively), its dotted
// koanf-tag path and its index path from the top. path and at are reused between calls:
// visit copies what it keeps.
func walkFields(t reflect.Type, path []byte, at []int, visit func(path []byte, f reflect.StructField, at []int)) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if tag == "" {
			panic("config: field " + t.Name() + "." + f.Name + " has no koanf tag")
		}
		p := append(path, tag...)
		a := append(at, i)
		if f.Type.Kind() == reflect.Struct {
			walkFields(f.Type, append(p, '.'), a, visit)
			continue
		}
		visit(p, f, a)
	}
}

// field is the key's field in c.
func (k *Key) field(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(index().field[k.Name])
}

// fieldType is the Go type of the key's field.
func (k *Key) fieldType() reflect.Type {
	return reflect.TypeFor[Config]().FieldByIndex(index().field[k.Name]).Type
}

// get returns the key's value in c: string, time.Duration, int64 (ints and sizes), bool,
// []string or []LegacyListener (copies).
func (k *Key) get(c *Config) any {
	f := k.field(c)
	switch k.kind {
	case kindString:
		return f.String()
	case kindDuration:
		return time.Duration(f.Int())
	case kindInt, kindSize:
		return f.Int()
	case kindBool:
		return f.Bool()
	case kindList:
		return slices.Clone([]string(f.Interface().(Secrets)))
	case kindObjects:
		if l, ok := f.Interface().([]UDPListener); ok {
			return cloneUDPListeners(l)
		}
		return cloneListeners(f.Interface().([]LegacyListener))
	}
	panic("config: unhandled kind for " + k.Name)
}

// format renders a value from get for Diff and flags' defaults; secrets are redacted.
func (k *Key) format(v any) string {
	if k.Secret {
		return redact(v)
	}
	switch v := v.(type) {
	case string:
		return v
	case time.Duration:
		return v.String()
	case int64:
		if k.kind == kindSize {
			return FormatSize(v)
		}
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case []string:
		return strings.Join(v, ",")
	case []LegacyListener:
		return formatListeners(v)
	case []UDPListener:
		return formatUDPListeners(v)
	}
	return fmt.Sprint(v)
}

// equal compares two values from get; lists compare as sets (order and duplicates do
// not matter to a token list).
func (k *Key) equal(a, b any) bool {
	if la, ok := a.([]string); ok {
		return slices.Equal(setOf(la), setOf(b.([]string)))
	}
	return reflect.DeepEqual(a, b)
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

func knownKeys() []string {
	out := make([]string, len(keys))
	for i := range keys {
		out[i] = keys[i].Name
	}
	return out
}
