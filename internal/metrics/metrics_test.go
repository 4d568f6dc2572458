package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/legacy"
	"github.com/hawk-agents/hawk/internal/promtext/promtexttest"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// Every family hawk promises, so a rename or a lost registration fails here.
var families = []string{
	"hawk_connections", "hawk_connections_accepted_total", "hawk_connections_closed_total",
	"hawk_frames_received_total", "hawk_frames_sent_total", "hawk_received_bytes_total", "hawk_sent_bytes_total",
	"hawk_reports_acked_total", "hawk_reports_nacked_total", "hawk_goaways_sent_total",
	"hawk_ack_latency_seconds", "hawk_spool_write_seconds", "hawk_spool_fsync_seconds",
	"hawk_spool_records_total", "hawk_spool_written_bytes_total", "hawk_spool_segments_opened_total",
	"hawk_spool_write_errors_total", "hawk_spool_throttled_total", "hawk_upgrades_total", "hawk_drain_duration_seconds",
	"hawk_config_reloads_total", "hawk_config_last_reload_success_timestamp_seconds", "hawk_ready",
	"hawk_build_info", "go_goroutines", "process_resident_memory_bytes",
	"hawk_admissions_refused_total", "hawk_admissions_peak_per_second", "hawk_drain_connections_remaining",
}

func TestFamiliesPresentAndLintClean(t *testing.T) {
	m := New("v-test", func() int { return 3 })
	mfs, err := promtexttest.Gather(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, f := range families {
		if !have[f] {
			t.Errorf("metric family %s is missing", f)
		}
	}
	problems, err := testutil.GatherAndLint(promtexttest.Gatherer(m.Registry))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if got := m.ready.Value(); got != 0 {
		t.Fatalf("hawk_ready = %v before SetReady", got)
	}
}

func TestObserversMoveCounters(t *testing.T) {
	m := New("v-test", func() int { return 7 })
	o := m.Conn()
	o.Accepted()
	o.FramesIn(protocol.TypeReport, 5)
	o.FramesOut(protocol.TypeAck, 5)
	o.Acked(5)
	o.Nacked(1)
	o.BytesIn(100)
	o.Closed(conn.ReasonHeartbeatTimeout, true)
	o.Closed(conn.ReasonRevoked, true)
	o.GoawaySent()
	sp := m.Spool()
	sp.BatchWritten(5, 900, time.Millisecond, 2*time.Millisecond)
	sp.WriteFailed(nil)
	sp.SegmentOpened("x")
	sp.AckLatency(3*time.Millisecond, 5)
	sp.Throttled()
	m.Upgrade("failure")
	m.Reload(false)

	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"accepted", m.accepted.Value(), 1},
		{"frames in REPORT", m.framesIn[protocol.TypeReport].Value(), 5},
		{"frames out ACK", m.framesOut[protocol.TypeAck].Value(), 5},
		{"acked", m.acked.Value(), 5},
		{"nacked", m.nacked.Value(), 1},
		{"bytes in", m.bytesIn.Value(), 100},
		{"closed heartbeat", m.closed.WithLabelValues("heartbeat_timeout").Value(), 1},
		{"closed revoked", m.closed.WithLabelValues("revoked").Value(), 1},
		{"goaways", m.goaways.Value(), 1},
		{"spool records", m.spoolRecords.Value(), 5},
		{"spool errors", m.spoolErrors.Value(), 1},
		{"segments", m.spoolSegments.Value(), 1},
		{"spool throttled", m.spoolThrottled.Value(), 1},
		{"upgrade failures", m.upgrades.WithLabelValues("failure").Value(), 1},
		{"reload failures", m.reloads.WithLabelValues("failure").Value(), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := m.ackLatency.Count(); n != 5 {
		t.Fatalf("ack latency histogram count = %d after 5 reports ACKed", n)
	}
	out, err := testutil.GatherAndCount(promtexttest.Gatherer(m.Registry), "hawk_connections")
	if err != nil || out != 1 {
		t.Fatalf("hawk_connections series: %d %v", out, err)
	}
	if err := testutil.GatherAndCompare(promtexttest.Gatherer(m.Registry), strings.NewReader(`
# HELP hawk_connections Connections open now, handshaking ones included.
# TYPE hawk_connections gauge
hawk_connections 7
`), "hawk_connections"); err != nil {
		t.Fatal(err)
	}
}

// fakeConns stands for the connection manager the gauges read.
type fakeConns struct{ remaining, peak int }

func (f fakeConns) DrainRemaining() int          { return f.remaining }
func (f fakeConns) PeakAdmissionsPerSecond() int { return f.peak }

// Refusals at accept are counted by code, each also as a close (reason busy or
// limit); the storm gauges read the manager on scrape, 0 before it is bound.
func TestAdmissionAndDrainMetrics(t *testing.T) {
	m := New("v-test", func() int { return 0 })
	o := m.Conn()
	ao, ok := o.(conn.AdmissionObserver)
	if !ok {
		t.Fatal("the conn observer does not count refusals")
	}
	for range 3 {
		ao.Refused(protocol.CodeBusy)
		o.Closed(conn.ReasonBusy, false)
	}
	ao.Refused(protocol.CodeTooManyConns)
	o.Closed(conn.ReasonLimit, false)
	if err := testutil.GatherAndCompare(promtexttest.Gatherer(m.Registry), strings.NewReader(`
# HELP hawk_drain_connections_remaining Connections the drain in progress still waits for (told GOAWAY or about to be); 0 when not draining.
# TYPE hawk_drain_connections_remaining gauge
hawk_drain_connections_remaining 0
# HELP hawk_admissions_peak_per_second The most connections admitted in one second since the process started (past limits.max_conns and limits.handshake_rate): a reconnect storm's peak, which rate() over a scrape interval averages away.
# TYPE hawk_admissions_peak_per_second gauge
hawk_admissions_peak_per_second 0
`), "hawk_drain_connections_remaining", "hawk_admissions_peak_per_second"); err != nil {
		t.Fatal(err)
	}
	m.ReadConns(fakeConns{remaining: 1234, peak: 4500})
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"refused busy", m.refusedVec.WithLabelValues("busy").Value(), 3},
		{"refused too_many_connections", m.refusedVec.WithLabelValues("too_many_connections").Value(), 1},
		{"closed busy", m.closed.WithLabelValues("busy").Value(), 3},
		{"closed limit", m.closed.WithLabelValues("limit").Value(), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if err := testutil.GatherAndCompare(promtexttest.Gatherer(m.Registry), strings.NewReader(`
# HELP hawk_drain_connections_remaining Connections the drain in progress still waits for (told GOAWAY or about to be); 0 when not draining.
# TYPE hawk_drain_connections_remaining gauge
hawk_drain_connections_remaining 1234
# HELP hawk_admissions_peak_per_second The most connections admitted in one second since the process started (past limits.max_conns and limits.handshake_rate): a reconnect storm's peak, which rate() over a scrape interval averages away.
# TYPE hawk_admissions_peak_per_second gauge
hawk_admissions_peak_per_second 4500
`), "hawk_drain_connections_remaining", "hawk_admissions_peak_per_second"); err != nil {
		t.Fatal(err)
	}
}

// A legacy listener's observer feeds its labelled series.
func TestLegacyObserver(t *testing.T) {
	m := New("test", func() int { return 0 })
	o := m.Legacy("metrics", func() int { return 3 })
	o.Accepted()
	o.Refused(legacy.RefusedNotAllowed)
	o.Frames(legacy.FrameReport, 5)
	o.Receipts(5)
	o.Dropped(legacy.DropCRC, 2)
	o.Closed(legacy.ReasonIdleTimeout)
	for name, want := range map[string]string{
		"hawk_legacy_connections":                `hawk_legacy_connections{listener="metrics"} 3`,
		"hawk_legacy_connections_refused_total":  `hawk_legacy_connections_refused_total{listener="metrics",reason="not_allowed"} 1`,
		"hawk_legacy_frames_received_total":      `hawk_legacy_frames_received_total{kind="report",listener="metrics"} 5`,
		"hawk_legacy_receipts_sent_total":        `hawk_legacy_receipts_sent_total{listener="metrics"} 5`,
		"hawk_legacy_frames_dropped_total":       `hawk_legacy_frames_dropped_total{listener="metrics",reason="crc"} 2`,
		"hawk_legacy_connections_closed_total":   `hawk_legacy_connections_closed_total{listener="metrics",reason="idle_timeout"} 1`,
		"hawk_legacy_connections_accepted_total": `hawk_legacy_connections_accepted_total{listener="metrics"} 1`,
	} {
		var b strings.Builder
		mfs, err := promtexttest.Gather(m.Registry)
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, mm := range mf.GetMetric() {
					var labels []string
					for _, l := range mm.GetLabel() {
						labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
					}
					v := mm.GetCounter().GetValue() + mm.GetGauge().GetValue()
					fmt.Fprintf(&b, "%s{%s} %v\n", name, strings.Join(labels, ","), v)
				}
			}
		}
		if !strings.Contains(b.String(), want) {
			t.Errorf("%s:\n%s\nwant %s", name, b.String(), want)
		}
	}
}

// BenchmarkNew is what building the metrics costs a starting process.
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		New("bench", func() int { return 0 })
	}
}
