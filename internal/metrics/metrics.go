// Package metrics defines hawk's Prometheus metrics and implements the observers of
// the packages that produce them.
//
// The metrics are kept by internal/promtext, written in the Prometheus text format.
// Hot-path calls arrive batched
// (per read, per write, per spool batch) and resolve to pre-bound counters, so no
// label lookup happens per frame.
package metrics

import (
	"github.com/hawk-agents/hawk/internal/auth"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/promtext"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// Metrics is every hawk metric, registered on its own registry.
type Metrics struct {
	Registry *promtext.Registry

	accepted       *promtext.Counter
	closed         *promtext.CounterVec
	closedBy       map[conn.CloseReason]*promtext.Counter
	framesIn       [16]*promtext.Counter
	framesOut      [16]*promtext.Counter
	bytesIn        *promtext.Counter
	bytesOut       *promtext.Counter
	acked          *promtext.Counter
	nacked         *promtext.Counter
	goaways        *promtext.Counter
	ackLatency     *promtext.Histogram
	spoolWrite     *promtext.Histogram
	spoolFsync     *promtext.Histogram
	spoolRecords   *promtext.Counter
	spoolBytes     *promtext.Counter
	spoolSegments  *promtext.Counter
	spoolErrors    *promtext.Counter
	spoolThrottled *promtext.Counter
	retention      *RetentionObserver
	upgrades       *promtext.CounterVec
	drainDuration  *promtext.Gauge
	reloads        *promtext.CounterVec
	lastReload     *promtext.Gauge
	ready          *promtext.Gauge
	generation     *promtext.Gauge
	refused        map[protocol.Code]*promtext.Counter
	refusedVec     *promtext.CounterVec
	busyByShare    [2]*promtext.Counter // [within, over] the source's share of the rate
	tlsReloads     *promtext.CounterVec
	tlsNotAfter    *promtext.Gauge
	tlsFailures    *promtext.Counter
	authOK         *promtext.CounterVec
	authRefused    *promtext.CounterVec
	authFile       *promtext.CounterVec
	tickets        ticketVecs
	// gauges read from the connection manager on scrape; nil until ReadConns
	conns  atomic.Pointer[ConnGauges]
	legacy legacyVecs
	udp    udpVecs
}

// ConnGauges is the connection manager's state the gauges read on scrape
// (*conn.Manager implements it).
type ConnGauges interface {
	// DrainRemaining is the connections a drain still waits for; 0 when not draining.
	DrainRemaining() int
	// PeakAdmissionsPerSecond is the most connections admitted in one second.
	PeakAdmissionsPerSecond() int
}

// refusalCodes are the codes a connection is refused with at accept, before its
// HELLO: hawk_admissions_refused_total's reason label, pre-bound.
var refusalCodes = []protocol.Code{protocol.CodeBusy, protocol.CodeTooManyConns}

// Closed-connection reasons, pre-bound so the label set is known from the start.
var closeReasons = []conn.CloseReason{
	conn.ReasonClient, conn.ReasonHeartbeatTimeout, conn.ReasonHandshake, conn.ReasonProtocol,
	conn.ReasonSlowConsumer, conn.ReasonFrameTimeout, conn.ReasonDrain, conn.ReasonRevoked, conn.ReasonReplaced,
	conn.ReasonLimit, conn.ReasonBusy, conn.ReasonShutdown, conn.ReasonHandoff, conn.ReasonHandoffLost,
	conn.ReasonCredentials,
}

// latencyBuckets spans 50µs to ~13s: an ack without fsync is tens of µs, with
// fsync on a slow disk tens of ms, and anything past seconds is an incident.
var latencyBuckets = promtext.ExponentialBuckets(50e-6, 2, 19)

// New creates the metrics; connections reports the live connection count on scrape.
func New(version string, connections func() int) *Metrics {
	r := promtext.NewRegistry()
	f := factory{r}
	m := &Metrics{Registry: r}
	m.accepted = f.counter("hawk_connections_accepted_total", "TCP connections accepted by the listener.")
	f.gaugeFunc("hawk_connections", "Connections open now, handshaking ones included.", func() float64 { return float64(connections()) })
	m.closed = f.counterVec("hawk_connections_closed_total", "Connections closed, by reason (client, heartbeat_timeout, handshake, protocol, slow_consumer, frame_timeout, drain, revoked, replaced, limit, busy, shutdown).", "reason")
	m.closedBy = make(map[conn.CloseReason]*promtext.Counter, len(closeReasons))
	for _, r := range closeReasons {
		m.closedBy[r] = m.closed.WithLabelValues(string(r))
	}
	in := f.counterVec("hawk_frames_received_total", "Frames received, by type.", "type")
	out := f.counterVec("hawk_frames_sent_total", "Frames sent, by type.", "type")
	for t := protocol.TypeHello; t.Valid(); t++ {
		m.framesIn[t] = in.WithLabelValues(t.String())
		m.framesOut[t] = out.WithLabelValues(t.String())
	}
	m.bytesIn = f.counter("hawk_received_bytes_total", "Bytes read from connections.")
	m.bytesOut = f.counter("hawk_sent_bytes_total", "Bytes written to connections.")
	m.acked = f.counter("hawk_reports_acked_total", "Reports persisted and acknowledged.")
	m.nacked = f.counter("hawk_reports_nacked_total", "Reports refused with a NACK (spool write failed or server stopping).")
	m.goaways = f.counter("hawk_goaways_sent_total", "GOAWAY frames sent during drains.")
	m.ackLatency = f.histogram("hawk_ack_latency_seconds", "Time from a report's arrival to its ACK being queued (spool write and fsync included).")
	m.spoolWrite = f.histogram("hawk_spool_write_seconds", "Duration of one group-commit write to the spool.")
	m.spoolFsync = f.histogram("hawk_spool_fsync_seconds", "Duration of one spool fsync (only when spool.fsync is always).")
	m.spoolRecords = f.counter("hawk_spool_records_total", "Report records written to the spool.")
	m.spoolBytes = f.counter("hawk_spool_written_bytes_total", "Bytes written to spool segments.")
	m.spoolSegments = f.counter("hawk_spool_segments_opened_total", "Spool segment files opened (start and rotation).")
	m.spoolErrors = f.counter("hawk_spool_write_errors_total", "Failed spool writes; each failed batch was NACKed as retryable.")
	m.spoolThrottled = f.counter("hawk_spool_throttled_total", "Times a connection stopped reading because the spool had its limit of bytes waiting for the disk.")
	m.retention = newRetentionObserver(f)
	m.upgrades = f.counterVec("hawk_upgrades_total", "Binary upgrades (SIGHUP) by result: success, failure, refused.", "result")
	for _, res := range []string{"success", "failure", "refused"} {
		m.upgrades.WithLabelValues(res)
	}
	m.drainDuration = f.gauge("hawk_drain_duration_seconds", "Duration of the last drain, from its start until no connection was left.")
	m.reloads = f.counterVec("hawk_config_reloads_total", "Configuration reloads by result: success, failure.", "result")
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	m.lastReload = f.gauge("hawk_config_last_reload_success_timestamp_seconds", "Unix time of the last successful configuration reload (process start until the first).")
	m.lastReload.SetToCurrentTime()
	m.refusedVec = f.counterVec("hawk_admissions_refused_total", "Connections refused at accept, before HELLO, by the ERROR code they got: busy (over limits.handshake_rate), too_many_connections (limits.max_conns). Each is also counted in hawk_connections_closed_total (reason busy, limit).", "reason")
	m.refused = make(map[protocol.Code]*promtext.Counter, len(refusalCodes))
	for _, c := range refusalCodes {
		m.refused[c] = m.refusedVec.WithLabelValues(string(c))
	}
	busy := f.counterVec("hawk_admissions_busy_by_share_total", "Connections refused with ERROR busy, by whether their source (an IPv4 address, an IPv6 /64) was over its share of limits.handshake_rate (1/8): over is a source connecting faster than its share (a flood; the log line 'connections refused' names the source refused most), within is an agent refused although its source was within its share (the rate is too low for the fleet).", "share")
	m.busyByShare = [2]*promtext.Counter{busy.WithLabelValues("within"), busy.WithLabelValues("over")}
	f.gaugeFunc("hawk_admissions_peak_per_second", "The most connections admitted in one second since the process started (past limits.max_conns and limits.handshake_rate): a reconnect storm's peak, which rate() over a scrape interval averages away.",
		func() float64 { return m.readConns(ConnGauges.PeakAdmissionsPerSecond) })
	f.gaugeFunc("hawk_drain_connections_remaining", "Connections the drain in progress still waits for (told GOAWAY or about to be); 0 when not draining.",
		func() float64 { return m.readConns(ConnGauges.DrainRemaining) })
	m.generation = f.gauge("hawk_generation", "This process's generation: 1 when started, one more at each in-place upgrade (counters restart at every exec; this tells a restart from an upgrade).")
	m.ready = f.gauge("hawk_ready", "1 while this process serves (between Ready and the start of a drain), else 0.")
	bi := f.gaugeVec("hawk_build_info", "Build information; the value is always 1.", "version", "goversion")
	bi.WithLabelValues(version, runtime.Version()).Set(1)
	m.legacy = newLegacyVecs(f)
	m.udp = newUDPVecs(f)
	m.tlsReloads = f.counterVec("hawk_tls_reloads_total", "Reloads of the TLS certificate, key and client CA bundle (file change, SIGUSR1, hawk reload) by result: success, failure (the last good files stay in force).", "result")
	m.tlsReloads.WithLabelValues("success")
	m.tlsReloads.WithLabelValues("failure")
	m.tlsNotAfter = f.gauge("hawk_tls_cert_not_after_seconds", "Unix time of the NotAfter of the server certificate in force (0 without TLS): alert on it minus time() before expiry.")
	m.authOK = f.counterVec("hawk_auth_hellos_total", "HELLOs admitted, by the credential (auth.credentials name, auth.tokens[i], or \"\" on an open server) that admitted them.", "credential")
	m.authRefused = f.counterVec("hawk_auth_refusals_total", "HELLOs refused with ERROR unauthorized, by credential (\"\" when the token matched none) and reason: unknown_token, not_covered (the credential does not cover the client id), open_remote (no credentials, auth.open false, a non-loopback agent).", "credential", "reason")
	for _, r := range []auth.Reason{auth.UnknownToken, auth.NotCovered, auth.OpenRemote} {
		m.authRefused.WithLabelValues("", string(r))
	}
	m.authFile = f.counterVec("hawk_auth_tokens_file_reloads_total", "Reads of auth.tokens_file after a change (file poll, SIGUSR1, hawk reload) by result: success, failure (the last good credentials stay in force).", "result")
	m.authFile.WithLabelValues("success")
	m.authFile.WithLabelValues("failure")
	m.tlsFailures = f.counter("hawk_tls_handshake_failures_total", "TLS handshakes that failed (bad or missing client certificate, unknown CA, timeout, not TLS).")
	m.tickets = newTicketVecs(f)
	registerRuntime(r)
	return m
}

type factory struct{ r *promtext.Registry }

func (f factory) counter(name, help string) *promtext.Counter { return f.r.Counter(name, help) }

func (f factory) counterVec(name, help string, labels ...string) *promtext.CounterVec {
	return f.r.CounterVec(name, help, labels...)
}

func (f factory) gauge(name, help string) *promtext.Gauge { return f.r.Gauge(name, help) }

func (f factory) gaugeVec(name, help string, labels ...string) *promtext.GaugeVec {
	return f.r.GaugeVec(name, help, labels...)
}

func (f factory) gaugeFunc(name, help string, fn func() float64) { f.r.GaugeFunc(name, help, fn) }

func (f factory) histogram(name, help string) *promtext.Histogram {
	return f.r.Histogram(name, help, latencyBuckets)
}

// ReadConns makes the gauges that follow the connection manager's state read src.
func (m *Metrics) ReadConns(src ConnGauges) { m.conns.Store(&src) }

func (m *Metrics) readConns(get func(ConnGauges) int) float64 {
	if src := m.conns.Load(); src != nil {
		return float64(get(*src))
	}
	return 0
}

// Upgrade counts an upgrade attempt: result is success, failure or refused.
func (m *Metrics) Upgrade(result string) { m.upgrades.WithLabelValues(result).Inc() }

// Reload counts a configuration reload.
func (m *Metrics) Reload(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.lastReload.SetToCurrentTime()
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
}

// Drained records the duration of a finished drain.
func (m *Metrics) Drained(d time.Duration) { m.drainDuration.Set(d.Seconds()) }

// SetGeneration sets hawk_generation.
func (m *Metrics) SetGeneration(g int) { m.generation.Set(float64(g)) }

// SetReady sets hawk_ready.
func (m *Metrics) SetReady(ready bool) {
	if ready {
		m.ready.Set(1)
	} else {
		m.ready.Set(0)
	}
}
