package e2e

import (
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// jetstream.mode: spooled: reports are ACKed from the local spool and forwarded to
// the stream in the background.

// spooledFlags make a hawk spool its reports and forward them to ns.
func spooledFlags(urls string) []string {
	return append(jsFlagsTo(urls), "-jetstream.mode=spooled", "-spool.fsync=always")
}

// forwardWait bounds the waits on the forwarder: under -race on 2 shared cores it
// forwards a few thousand records per second.
const forwardWait = 90 * time.Second

// waitForwarded waits until the forwarder of the server at admin has nothing left
// to send.
func waitForwarded(t *testing.T, admin string) {
	t.Helper()
	testutil.Eventually(t, 3*forwardWait, func() bool {
		m, err := scrapeMetrics(admin)
		return err == nil && m["hawk_forward_lag_records"] == 0 && m["hawk_forward_records_total"] > 0
	}, "the forwarder to catch up")
}

// NATS down at start: hawk starts, is ready and ACKs every report from the spool
// (no NACK), the lag grows, and it upgrades. NATS back: everything is forwarded;
// SIGKILL while forwarding and an upgrade while forwarding: every acked report is
// in the stream exactly once.
func TestJetStreamSpooledNATSDownKillAndUpgrade(t *testing.T) {
	ns := startNATS(t)
	ns.Stop()
	flags := spooledFlags(ns.URL())
	s := startServer(t, bin.serverV1, append(slices.Clone(flags), testutil.StableListen(t))...) // started again on addr below
	addr, admin := s.addr(), s.adminAddr()
	if c := readyz(admin); c != http.StatusOK {
		t.Fatalf("/readyz %d with NATS down, want 200: the spool is the destination", c)
	}
	load := startLoad(t, addr, "-c", "100", "-w", "8", "-s", "256", "-rate", "5000", "-d", "10m", "-drain-timeout", "30s")
	s.waitProgress(10000)
	testutil.Eventually(t, 10*time.Second, func() bool {
		m, err := scrapeMetrics(admin)
		return err == nil && m["hawk_forward_lag_records"] >= 10000 && m["hawk_forward_lag_seconds"] > 0
	}, "the forward lag to show the reports waiting for NATS")
	s.upgradeTo(bin.serverV2) // NATS still down
	s.waitProgress(10000)

	ns.Restart()
	waitStreamWithin(t, ns, 20000, forwardWait)

	// SIGKILL while forwarding: the position on disk is where the next process goes on.
	pid := s.pid()
	s.signal(pid, syscall.SIGKILL)
	waitGone(t, pid, 10*time.Second, "the killed server")
	cur := restartServer(t, s, append([]string{"-listen=" + addr}, flags...)...)
	cur.waitConnected(100)
	waitStreamWithin(t, ns, 10000, forwardWait)

	// An upgrade while forwarding: the new process takes the lock and the position.
	cur.upgradeTo(bin.serverV1)
	waitStreamWithin(t, ns, 10000, forwardWait)

	sum := load.stop()
	if sum.Errors != 0 || sum.Nacked != 0 {
		t.Fatalf("load: %+v; want 0 errors and 0 NACKs: the spool ACKs while NATS is down", sum)
	}
	waitForwarded(t, cur.adminAddr())
	checkStreamExactlyOnce(t, ns, load)
	m, err := scrapeMetrics(cur.adminAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load %+v; last process: forwarded %.0f, duplicates %.0f, errors %.0f", sum,
		m["hawk_forward_records_total"], m["hawk_forward_duplicates_total"], m["hawk_forward_errors_total"])
}

// NATS down long enough to fill spool.max_bytes (spool.discard: new, the default):
// the limit is hard. Agents get retryable spool_write_failed NACKs with a retry
// hint and keep their reports, the spool never holds more than the limit (plus the
// one batch that reached it), nothing is removed. NATS back: the forwarder catches
// up, retention makes room, the resent reports are ACKed, and every acked report is
// in the stream exactly once.
func TestJetStreamSpooledHardLimit(t *testing.T) {
	const limit = 256 << 10
	ns := startNATS(t)
	ns.Stop()
	s := startServer(t, bin.serverV1, append(spooledFlags(ns.URL()), "-spool.segment_size=64KiB", "-spool.max_bytes=256KiB")...)
	admin := s.adminAddr()

	peak := samplePeak(s.spool)
	defer peak.stop()

	load := startLoad(t, s.addr(), "-c", "20", "-w", "8", "-s", "256", "-rate", "2000", "-d", "10m", "-drain-timeout", "60s")
	testutil.Eventually(t, 30*time.Second, func() bool {
		m, err := scrapeMetrics(admin)
		return err == nil && m["hawk_spool_full_refused_records_total"] >= 1000
	}, "reports refused at the hard limit")
	s.waitLog(10*time.Second, func(l logLine) bool { return strings.HasPrefix(l.str("msg"), "spool full") })
	m, err := scrapeMetrics(admin)
	if err != nil {
		t.Fatal(err)
	}
	if n := m[`hawk_spool_segments_removed_total{reason="bytes"}`] + m[`hawk_spool_segments_removed_total{reason="discarded"}`]; n != 0 {
		t.Fatalf("%.0f segments removed while nothing was forwarded", n)
	}

	ns.Restart()
	waitForwarded(t, admin)
	// Writes resume: the agents' resent reports are ACKed.
	acked := metric(t, admin, "hawk_spool_records_total")
	testutil.Eventually(t, forwardWait, func() bool { return metric(t, admin, "hawk_spool_records_total") >= acked+2000 },
		"reports stored again once the forwarder caught up")
	sum := load.stop()
	peak.stop()
	waitForwarded(t, admin)
	// A refused batch is written nowhere; the batch that reaches the limit is the
	// most the directory may exceed it by (a group commit: well under 64 KiB here).
	if p := peak.Load(); p > limit+64<<10 {
		t.Errorf("the spool held %d bytes, over the hard limit %d", p, limit)
	}
	if sum.Errors != 0 || sum.Nacked == 0 || sum.Acked == 0 {
		t.Fatalf("load: %+v; want NACKs at the limit, every one retried, no error", sum)
	}
	checkStreamExactlyOnce(t, ns, load)
	t.Logf("load %+v; peak spool %d bytes (limit %d); refused %.0f records", sum, peak.Load(), limit,
		metric(t, admin, "hawk_spool_full_refused_records_total"))
}
