package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
)

func TestDefaults(t *testing.T) {
	c := mustLoad(t, &Loader{})
	want := Config{
		Listen:    "127.0.0.1:7373",
		ServerID:  "",
		Log:       Log{Level: "info", Format: "console"},
		Auth:      Auth{Tokens: Secrets{}, Credentials: Secrets{}},
		Heartbeat: Heartbeat{Interval: 10 * time.Second, Timeout: 0},
		Handshake: Handshake{Timeout: 5 * time.Second},
		TLS: TLS{MinVersion: "1.2", ClientAuth: "required", ClientIDFrom: "uri_san", ExpiryGoaway: 10 * time.Minute,
			TicketKeyRotation: 24 * time.Hour, TicketKeysPrevious: 6},
		Limits:  Limits{MaxConns: 100000, HandshakeRate: 5000, MaxFrameSize: 1 << 20, MaxInFlight: 1024, WriteTimeout: 10 * time.Second, FrameTimeout: 30 * time.Second},
		Spool:   Spool{Dir: "./data", Fsync: FsyncNever, SegmentSize: 64 << 20, CacheBytes: 256 << 20, Discard: DiscardNew, FileMode: "0640"},
		Dedup:   Dedup{Window: 4096, MaxClients: 200000, RebuildBytes: 256 << 20},
		Drain:   Drain{Timeout: 30 * time.Second, Spread: 5 * time.Second},
		Upgrade: Upgrade{PIDFile: "", Timeout: 60 * time.Second, Handoff: true, HandoffTimeout: 5 * time.Second},
		Admin:   Admin{Addr: "127.0.0.1:7374", Pprof: false},
		Control: Control{Mode: "0600"},
	}
	want.Destination = DestinationSpool
	want.JetStream = JetStream{URLs: "nats://127.0.0.1:4222", Stream: "HAWK_REPORTS", Subject: "hawk.reports.<client_id>",
		MaxPending: 16384, PublishTimeout: 5 * time.Second, ConnectTimeout: 5 * time.Second, RetryAfter: time.Second,
		RetryHorizon: 2 * time.Minute, RequireDurable: true, Mode: JetStreamDirect}
	want.Uploads = Uploads{MaxFileSize: 8 << 30, ClientQuota: 16 << 30, TotalQuota: 64 << 30, Expiry: 24 * time.Hour, MaxInFlight: 4 << 20,
		Bucket: "HAWK_FILES", BucketReplicas: 3}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", *c, want)
	}
	if got := c.HeartbeatTimeout(); got != 30*time.Second {
		t.Errorf("HeartbeatTimeout() = %s, want 30s (3 × interval)", got)
	}
	if !reflect.DeepEqual(Default(), c) {
		t.Errorf("Default() differs from a Load with no sources")
	}
}

// defaults.yaml documents every key exactly once, and nothing else.
func TestDefaultsYAMLHasEveryKey(t *testing.T) {
	flat, ferrs, err := readYAML(rawbytes.Provider(DefaultsYAML()), sourceDefaults)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ferrs { // unknown keys, keys given twice
		t.Error(e)
	}
	var got []string
	for k := range flat {
		got = append(got, k)
	}
	slices.Sort(got)
	want := knownKeys()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("defaults.yaml keys:\n got %v\nwant %v", got, want)
	}
	// Every key has a comment just above it (or above its section's first key).
	lines := strings.Split(string(DefaultsYAML()), "\n")
	for i, l := range lines {
		trim := strings.TrimSpace(l)
		if trim == "" || strings.HasPrefix(trim, "#") || strings.HasSuffix(trim, ":") {
			continue
		}
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			t.Errorf("defaults.yaml line %d %q has no comment above it", i+1, trim)
		}
	}
}

func TestHeartbeatTimeoutExplicit(t *testing.T) {
	c := Default()
	c.Heartbeat.Timeout = 42 * time.Second
	if got := c.HeartbeatTimeout(); got != 42*time.Second {
		t.Errorf("HeartbeatTimeout() = %s, want 42s", got)
	}
}

// Each layer overrides the one below it, key by key.
func TestPrecedence(t *testing.T) {
	file := tempConfig(t, `
listen: "10.0.0.1:1"
log:
  level: debug
limits:
  max_conns: 10
spool:
  fsync: always
`)
	env := []string{"HAWK_LISTEN=10.0.0.2:2", "HAWK_LIMITS_MAX_CONNS=20", "PATH=/bin", "HOME=/root"}

	// defaults only
	c := mustLoad(t, &Loader{})
	if c.Listen != "127.0.0.1:7373" || c.Limits.MaxConns != 100000 {
		t.Fatalf("defaults: %s %d", c.Listen, c.Limits.MaxConns)
	}

	// file over defaults
	c = mustLoad(t, &Loader{File: file})
	if c.Listen != "10.0.0.1:1" || c.Log.Level != "debug" || c.Limits.MaxConns != 10 || c.Spool.Fsync != "always" {
		t.Errorf("file: %+v", c)
	}
	if c.Spool.SegmentSize != 64<<20 {
		t.Errorf("file: untouched key lost its default: %d", c.Spool.SegmentSize)
	}

	// env over file
	c = mustLoad(t, &Loader{File: file, Env: env})
	if c.Listen != "10.0.0.2:2" || c.Limits.MaxConns != 20 {
		t.Errorf("env: listen %s max_conns %d", c.Listen, c.Limits.MaxConns)
	}
	if c.Log.Level != "debug" || c.Spool.Fsync != "always" {
		t.Errorf("env: file keys not set by env must stay: %s %s", c.Log.Level, c.Spool.Fsync)
	}

	// flags over env; flags that were not set do not override (log.level's flag
	// default is info, the file says debug).
	fs := flags(t, "-config", file, "-listen=10.0.0.3:3")
	c = mustLoad(t, &Loader{File: file, Env: env, Flags: fs})
	if c.Listen != "10.0.0.3:3" {
		t.Errorf("flag: listen %s", c.Listen)
	}
	if c.Limits.MaxConns != 20 || c.Log.Level != "debug" || c.Spool.Fsync != "always" {
		t.Errorf("unset flags overrode lower layers: max_conns %d level %s fsync %s", c.Limits.MaxConns, c.Log.Level, c.Spool.Fsync)
	}

	// flags over defaults alone
	c = mustLoad(t, &Loader{Flags: flags(t, "-limits.max_conns=7", "-admin.pprof")})
	if c.Limits.MaxConns != 7 || !c.Admin.Pprof {
		t.Errorf("flags over defaults: %d %v", c.Limits.MaxConns, c.Admin.Pprof)
	}
}

func TestEnvironmentNilMeansProcessEnv(t *testing.T) {
	t.Setenv("HAWK_LOG_LEVEL", "warn")
	c, err := (&Loader{}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "warn" {
		t.Errorf("log.level %q, want warn from the process environment", c.Log.Level)
	}
}

// Every key can be set from env and from flags, with the same text.
func TestEveryKeyFromEnvAndFlag(t *testing.T) {
	values := map[string]string{
		"listen":                     "0.0.0.0:9000",
		"server_id":                  "edge-1",
		"listen_proxy_from":          "10.0.0.5,10.1.0.0/16",
		"log.level":                  "error",
		"log.format":                 "json",
		"auth.tokens":                "alpha, beta",
		"auth.credentials":           "fleet-a gamma web-* db-1",
		"auth.tokens_file":           "/etc/hawk/tokens",
		"auth.open":                  "true",
		"heartbeat.interval":         "2s",
		"heartbeat.timeout":          "7s",
		"handshake.timeout":          "1s",
		"tls.cert_file":              "/s.crt",
		"tls.key_file":               "/s.key",
		"tls.min_version":            "1.3",
		"tls.client_ca_file":         "/ca.crt",
		"tls.client_auth":            "optional",
		"tls.client_id_from":         "cn",
		"tls.expiry_goaway":          "1h",
		"tls.ticket_keys_file":       "/t.keys",
		"tls.ticket_key_rotation":    "6h",
		"tls.ticket_keys_previous":   "1",
		"limits.max_conns":           "5",
		"limits.handshake_rate":      "250",
		"limits.max_frame_size":      "2MiB",
		"limits.max_in_flight":       "100",
		"limits.frame_timeout":       "12s",
		"limits.write_timeout":       "3s",
		"spool.dir":                  "/var/lib/hawk",
		"spool.fsync":                "always",
		"spool.segment_size":         "16MB",
		"spool.max_bytes":            "1GiB",
		"spool.cache_bytes":          "512MiB",
		"spool.max_age":              "24h",
		"spool.discard":              "old",
		"spool.file_mode":            "0660",
		"dedup.window":               "256",
		"dedup.max_clients":          "7",
		"dedup.rebuild_bytes":        "1GiB",
		"dedup.rebuild_before_ready": "true",
		"drain.timeout":              "9s",
		"drain.spread":               "4s",
		"upgrade.pid_file":           "/run/hawk.pid",
		"upgrade.timeout":            "11s",
		"upgrade.handoff":            "false",
		"upgrade.handoff_timeout":    "3s",
		"admin.addr":                 ":9001",
		"admin.pprof":                "true",
		"control.socket":             "/run/hawk/c.sock",
		"control.mode":               "0660",
		"destination":                "jetstream",
		"jetstream.urls":             "nats://a:4222,nats://b:4222",
		"jetstream.stream":           "R",
		"jetstream.subject":          "r.<client_id>",
		"jetstream.creds":            "/c.creds",
		"jetstream.tls_ca":           "/ca.pem",
		"jetstream.tls_cert":         "/c.pem",
		"jetstream.tls_key":          "/c.key",
		"jetstream.max_pending":      "100",
		"jetstream.publish_timeout":  "3s",
		"jetstream.connect_timeout":  "4s",
		"jetstream.retry_after":      "250ms",
		"jetstream.retry_horizon":    "1h",
		"jetstream.require_durable":  "false",
		"jetstream.sync_always":      "true",
		"jetstream.mode":             "spooled",
		"legacy.listeners":           `[{name: m, address: ":7380", format: c8c9, allow: [10.0.0.0/8, "::1/128"], idle_timeout: 1m}]`,
		"udp.listeners":              `[{name: u, address: ":7390", format: syslog, allow: [10.0.0.0/8], max_datagram: 2KiB, reply: true}]`,
		"uploads.enabled":            "true",
		"uploads.dir":                "/var/lib/hawk/up",
		"uploads.max_file_size":      "1GiB",
		"uploads.client_quota":       "2GiB",
		"uploads.total_quota":        "3GiB",
		"uploads.expiry":             "1h",
		"uploads.max_in_flight":      "1MiB",
		"uploads.bucket":             "FILES",
		"uploads.bucket_replicas":    "1",
		"uploads.bucket_max_bytes":   "1GiB",
		"uploads.bucket_ttl":         "1h",
	}
	want := Config{
		Listen: "0.0.0.0:9000", ServerID: "edge-1", ProxyFrom: "10.0.0.5,10.1.0.0/16",
		Log:       Log{Level: "error", Format: "json"},
		Auth:      Auth{Tokens: Secrets{"alpha", "beta"}, Credentials: Secrets{"fleet-a gamma web-* db-1"}, TokensFile: "/etc/hawk/tokens", Open: true},
		Heartbeat: Heartbeat{Interval: 2 * time.Second, Timeout: 7 * time.Second},
		Handshake: Handshake{Timeout: time.Second},
		TLS: TLS{CertFile: "/s.crt", KeyFile: "/s.key", MinVersion: "1.3", ClientCAFile: "/ca.crt", ClientAuth: "optional",
			ClientIDFrom: "cn", ExpiryGoaway: time.Hour, TicketKeysFile: "/t.keys", TicketKeyRotation: 6 * time.Hour, TicketKeysPrevious: 1},
		Limits:  Limits{MaxConns: 5, HandshakeRate: 250, MaxFrameSize: 2 << 20, MaxInFlight: 100, WriteTimeout: 3 * time.Second, FrameTimeout: 12 * time.Second},
		Spool:   Spool{Dir: "/var/lib/hawk", Fsync: "always", SegmentSize: 16_000_000, MaxBytes: 1 << 30, MaxAge: 24 * time.Hour, CacheBytes: 512 << 20, Discard: "old", FileMode: "0660"},
		Dedup:   Dedup{Window: 256, MaxClients: 7, RebuildBytes: 1 << 30, BeforeReady: true},
		Drain:   Drain{Timeout: 9 * time.Second, Spread: 4 * time.Second},
		Upgrade: Upgrade{PIDFile: "/run/hawk.pid", Timeout: 11 * time.Second, HandoffTimeout: 3 * time.Second},
		Admin:   Admin{Addr: ":9001", Pprof: true},
		Control: Control{Socket: "/run/hawk/c.sock", Mode: "0660"},
		Legacy: Legacy{Listeners: []LegacyListener{{Name: "m", Address: ":7380", Format: "c8c9",
			Allow: []string{"10.0.0.0/8", "::1/128"}, MaxFrameSize: 1 << 20, IdleTimeout: time.Minute}}},
		UDP: UDP{Listeners: []UDPListener{{Name: "u", Address: ":7390", Format: "syslog", Allow: []string{"10.0.0.0/8"},
			MaxDatagram: 2048, ReceiveBuffer: DefaultUDPReceiveBuffer, MaxPending: DefaultUDPMaxPending, Reply: true}}},
	}
	want.Destination = DestinationJetStream
	want.JetStream = JetStream{URLs: "nats://a:4222,nats://b:4222", Stream: "R", Subject: "r.<client_id>", Creds: "/c.creds",
		TLSCA: "/ca.pem", TLSCert: "/c.pem", TLSKey: "/c.key", MaxPending: 100, PublishTimeout: 3 * time.Second,
		ConnectTimeout: 4 * time.Second, RetryAfter: 250 * time.Millisecond, RetryHorizon: time.Hour, SyncAlways: true, Mode: JetStreamSpooled}
	want.Uploads = Uploads{Enabled: true, Dir: "/var/lib/hawk/up", MaxFileSize: 1 << 30, ClientQuota: 2 << 30, TotalQuota: 3 << 30,
		Expiry: time.Hour, MaxInFlight: 1 << 20, Bucket: "FILES", BucketReplicas: 1, BucketMaxBytes: 1 << 30, BucketTTL: time.Hour}
	if len(values) != len(keys) {
		t.Fatalf("test covers %d keys, there are %d", len(values), len(keys))
	}
	var env, args []string
	for k, v := range values {
		env = append(env, envName(k)+"="+v)
		args = append(args, "-"+k+"="+v)
	}
	if c := mustLoad(t, &Loader{Env: env}); !reflect.DeepEqual(*c, want) {
		t.Errorf("env:\n got %+v\nwant %+v", *c, want)
	}
	if c := mustLoad(t, &Loader{Flags: flags(t, args...)}); !reflect.DeepEqual(*c, want) {
		t.Errorf("flags:\n got %+v\nwant %+v", *c, want)
	}
}

func TestEnvNames(t *testing.T) {
	for name, key := range map[string]string{
		"HAWK_LISTEN":           "listen",
		"HAWK_SERVER_ID":        "server_id",
		"HAWK_LIMITS_MAX_CONNS": "limits.max_conns",
		"HAWK_UPGRADE_PID_FILE": "upgrade.pid_file",
		"HAWK_AUTH_TOKENS":      "auth.tokens",
	} {
		if s := index().byEnv[name]; s == nil || s.Name != key {
			t.Errorf("%s maps to %v, want %s", name, s, key)
		}
	}
	// Variables outside the prefix are not ours, even in other cases.
	c := mustLoad(t, &Loader{Env: []string{"hawk_listen=x", "HAWKLISTEN=x", "NOEQUALS", "HAWK_SERVER_ID=a=b"}})
	if c.Listen != "127.0.0.1:7373" || c.ServerID != "a=b" {
		t.Errorf("listen %q server_id %q", c.Listen, c.ServerID)
	}
}

func TestUnknownEnvRejected(t *testing.T) {
	ve := loadErr(t, &Loader{Env: []string{"HAWK_LIMITS_MAXCONNS=5", "HAWK_SERVER_ID=x", "HAWK_LISTEN_ADDR=y"}})
	for _, name := range []string{"HAWK_LIMITS_MAXCONNS", "HAWK_LISTEN_ADDR"} {
		e, ok := hasKey(ve, name)
		if !ok {
			t.Errorf("%s not named: %v", name, ve)
			continue
		}
		if !strings.Contains(e.Reason, "unknown environment variable") {
			t.Errorf("%s: reason %q", name, e.Reason)
		}
	}
	if e, _ := hasKey(ve, "HAWK_LIMITS_MAXCONNS"); !strings.Contains(e.Reason, "HAWK_LIMITS_MAX_CONNS") {
		t.Errorf("no suggestion: %q", e.Reason)
	}
}

// Kubernetes injects these for a Service named hawk; they are not typos of keys, and
// a pod must start with them. A near miss of a key is still refused.
func TestServiceLinksAreNoKeys(t *testing.T) {
	links := []string{"HAWK_SERVICE_HOST=10.0.0.1", "HAWK_SERVICE_PORT=7373", "HAWK_SERVICE_PORT_ADMIN=7374",
		"HAWK_PORT=tcp://10.0.0.1:7373", "HAWK_PORT_7373_TCP=tcp://10.0.0.1:7373", "HAWK_PORT_7373_TCP_PROTO=tcp",
		"HAWK_PORT_7373_TCP_PORT=7373", "HAWK_PORT_7373_TCP_ADDR=10.0.0.1", "HAWK_GENERATION=3", "HAWK_UPGRADE_REQUESTED=123456789"}
	mustLoad(t, &Loader{Env: links})
	for _, k := range keys {
		if serviceLink().MatchString(k.Env()) || k.Env() == GenerationEnv || k.Env() == UpgradeRequestedEnv {
			t.Errorf("key %s's variable %s would be skipped as a service link", k.Name, k.Env())
		}
	}
	ve := loadErr(t, &Loader{Env: append(links, "HAWK_SERVICE_HOSTS=x", "HAWK_PORTS=1")})
	for _, name := range []string{"HAWK_SERVICE_HOSTS", "HAWK_PORTS"} {
		if _, ok := hasKey(ve, name); !ok {
			t.Errorf("%s not refused: %v", name, ve)
		}
	}
}

func TestUnknownFileKeyRejected(t *testing.T) {
	f := tempConfig(t, `
listen: ":1"
limits:
  max_con: 5
loglevel: debug
max_conns: 3
`)
	ve := loadErr(t, &Loader{File: f})
	for key, hint := range map[string]string{
		"limits.max_con": "did you mean limits.max_conns?",
		"loglevel":       "unknown key",
		"max_conns":      "did you mean limits.max_conns?",
	} {
		e, ok := hasKey(ve, key)
		if !ok {
			t.Errorf("%s not named: %v", key, ve)
			continue
		}
		if !strings.Contains(e.Reason, hint) {
			t.Errorf("%s: reason %q, want %q", key, e.Reason, hint)
		}
		if e.Source != "file "+f {
			t.Errorf("%s: source %q", key, e.Source)
		}
	}
}

// Shapes koanf would merge silently: a scalar replacing a section (and with it every
// default inside), a mapping under a key, the same key nested and dotted.
func TestFileShapeErrors(t *testing.T) {
	f := tempConfig(t, `
log: debug
listen:
  port: 1
limits.max_conns: 5
limits:
  max_conns: 6
`)
	ve := loadErr(t, &Loader{File: f})
	if e, ok := hasKey(ve, "log"); !ok || !strings.Contains(e.Reason, "must be a section (keys level, format)") {
		t.Errorf("log: %+v", e)
	}
	if e, ok := hasKey(ve, "listen"); !ok || !strings.Contains(e.Reason, "must be a string, not a mapping") {
		t.Errorf("listen: %+v", e)
	}
	if e, ok := hasKey(ve, "limits.max_conns"); !ok || !strings.Contains(e.Reason, "more than once") {
		t.Errorf("limits.max_conns: %+v", e)
	}
}

func TestFileNullsAndEmptySections(t *testing.T) {
	f := tempConfig(t, `
listen:
log:
auth:
  tokens:
limits: {}
spool:
  # dir: /elsewhere
  fsync: always
limits.max_conns: 9
`)
	c := mustLoad(t, &Loader{File: f})
	if c.Listen != "127.0.0.1:7373" || c.Log.Level != "info" || len(c.Auth.Tokens) != 0 {
		t.Errorf("nulls must leave defaults: %+v", c)
	}
	if c.Spool.Fsync != "always" || c.Spool.Dir != "./data" || c.Limits.MaxConns != 9 {
		t.Errorf("got %+v", c)
	}
	// An empty file is fine too.
	if c := mustLoad(t, &Loader{File: tempConfig(t, "# nothing\n")}); c.Listen != "127.0.0.1:7373" {
		t.Errorf("empty file: %+v", c)
	}
}

func TestFileErrors(t *testing.T) {
	if _, err := (&Loader{File: "/nonexistent/hawk.yaml", Env: []string{}}).Load(); err == nil || !strings.Contains(err.Error(), "/nonexistent/hawk.yaml") {
		t.Errorf("missing file: %v", err)
	}
	f := tempConfig(t, "listen: [unclosed\n")
	if _, err := (&Loader{File: f, Env: []string{}}).Load(); err == nil || !strings.Contains(err.Error(), f) {
		t.Errorf("bad YAML: %v", err)
	}
	f = tempConfig(t, "- a\n- b\n")
	if _, err := (&Loader{File: f, Env: []string{}}).Load(); err == nil {
		t.Errorf("a YAML list as the document: no error")
	}
}

func TestTypeErrorsNameTheKey(t *testing.T) {
	cases := []struct{ env, want string }{
		{"HAWK_HEARTBEAT_INTERVAL=ten", `heartbeat.interval: invalid duration "ten" (env HAWK_HEARTBEAT_INTERVAL)`},
		{"HAWK_DRAIN_TIMEOUT=30", `drain.timeout: invalid duration "30" (missing unit, e.g. "10s")`},
		{"HAWK_LIMITS_MAX_CONNS=many", `limits.max_conns: invalid integer "many"`},
		{"HAWK_SPOOL_SEGMENT_SIZE=12XB", `spool.segment_size: invalid size "12XB"`},
		{"HAWK_ADMIN_PPROF=maybe", `admin.pprof: invalid boolean "maybe"`},
	}
	for _, tc := range cases {
		_, err := (&Loader{Env: []string{tc.env}}).Load()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %s", tc.env, err, tc.want)
		}
	}

	f := tempConfig(t, `
heartbeat:
  interval: 10
limits:
  max_conns: 1.5
  max_frame_size: true
upgrade:
  pid_file: [a, b]
admin:
  pprof: "yes"
spool:
  dir: {}
log:
  level: [debug]
server_id: 2001-12-14
`)
	ve := loadErr(t, &Loader{File: f})
	for key, want := range map[string]string{
		"heartbeat.interval":    `invalid duration "10" (missing unit`,
		"limits.max_conns":      "1.5 is not an integer",
		"limits.max_frame_size": "must be a size, not a boolean",
		"upgrade.pid_file":      "must be a string, not a list",
		"admin.pprof":           `invalid boolean "yes"`,
		"spool.dir":             "must be a string, not a mapping",
		"log.level":             "must be a string, not a list",
		"server_id":             "must be a string, not a timestamp (quote it)",
	} {
		e, ok := hasKey(ve, key)
		if !ok || !strings.Contains(e.Reason, want) {
			t.Errorf("%s: got %+v, want %q", key, e, want)
		}
	}
}

func TestYAMLScalarForms(t *testing.T) {
	f := tempConfig(t, `
server_id: 42
heartbeat:
  timeout: 0
limits:
  max_conns: 1e3
  max_frame_size: 65536
spool:
  segment_size: "1 GiB"
auth:
  tokens: "one,two"
`)
	c := mustLoad(t, &Loader{File: f})
	if c.ServerID != "42" || c.Heartbeat.Timeout != 0 || c.Limits.MaxConns != 1000 || c.Limits.MaxFrameSize != 65536 || c.Spool.SegmentSize != 1<<30 {
		t.Errorf("got %+v", c)
	}
	if !slices.Equal(c.Auth.Tokens, Secrets{"one", "two"}) {
		t.Errorf("tokens from a comma separated YAML string: %d", len(c.Auth.Tokens))
	}
}

// A key removed from the file goes back to its default on the next Load.
func TestDeletedKeyReturnsToDefault(t *testing.T) {
	f := tempConfig(t, "limits:\n  max_conns: 10\nlog:\n  level: debug\n")
	l := &Loader{File: f, Env: []string{}}
	if c := mustLoad(t, l); c.Limits.MaxConns != 10 || c.Log.Level != "debug" {
		t.Fatalf("first load: %+v", c)
	}
	writeFile(t, f, "log:\n  level: debug\n")
	if c := mustLoad(t, l); c.Limits.MaxConns != 100000 || c.Log.Level != "debug" {
		t.Errorf("second load: max_conns %d (want the default back), level %s", c.Limits.MaxConns, c.Log.Level)
	}
	// Removing it from the file reveals env, not a stale file value.
	l.Env = []string{"HAWK_LOG_LEVEL=warn"}
	writeFile(t, f, "")
	if c := mustLoad(t, l); c.Log.Level != "warn" {
		t.Errorf("third load: level %s, want warn from env", c.Log.Level)
	}
}

func TestFlags(t *testing.T) {
	fs := flags(t)
	DescribeFlags(fs)
	if got := fs.Lookup("listen").DefValue; got != "127.0.0.1:7373" {
		t.Errorf("listen default shown as %q", got)
	}
	if got := fs.Lookup("heartbeat.interval").DefValue; got != "10s" {
		t.Errorf("heartbeat.interval default shown as %q", got)
	}
	for i := range keys {
		if fs.Lookup(keys[i].Name) == nil {
			t.Errorf("no flag -%s", keys[i].Name)
		}
	}

	// A bad value fails at parse, naming the flag.
	bad := flag.NewFlagSet("t", flag.ContinueOnError)
	var out bytes.Buffer
	bad.SetOutput(&out)
	RegisterFlags(bad)
	err := bad.Parse([]string{"-heartbeat.interval=ten"})
	if err == nil || !strings.Contains(err.Error(), "heartbeat.interval") || !strings.Contains(err.Error(), `invalid duration "ten"`) {
		t.Errorf("parse error %v", err)
	}

	// -help lists every key, its type and class.
	help := flag.NewFlagSet("t", flag.ContinueOnError)
	help.SetOutput(&out)
	RegisterFlags(help)
	DescribeFlags(help)
	out.Reset()
	help.PrintDefaults()
	for _, want := range []string{"-limits.max_frame_size size", "(default 1MiB)", "restart-only", "-admin.pprof\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1048576": 1 << 20, "64MiB": 64 << 20, "1KiB": 1024, "1kib": 1024,
		"16MB": 16_000_000, "2 GiB": 2 << 30, " 7b ": 7, "1kB": 1000, "3TiB": 3 << 40,
	}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5MiB", "10K", "-1", "1 Mb/s", "99999999999999999999", "9999999999999TiB", "0x10"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 1000: "1000", 1024: "1KiB", 64 << 20: "64MiB", 3 << 30: "3GiB", 1<<40 + 1: "1099511627777", 5 << 40: "5TiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", n, back, err)
		}
	}
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.Auth.Tokens = Secrets{"s3cr3t-one", "s3cr3t-two"}
	r := c.Redacted()
	if len(r) != len(keys) {
		t.Errorf("Redacted has %d keys, want %d", len(r), len(keys))
	}
	if r["auth.tokens"] != "[redacted 2 tokens]" {
		t.Errorf("auth.tokens = %v", r["auth.tokens"])
	}
	if r["heartbeat.interval"] != "10s" || r["limits.max_conns"] != int64(100000) || r["admin.pprof"] != false || r["listen"] != "127.0.0.1:7373" {
		t.Errorf("Redacted = %v", r)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	// The config itself never prints or encodes its tokens either.
	cj, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{string(b), string(cj), fmt.Sprintf("%v %+v %#v %s", c, c, c, c.Auth.Tokens)} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("secret leaked: %s", s)
		}
	}
}

func TestHolder(t *testing.T) {
	a, b := Default(), Default()
	h := NewHolder(a)
	if h.Load() != a {
		t.Fatal("Load after NewHolder")
	}
	h.Store(b)
	if h.Load() != b {
		t.Fatal("Load after Store")
	}
	defer func() {
		if recover() == nil {
			t.Error("Store(nil) did not panic")
		}
	}()
	h.Store(nil)
}

func TestEffectiveServerID(t *testing.T) {
	c := Default()
	host, _ := os.Hostname()
	if id, err := c.EffectiveServerID(); err != nil || id != host {
		t.Errorf("empty server_id: %q %v, want hostname %q", id, err, host)
	}
	c.ServerID = "x"
	if id, _ := c.EffectiveServerID(); id != "x" {
		t.Errorf("server_id x: %q", id)
	}
}

// The example configuration shipped in deploy/ loads and validates, and publishes
// no secret: its credentials come from a tokens file the operator writes.
func TestDeployExampleLoads(t *testing.T) {
	c := mustLoad(t, &Loader{File: "../../deploy/hawk.yaml"})
	if c.Spool.Fsync != FsyncAlways {
		t.Errorf("example loaded as %+v", c)
	}
	if len(c.Auth.Tokens) != 0 || len(c.Auth.Credentials) != 0 || c.Auth.TokensFile == "" || c.Auth.Open {
		t.Errorf("the example's auth section must name a tokens file and hold no secret, nor be open: %+v", c.Auth)
	}
}

// The keys table gives every key a valid default: a value that does not convert or
// validate is an error (a panic at first use), never a zero default.
func TestDecodeDefaultsRefusesBadDefaults(t *testing.T) {
	saved := Default()
	if c, err := decodeDefaults(); err != nil || !reflect.DeepEqual(c, saved) {
		t.Fatalf("decodeDefaults: %v", err)
	}
	for key, bad := range map[string]string{"limits.max_conns": "lots", "log.level": "loud"} {
		k := index().byName[key]
		orig := k.Default
		k.Default = bad
		_, err := decodeDefaults()
		k.Default = orig
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %s: %v", key, bad, err)
		}
	}
}

// defaults.yaml, which is generated from the table, reads as the table's defaults.
func TestDefaultsYAMLIsTheTable(t *testing.T) {
	f := filepath.Join(t.TempDir(), "defaults.yaml")
	if err := os.WriteFile(f, DefaultsYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	if c := mustLoad(t, &Loader{File: f, Env: []string{}}); !reflect.DeepEqual(c, Default()) {
		t.Errorf("defaults.yaml reads as\n%+v\nthe table gives\n%+v", c, Default())
	}
}

// BenchmarkDecodeDefaults is what every Load (and so every new process) pays for its
// defaults; BenchmarkDecodeDefaultsYAML what reading defaults.yaml with koanf would.
func BenchmarkDecodeDefaults(b *testing.B) {
	index()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeDefaults(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDefaultsYAML(b *testing.B) {
	index()
	b.ReportAllocs()
	for b.Loop() {
		flat, ferrs, err := readYAML(rawbytes.Provider(defaultsYAML), sourceDefaults)
		if err != nil || len(ferrs) > 0 {
			b.Fatal(err, ferrs)
		}
		ko := koanf.New(".")
		if err := ko.Load(confmap.Provider(flat, "."), nil); err != nil {
			b.Fatal(err)
		}
		if _, err := unmarshal(ko, &Config{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRegisterFlags is what every start of the server pays to define its flags.
func BenchmarkRegisterFlags(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		RegisterFlags(flag.NewFlagSet("bench", flag.ContinueOnError))
	}
}
