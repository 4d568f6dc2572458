package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// adminAddr is the admin listener's address, from the "admin listening" log line.
func (s *server) adminAddr() string {
	return s.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "admin listening" }).str("addr")
}

var adminClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := adminClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue returns the value of one sample line (name with labels, as exposed).
func metricValue(t testing.TB, body, sample string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, sample+" ") {
			var v float64
			fmt.Sscanf(strings.TrimPrefix(line, sample+" "), "%g", &v)
			return v
		}
	}
	t.Fatalf("sample %s not in /metrics", sample)
	return 0
}

// The admin port answers throughout an upgrade (never refused), /readyz is 200
// before and after, and the new process serves it.
func TestAdminSurvivesUpgrade(t *testing.T) {
	s := startServer(t, bin.serverV1)
	admin := "http://" + s.adminAddr()
	if code, _ := get(t, admin+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d before the upgrade", code)
	}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := adminClient.Get(admin + "/healthz")
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			} else {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok.Add(1)
			}
			time.Sleep(3 * time.Millisecond)
		}
	}()
	testutil.Eventually(t, 5*time.Second, func() bool { return ok.Load() > 20 }, "the poller to get going")
	s.upgradeTo(bin.serverV2)
	before := ok.Load()
	testutil.Eventually(t, 5*time.Second, func() bool { return ok.Load() > before+20 }, "polls after the upgrade")
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d admin requests failed across the upgrade, first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if code, body := get(t, admin+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s in the new process", code, body)
	}
	_, metrics := get(t, admin+"/metrics")
	if !strings.Contains(metrics, `hawk_build_info{goversion=`) || !strings.Contains(metrics, `version="v2"`) {
		t.Fatal("the admin port is not served by the new process (build_info is not v2)")
	}
	t.Logf("%d admin requests across the upgrade, none refused", ok.Load())
}

// /readyz turns 503 while a drain runs (here a SIGTERM with a client that does not
// leave), and the counters move with real traffic.
func TestReadinessAndCounters(t *testing.T) {
	s := startServer(t, bin.serverV1, "-drain.timeout=3s", "-heartbeat.timeout=1500ms")
	admin := "http://" + s.adminAddr()
	addr := s.addr()

	// Traffic: reports, a reaped connection.
	p := testutil.Dial(t, addr)
	p.Hello("counted", "")
	for seq := uint64(1); seq <= 10; seq++ {
		p.Send(protocol.TypeReport, seq, []byte(`{"ok":true}`))
		p.Expect(protocol.TypeAck)
	}
	quiet := testutil.Dial(t, addr)
	quiet.Hello("quiet", "")
	quiet.ExpectError(protocol.CodeHeartbeatTimeout)
	quiet.Conn.Close()
	var body string
	testutil.Eventually(t, 5*time.Second, func() bool {
		_, body = get(t, admin+"/metrics")
		return strings.Contains(body, `hawk_connections_closed_total{reason="heartbeat_timeout"} 1`)
	}, "the reaped connection to be counted")
	checks := map[string]float64{
		"hawk_connections_accepted_total":                           2,
		"hawk_reports_acked_total":                                  10,
		`hawk_frames_received_total{type="REPORT"}`:                 10,
		`hawk_connections_closed_total{reason="heartbeat_timeout"}`: 1,
		"hawk_ready": 1,
	}
	for sample, want := range checks {
		if got := metricValue(t, body, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
	if metricValue(t, body, "hawk_ack_latency_seconds_count") < 10 {
		t.Error("ack latency histogram did not count the reports")
	}

	// /v1/connections shows the live one.
	_, conns := get(t, admin+"/v1/connections")
	var list struct {
		Connections []struct {
			ClientID string `json:"client_id"`
			FramesIn uint64 `json:"frames_in"`
		} `json:"connections"`
	}
	if err := json.Unmarshal([]byte(conns), &list); err != nil || len(list.Connections) != 1 || list.Connections[0].ClientID != "counted" {
		t.Fatalf("/v1/connections = %s (%v)", conns, err)
	}

	// Drain: the connection stays (keeps pinging), so the drain lasts until its deadline.
	stopPing := make(chan struct{})
	go func() {
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopPing:
				return
			case <-tk.C:
				p.Conn.Write(protocol.AppendFrame(nil, protocol.TypePing, 1, nil))
			}
		}
	}()
	defer close(stopPing)
	s.signal(s.cmd.Process.Pid, syscall.SIGTERM)
	testutil.Eventually(t, 3*time.Second, func() bool {
		code, body := get(t, admin+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "draining: shutdown")
	}, "/readyz to report 503 draining")
}
