package config

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// FieldError is one problem with one key.
type FieldError struct {
	// Key is the config key ("spool.fsync"), or for an unknown environment variable
	// the variable's name.
	Key string
	// Reason says what is wrong. It never contains a secret value.
	Reason string
	// Source says where the value came from when Load knows it: "default",
	// "file /etc/hawk.yaml", "env HAWK_SPOOL_FSYNC", "flag -spool.fsync". Empty from
	// Validate alone.
	Source string
}

func (e FieldError) String() string {
	if e.Source == "" {
		return e.Key + ": " + e.Reason
	}
	return e.Key + ": " + e.Reason + " (" + e.Source + ")"
}

// ValidationError lists every bad key at once, sorted by key.
type ValidationError struct {
	Errors []FieldError
}

// Error is "config: listen: ...; spool.fsync: must be never or always".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.String())
	}
	return b.String()
}

// Keys returns the offending keys, in order.
func (e *ValidationError) Keys() []string {
	out := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		out[i] = fe.Key
	}
	return out
}

// Limits on values.
const (
	minFrameSize    = 64
	maxFrameSize    = 64 << 20 // protocol.MaxPayloadLimit
	minSegmentSize  = 4096
	maxTokenLen     = 4096 // a token travels in HELLO, which is capped at 16 KiB
	maxServerIDLen  = 255
	minHeartbeatInt = time.Millisecond // WELCOME announces it in whole milliseconds
	// maxHandshakeRate keeps the admission interval (1s/rate) a whole number of
	// nanoseconds; a faster limit is no limit: use 0.
	maxHandshakeRate = 1_000_000_000
	// maxInFlight is MQTT 5's Receive Maximum bound; it also caps the ACKs and NACKs
	// queued for a client that stopped reading (65535 NACKs are a few MiB).
	maxInFlight = 65535
)

// Validate checks every key of c and returns nil or a *ValidationError naming each bad
// key (sorted by key). Load already calls it.
func Validate(c *Config) error {
	var errs []FieldError
	bad := func(key, format string, args ...any) {
		errs = append(errs, FieldError{Key: key, Reason: fmt.Sprintf(format, args...)})
	}

	if reason := checkAddr(c.Listen); reason != "" {
		bad("listen", "%s", reason)
	}
	if reason := checkServerID(c.ServerID); reason != "" {
		bad("server_id", "%s", reason)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "console", "json":
	default:
		bad("log.format", "must be console or json, not %q", c.Log.Format)
	}
	validateAuth(&c.Auth, bad)
	if c.Heartbeat.Interval < minHeartbeatInt {
		bad("heartbeat.interval", "must be at least %s, not %s", minHeartbeatInt, c.Heartbeat.Interval)
	}
	switch t := c.Heartbeat.Timeout; {
	case t < 0:
		bad("heartbeat.timeout", "must not be negative, not %s", t)
	case t > 0 && t <= c.Heartbeat.Interval && c.Heartbeat.Interval >= minHeartbeatInt:
		bad("heartbeat.timeout", "must be 0 (3 × heartbeat.interval) or longer than heartbeat.interval (%s), not %s", c.Heartbeat.Interval, t)
	}
	positive(bad, "handshake.timeout", c.Handshake.Timeout)
	validateTLS(bad, &c.TLS)
	if c.Limits.MaxConns < 1 {
		bad("limits.max_conns", "must be at least 1, not %d", c.Limits.MaxConns)
	}
	if n := c.Limits.HandshakeRate; n < 0 || n > maxHandshakeRate {
		bad("limits.handshake_rate", "must be between 0 (unlimited) and %d, not %d", maxHandshakeRate, n)
	}
	if n := c.Limits.MaxFrameSize; n < minFrameSize || n > maxFrameSize {
		bad("limits.max_frame_size", "must be between %d and %d (64MiB), not %d", minFrameSize, maxFrameSize, n)
	}
	if n := c.Limits.MaxInFlight; n < 1 || n > maxInFlight {
		bad("limits.max_in_flight", "must be between 1 and %d, not %d", maxInFlight, n)
	}
	positive(bad, "limits.write_timeout", c.Limits.WriteTimeout)
	positive(bad, "limits.frame_timeout", c.Limits.FrameTimeout)
	if strings.TrimSpace(c.Spool.Dir) == "" {
		bad("spool.dir", "must not be empty")
	}
	switch c.Spool.Fsync {
	case FsyncNever, FsyncAlways:
	default:
		bad("spool.fsync", "must be never or always, not %q", c.Spool.Fsync)
	}
	if c.Spool.SegmentSize < minSegmentSize {
		bad("spool.segment_size", "must be at least %d, not %d", minSegmentSize, c.Spool.SegmentSize)
	}
	if _, err := c.ProxyPrefixes(); err != nil {
		bad("listen_proxy_from", "%v", err)
	}
	if c.Spool.CacheBytes < 0 {
		bad("spool.cache_bytes", "must not be negative (0: left to the kernel), not %d", c.Spool.CacheBytes)
	}
	if c.Spool.MaxBytes < 0 {
		bad("spool.max_bytes", "must not be negative, not %d", c.Spool.MaxBytes)
	}
	if c.Spool.MaxAge < 0 {
		bad("spool.max_age", "must not be negative, not %s", c.Spool.MaxAge)
	}
	if c.Spool.Discard != DiscardNew && c.Spool.Discard != DiscardOld {
		bad("spool.discard", "must be new or old, not %q", c.Spool.Discard)
	}
	if _, err := ParseFileMode(c.Spool.FileMode); err != nil {
		bad("spool.file_mode", "%v", err)
	}
	// jetstream.* is checked whatever the destination: a typo shows before the day
	// the destination is switched.
	validateJetStream(bad, &c.JetStream)
	validateUploads(bad, &c.Uploads)
	switch c.Destination {
	case DestinationSpool, DestinationJetStream:
	default:
		bad("destination", "must be spool or jetstream, not %q", c.Destination)
	}
	if w := c.Dedup.Window; w < 64 || w > 1<<24 || w&(w-1) != 0 {
		bad("dedup.window", "must be a power of two between 64 and 16777216, not %d", w)
	}
	if c.Dedup.MaxClients < 1 {
		bad("dedup.max_clients", "must be at least 1, not %d", c.Dedup.MaxClients)
	}
	if c.Dedup.RebuildBytes < 0 {
		bad("dedup.rebuild_bytes", "must not be negative, not %d", c.Dedup.RebuildBytes)
	}
	positive(bad, "drain.timeout", c.Drain.Timeout)
	switch s := c.Drain.Spread; {
	case s < 0:
		bad("drain.spread", "must not be negative, not %s", s)
	case s > c.Drain.Timeout && c.Drain.Timeout > 0: // a bad drain.timeout is reported alone
		bad("drain.spread", "must not exceed drain.timeout (%s), not %s", c.Drain.Timeout, s)
	}
	if strings.ContainsRune(c.Upgrade.PIDFile, 0) {
		bad("upgrade.pid_file", "must not contain NUL")
	}
	positive(bad, "upgrade.timeout", c.Upgrade.Timeout)
	positive(bad, "upgrade.handoff_timeout", c.Upgrade.HandoffTimeout)
	if c.Admin.Addr != "" {
		if reason := checkAddr(c.Admin.Addr); reason != "" {
			bad("admin.addr", "%s", reason)
		} else if sameListener(c.Admin.Addr, c.Listen) {
			bad("admin.addr", "must not be the protocol listener's address (%s)", c.Listen)
		}
	}
	if strings.ContainsRune(c.Control.Socket, 0) {
		bad("control.socket", "must not contain NUL")
	} else if len(c.Control.Socket) > 107 {
		bad("control.socket", "is %d bytes long; a unix socket path is at most 107", len(c.Control.Socket))
	}
	if _, err := c.ControlMode(); err != nil {
		bad("control.mode", "%v", err)
	}
	validateLegacy(c, bad)
	validateUDP(c, bad)

	if len(errs) == 0 {
		return nil
	}
	sortFieldErrors(errs)
	return &ValidationError{Errors: errs}
}

func positive(bad func(string, string, ...any), key string, d time.Duration) {
	if d <= 0 {
		bad(key, "must be positive, not %s", d)
	}
}

// checkAddr accepts host:port with a numeric port (0 picks one, for tests); the host
// may be empty for every interface.
func checkAddr(a string) string {
	if a == "" {
		return "must not be empty"
	}
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Sprintf("must be host:port, not %q", a)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(p, 10) != port {
		return fmt.Sprintf("port must be a number 0-65535, not %q", port)
	}
	return ""
}

// sameListener reports whether two valid addresses would collide: same nonzero port and
// the same host or a wildcard host on either side.
func sameListener(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

func checkServerID(id string) string {
	if len(id) > maxServerIDLen {
		return fmt.Sprintf("must be at most %d bytes", maxServerIDLen)
	}
	if !utf8.ValidString(id) || strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Sprintf("must be printable without spaces, not %q", id)
	}
	return ""
}

func sortFieldErrors(e []FieldError) {
	sort.SliceStable(e, func(i, j int) bool { return e[i].Key < e[j].Key })
}

// validateJetStream checks the jetstream.* keys, only when they are used.
func validateJetStream(bad func(string, string, ...any), j *JetStream) {
	if strings.TrimSpace(j.URLs) == "" {
		bad("jetstream.urls", "must not be empty")
	}
	if strings.TrimSpace(j.Stream) == "" || strings.ContainsAny(j.Stream, ". *>") {
		bad("jetstream.stream", "must be a stream name (no spaces, '.', '*', '>'), not %q", j.Stream)
	}
	if s := strings.ReplaceAll(j.Subject, "<client_id>", "x"); s == "" || strings.ContainsAny(s, " *>") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		bad("jetstream.subject", "must be a subject without wildcards (<client_id> is replaced), not %q", s)
	}
	if j.Mode != JetStreamDirect && j.Mode != JetStreamSpooled {
		bad("jetstream.mode", "must be direct or spooled, not %q", j.Mode)
	}
	if n := j.MaxPending; n < 1 || n > 1<<20 {
		bad("jetstream.max_pending", "must be between 1 and 1048576, not %d", n)
	}
	positive(bad, "jetstream.publish_timeout", j.PublishTimeout)
	positive(bad, "jetstream.connect_timeout", j.ConnectTimeout)
	positive(bad, "jetstream.retry_after", j.RetryAfter)
	positive(bad, "jetstream.retry_horizon", j.RetryHorizon)
	for key, path := range map[string]string{"jetstream.creds": j.Creds, "jetstream.tls_ca": j.TLSCA, "jetstream.tls_cert": j.TLSCert, "jetstream.tls_key": j.TLSKey} {
		if strings.ContainsRune(path, 0) {
			bad(key, "must be a file path")
		}
	}
}

// validateTLS checks the tls.* values. Whether the files exist and hold a usable
// key pair is checked when the server loads them (tlsconf), with the keys named.
func validateTLS(bad func(key, format string, args ...any), t *TLS) {
	switch t.MinVersion {
	case "1.2", "1.3":
	default:
		bad("tls.min_version", "must be 1.2 or 1.3, not %q", t.MinVersion)
	}
	switch t.ClientAuth {
	case "none", "optional", "required":
	default:
		bad("tls.client_auth", "must be none, optional or required, not %q", t.ClientAuth)
	}
	switch t.ClientIDFrom {
	case "uri_san", "dns_san", "cn":
	default:
		bad("tls.client_id_from", "must be uri_san, dns_san or cn, not %q", t.ClientIDFrom)
	}
	if t.ExpiryGoaway < 0 {
		bad("tls.expiry_goaway", "must not be negative, not %s", t.ExpiryGoaway)
	}
	if t.TicketKeyRotation < time.Second {
		bad("tls.ticket_key_rotation", "must be at least 1s, not %s", t.TicketKeyRotation)
	}
	if t.TicketKeysPrevious < 0 || t.TicketKeysPrevious > 15 {
		bad("tls.ticket_keys_previous", "must be between 0 and 15, not %d", t.TicketKeysPrevious)
	}
	for key, path := range map[string]string{"tls.cert_file": t.CertFile, "tls.key_file": t.KeyFile, "tls.client_ca_file": t.ClientCAFile, "tls.ticket_keys_file": t.TicketKeysFile} {
		if strings.ContainsRune(path, 0) {
			bad(key, "must be a file path")
		}
	}
}
