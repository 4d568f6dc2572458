package e2e

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// scrape returns the admin endpoint's /metrics.
func scrape(t testing.TB, admin string) string {
	t.Helper()
	code, body := get(t, "http://"+admin+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	return body
}

// stormSummary is what `client load -json` says of a storm, beside loadSummary.
type stormSummary struct {
	Busy              int64   `json:"busy"`
	BusyAfterGoaway   int64   `json:"busy_after_goaway"`
	ReconnectPeakPerS int64   `json:"reconnect_peak_per_s"`
	MoveS             float64 `json:"move_s"`
}

// storm reads the storm fields of the load generator's summary (after wait or stop).
func (l *loadRun) storm() stormSummary {
	l.t.Helper()
	out := bytes.TrimSpace(l.stdout.Bytes())
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	var s stormSummary
	if err := json.Unmarshal(out, &s); err != nil {
		l.t.Fatalf("load summary %q: %v", out, err)
	}
	return s
}

// The reconnect storm: 10,000 agents told GOAWAY by an upgrade must
// reach the new process no faster than it admits handshakes. The old process
// raises drain.spread to fit limits.handshake_rate and hints each reconnect into
// its slot; the new process's own count of admissions per second stays within the
// rate plus the bucket's burst (a tenth of the rate), every client ends up on the
// new process, and no report fails.
func TestReconnectStorm(t *testing.T) {
	const (
		conns = 10_000
		rate  = 2500 // handshakes/s: 10,000 connections at 90% of it need 4.4 s, more than drain.spread
	)
	s := startServer(t, bin.serverV1,
		"-limits.handshake_rate="+strconv.Itoa(rate),
		"-drain.spread=1s", "-drain.timeout=30s",
		"-heartbeat.interval=10s", // 10,000 idle clients pinging every second would only add noise
		"-upgrade.handoff=false",  // the storm is the GOAWAY migration's; a handoff has none
	)
	addr, admin := s.addr(), s.adminAddr()
	// -src-spread (the default) spreads the clients over 127.0.0.2-201: 10,000
	// connections from one source address would run it out of ports across the
	// reconnects. The first dials are admitted at the rate too: load waits the
	// retry_after_ms of each ERROR busy.
	load := startLoad(t, addr, "-c", strconv.Itoa(conns), "-w", "1", "-s", "64", "-rate", "2000", "-d", "10m")
	testutil.Eventually(t, 60*time.Second, func() bool {
		return metricValue(t, scrape(t, admin), "hawk_connections") == conns
	}, "%d connections to the first process; load stderr:\n%s", conns, load.stderr)
	s.waitProgress(2000)

	old := s.pid()
	install(t, bin.serverV2, s.binary)
	sighup := time.Now()
	s.signal(old, syscall.SIGHUP)
	s.waitLog(10*time.Second, func(l logLine) bool {
		return int(l.num("pid")) == old && l.str("msg") == "upgrade succeeded: new process is ready; draining this one"
	})
	raised := s.waitLog(5*time.Second, func(l logLine) bool {
		return int(l.num("pid")) == old && strings.HasPrefix(l.str("msg"), "drain.spread raised from 1s to ")
	})
	testutil.Eventually(t, 5*time.Second, func() bool { p := s.pid(); return p != old && alive(p) }, "the PID file to name the new process")
	// Every client moves: the old process's drain ends with nobody cut.
	exit := s.waitLog(40*time.Second, func(l logLine) bool { return int(l.num("pid")) == old && l.str("msg") == "exiting" })
	moved := time.Since(sighup)
	if cut := exit.num("cut_at_deadline"); cut != 0 || exit.num("goaways") != conns {
		t.Fatalf("old process exited after %v goaways with %v connections cut; log:\n%s", exit["goaways"], cut, s.logTextDump())
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return !alive(old) }, "the old process %d to exit", old)
	// The admin socket moved with the listener: this is the new process.
	var body string
	testutil.Eventually(t, 20*time.Second, func() bool {
		body = scrape(t, admin)
		return metricValue(t, body, "hawk_connections") == conns
	}, "all %d clients connected to the new process", conns)
	s.waitProgress(2000) // the new process carries the load

	peak := metricValue(t, body, "hawk_admissions_peak_per_second")
	busy := metricValue(t, body, `hawk_admissions_refused_total{reason="busy"}`)
	sum := load.stop()
	st := load.storm()
	t.Logf("storm: %d connections GOAWAYed (%s); new process: peak %.0f handshakes admitted/s (limit %d + burst %d), %.0f refused busy; "+
		"clients: %d reconnects, peak %d reconnects/s, moved in %.2fs (SIGHUP to old process exit %.2fs), busy seen %d (%d after the first GOAWAY), errors %d, connect_errors %d; summary %+v",
		conns, raised.str("msg"), peak, rate, rate/10, busy, sum.Reconnects, st.ReconnectPeakPerS, st.MoveS, moved.Seconds(),
		st.Busy, st.BusyAfterGoaway, sum.Errors, sum.ConnectErrs, sum)
	if peak > rate*1.1 {
		t.Errorf("the new process admitted %.0f handshakes in one second, over limits.handshake_rate %d + its burst", peak, rate)
	}
	if peak < rate/4 {
		t.Errorf("peak %.0f handshakes/s: the storm did not happen at the new process", peak)
	}
	if sum.Errors != 0 || sum.ConnectErrs != 0 || sum.Goaways < conns || sum.Reconnects < conns {
		t.Fatalf("load: %+v; want no errors, every client GOAWAYed and reconnected\nload stderr:\n%s", sum, load.stderr)
	}
}
