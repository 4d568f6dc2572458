package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// changedValues holds, for every key, a valid value different from the default.
var changedValues = map[string]string{
	"listen":                     "127.0.0.1:8000",
	"server_id":                  "other",
	"listen_proxy_from":          "10.0.0.5",
	"log.level":                  "debug",
	"log.format":                 "json",
	"auth.tokens":                "s3cr3t-a,s3cr3t-b",
	"auth.credentials":           "fleet-a s3cr3t-c web-*",
	"auth.tokens_file":           "/etc/hawk/tokens",
	"auth.open":                  "true",
	"heartbeat.interval":         "3s",
	"heartbeat.timeout":          "20s",
	"handshake.timeout":          "2s",
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
	"limits.max_conns":           "50",
	"limits.handshake_rate":      "2000",
	"limits.max_frame_size":      "128KiB",
	"limits.max_in_flight":       "256",
	"limits.frame_timeout":       "10s",
	"limits.write_timeout":       "4s",
	"spool.dir":                  "/tmp/spool",
	"spool.fsync":                "always",
	"spool.segment_size":         "1MiB",
	"spool.max_bytes":            "20GiB",
	"spool.cache_bytes":          "1GiB",
	"spool.max_age":              "168h",
	"spool.discard":              "old",
	"spool.file_mode":            "0600",
	"dedup.window":               "1024",
	"dedup.max_clients":          "50000",
	"dedup.rebuild_bytes":        "64MiB",
	"dedup.rebuild_before_ready": "true",
	"drain.timeout":              "20s",
	"drain.spread":               "1s",
	"upgrade.pid_file":           "/run/hawk.pid",
	"upgrade.timeout":            "5s",
	"upgrade.handoff":            "false",
	"upgrade.handoff_timeout":    "1s",
	"admin.addr":                 "",
	"admin.pprof":                "true",
	"control.socket":             "/run/hawk/control.sock",
	"control.mode":               "0660",
	"destination":                "jetstream",
	"jetstream.urls":             "nats://n1:4222",
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
	"legacy.listeners":           `[{name: m, address: "127.0.0.1:7380", format: ffff, allow: [10.0.0.0/8]}]`,  // adding one: restart-only
	"udp.listeners":              `[{name: u, address: "127.0.0.1:7390", format: lines, allow: [10.0.0.0/8]}]`, // adding one: restart-only
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

var restartOnly = []string{"admin.addr", "listen", "listen_proxy_from", "tls.cert_file", "tls.key_file", "tls.min_version", "tls.client_ca_file", "tls.client_auth", "log.format", "server_id", "spool.dir", "spool.discard", "upgrade.pid_file", "upgrade.timeout", "dedup.window", "dedup.rebuild_bytes", "dedup.rebuild_before_ready", "legacy.listeners", "udp.listeners", "control.socket", "control.mode",
	"destination", "jetstream.urls", "jetstream.stream", "jetstream.subject", "jetstream.creds", "jetstream.tls_ca", "jetstream.tls_cert",
	"jetstream.tls_key", "jetstream.max_pending", "jetstream.publish_timeout", "jetstream.connect_timeout", "jetstream.retry_after",
	"jetstream.retry_horizon", "jetstream.require_durable", "jetstream.sync_always", "jetstream.mode",
	"uploads.enabled", "uploads.dir", "uploads.max_file_size", "uploads.client_quota", "uploads.total_quota", "uploads.expiry", "uploads.max_in_flight",
	"uploads.bucket", "uploads.bucket_replicas", "uploads.bucket_max_bytes", "uploads.bucket_ttl",
	"tls.ticket_keys_file", "tls.ticket_key_rotation", "tls.ticket_keys_previous",
	"spool.file_mode"}

func TestDiffEveryKey(t *testing.T) {
	if len(changedValues) != len(keys) {
		t.Fatalf("test covers %d keys, there are %d", len(changedValues), len(keys))
	}
	running := Default()
	for key, v := range changedValues {
		c := mustLoad(t, &Loader{Env: []string{envName(key) + "=" + v}})
		ch := Diff(running, c)
		if len(ch) != 1 || ch[0].Key != key {
			t.Errorf("%s: changes %+v", key, ch)
			continue
		}
		if want := slices.Contains(restartOnly, key); ch[0].RestartOnly != want {
			t.Errorf("%s: RestartOnly %v, want %v", key, ch[0].RestartOnly, want)
		}
		if strings.Contains(ch[0].Old+ch[0].New, "s3cr3t") {
			t.Errorf("%s: secret in change %+v", key, ch[0])
		}
		// Prepare agrees: live keys apply, restart-only keys are refused, naming the key.
		l := &Loader{Env: []string{envName(key) + "=" + v}}
		next, changes, err := Prepare(l, running)
		if slices.Contains(restartOnly, key) {
			if err == nil || next != nil || changes != nil {
				t.Errorf("%s: Prepare accepted a restart-only change", key)
				continue
			}
			if want := key + ": requires an upgrade (SIGHUP)"; !strings.Contains(err.Error(), want) {
				t.Errorf("%s: Prepare error %v, want %q", key, err, want)
			}
		} else if err != nil || next == nil || len(changes) != 1 {
			t.Errorf("%s: Prepare: %v %v", key, changes, err)
		}
	}
}

func TestDiffFormatsAndOrder(t *testing.T) {
	a, b := Default(), Default()
	b.Limits.MaxConns = 5
	b.Heartbeat.Interval = 90 * time.Second
	b.Admin.Pprof = true
	b.Auth.Tokens = Secrets{"s3cr3t"}
	ch := Diff(a, b)
	want := []Change{
		{Key: "admin.pprof", Old: "false", New: "true"},
		{Key: "auth.tokens", Old: "[redacted 0 tokens]", New: "[redacted 1 tokens]"},
		{Key: "heartbeat.interval", Old: "10s", New: "1m30s"},
		{Key: "limits.max_conns", Old: "100000", New: "5"},
	}
	if !slices.Equal(ch, want) {
		t.Errorf("Diff:\n got %+v\nwant %+v", ch, want)
	}
	if ch := Diff(a, a.Clone()); len(ch) != 0 {
		t.Errorf("no change: %+v", ch)
	}
	// Token lists are sets: reordering is not a change, replacing one is (redacted).
	a.Auth.Tokens, b = Secrets{"x", "y"}, a.Clone()
	b.Auth.Tokens = Secrets{"y", "x", "x"}
	if ch := Diff(a, b); len(ch) != 0 {
		t.Errorf("reordered tokens: %+v", ch)
	}
	b.Auth.Tokens = Secrets{"x", "s3cr3t"}
	ch = Diff(a, b)
	if len(ch) != 1 || ch[0].Old != "[redacted 2 tokens]" || ch[0].New != "[redacted 2 tokens]" {
		t.Errorf("replaced token: %+v", ch)
	}
	// nil compares as the zero config rather than panicking.
	if ch := Diff(nil, a); len(ch) == 0 {
		t.Errorf("Diff(nil, c) is empty")
	}
}

// Prepare names every offending key at once: invalid ones and restart-only changes.
func TestPrepareRejectsAll(t *testing.T) {
	running := Default()
	f := tempConfig(t, `
listen: "127.0.0.1:9999"
spool:
  dir: /elsewhere
  fsync: sometimes
auth:
  tokens: [s3cr3t]
limits:
  max_conns: 0
`)
	next, changes, err := Prepare(&Loader{File: f, Env: []string{}}, running)
	if err == nil || next != nil || changes != nil {
		t.Fatalf("Prepare accepted: %v %v", next, changes)
	}
	wantKeys(t, err, "listen", "spool.dir", "spool.fsync", "limits.max_conns")
	var ve *ValidationError
	errors.As(err, &ve)
	if e, _ := hasKey(ve, "listen"); e.Reason != "requires an upgrade (SIGHUP)" {
		t.Errorf("listen: %q", e.Reason)
	}
	if e, _ := hasKey(ve, "spool.fsync"); !strings.Contains(e.Reason, "must be never or always") {
		t.Errorf("spool.fsync: %q", e.Reason)
	}
	if _, ok := hasKey(ve, "auth.tokens"); ok {
		t.Errorf("auth.tokens is live and valid, yet named")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("secret in error: %v", err)
	}

	// A restart-only key with a bad value is reported once, as bad.
	f2 := tempConfig(t, "listen: nonsense\n")
	_, _, err = Prepare(&Loader{File: f2, Env: []string{}}, running)
	errors.As(err, &ve)
	if len(ve.Errors) != 1 || !strings.Contains(ve.Errors[0].Reason, "host:port") {
		t.Errorf("bad restart-only key: %v", err)
	}

	// An unreadable source is a plain error.
	if _, _, err := Prepare(&Loader{File: "/nonexistent.yaml", Env: []string{}}, running); err == nil || errors.As(err, &ve) {
		t.Errorf("missing file: %v", err)
	}
}

func TestPrepareAccepts(t *testing.T) {
	f := tempConfig(t, "log:\n  level: debug\nauth:\n  tokens: [s3cr3t]\n")
	l := &Loader{File: f, Env: []string{}}
	running := mustLoad(t, &Loader{Env: []string{}})
	next, changes, err := Prepare(l, running)
	if err != nil {
		t.Fatal(err)
	}
	if next.Log.Level != "debug" || len(next.Auth.Tokens) != 1 {
		t.Errorf("next: %+v", next)
	}
	if len(changes) != 2 || changes[0].Key != "auth.tokens" || changes[1].Key != "log.level" {
		t.Errorf("changes: %+v", changes)
	}
	// Same sources again: nothing to do.
	_, changes, err = Prepare(l, next)
	if err != nil || len(changes) != 0 {
		t.Errorf("no-op reload: %v %v", changes, err)
	}
	// Restart-only keys equal to the running ones are fine even when set differently.
	writeFile(t, f, "listen: \"127.0.0.1:7373\"\n")
	if _, _, err := Prepare(l, running); err != nil {
		t.Errorf("unchanged restart-only key: %v", err)
	}
}
