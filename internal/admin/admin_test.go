package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeConns serves Connections from a slice sorted by id, the way the registry does:
// the connections with ids greater than after, at most limit of them.
func fakeConns(all []conn.Info) func(after uint64, limit int) []conn.Info {
	return func(after uint64, limit int) []conn.Info {
		i := sort.Search(len(all), func(i int) bool { return all[i].ID > after })
		j := min(len(all), i+limit)
		return append([]conn.Info(nil), all[i:j]...)
	}
}

func testConns(n int) []conn.Info {
	all := make([]conn.Info, n)
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range all {
		id := uint64(i + 1)
		all[i] = conn.Info{ID: id, ClientID: "agent-" + strconv.FormatUint(id, 10), Remote: "10.0.0.1:1234",
			Since: t0, LastSeen: t0.Add(time.Second), State: "active"}
	}
	return all
}

// newServer starts the admin handler with the given source; missing fields get
// harmless defaults.
func newServer(t *testing.T, src Source, ready *Readiness) *httptest.Server {
	t.Helper()
	if src.Gatherer == nil {
		src.Gatherer = metrics.New("v-test", func() int { return 0 }).Registry
	}
	if src.Connections == nil {
		src.Connections = fakeConns(nil)
	}
	if src.Config == nil {
		src.Config = func() map[string]any { return map[string]any{} }
	}
	if ready == nil {
		ready = NewReadiness("starting")
	}
	srv := httptest.NewServer(Handler(src, ready))
	t.Cleanup(srv.Close)
	return srv
}

// get fetches url and returns the status, the Content-Type and the body.
func get(t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// getJSON fetches url, checks the status and decodes the JSON body into v.
func getJSON(t *testing.T, url string, wantCode int, v any) {
	t.Helper()
	code, ctype, body := get(t, url)
	if code != wantCode {
		t.Fatalf("GET %s: status %d, want %d; body %s", url, code, wantCode, body)
	}
	if ctype != "application/json" {
		t.Fatalf("GET %s: Content-Type %q, want application/json", url, ctype)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: body is not JSON: %v\n%s", url, err, body)
	}
}

func TestHealthz(t *testing.T) {
	srv := newServer(t, Source{}, nil) // not ready: liveness does not depend on it
	var got map[string]any
	getJSON(t, srv.URL+"/healthz", http.StatusOK, &got)
	if got["status"] != "alive" {
		t.Fatalf("/healthz = %v, want status alive", got)
	}
}

func TestReadyz(t *testing.T) {
	ready := NewReadiness("starting: spool not open")
	srv := newServer(t, Source{}, ready)

	var got map[string]any
	getJSON(t, srv.URL+"/readyz", http.StatusServiceUnavailable, &got)
	if got["reason"] != "starting: spool not open" {
		t.Fatalf("before SetReady: /readyz = %v, want the reason", got)
	}

	ready.SetReady()
	got = nil
	getJSON(t, srv.URL+"/readyz", http.StatusOK, &got)
	if got["status"] != "ready" {
		t.Fatalf("after SetReady: /readyz = %v, want status ready", got)
	}
	if _, ok := got["reason"]; ok {
		t.Fatalf("after SetReady: /readyz = %v, want no reason", got)
	}

	ready.SetNotReady("draining: upgrade")
	got = nil
	getJSON(t, srv.URL+"/readyz", http.StatusServiceUnavailable, &got)
	if got["reason"] != "draining: upgrade" {
		t.Fatalf("after SetNotReady: /readyz = %v, want reason %q", got, "draining: upgrade")
	}
}

func TestMetrics(t *testing.T) {
	m := metrics.New("v-test", func() int { return 7 })
	srv := newServer(t, Source{Gatherer: m.Registry}, nil)
	code, _, body := get(t, srv.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d; body %s", code, body)
	}
	text := string(body)
	for _, want := range []string{
		`hawk_build_info{`,
		`version="v-test"`,
		"\nhawk_connections 7\n",
		"# TYPE hawk_connections gauge",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics body lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics body:\n%s", text)
	}
}

// connPage is the /v1/connections response.
type connPage struct {
	Connections []conn.Info `json:"connections"`
	NextAfter   *uint64     `json:"next_after"`
}

func TestConnectionsPagination(t *testing.T) {
	all := testConns(250)
	var calls atomic.Int64
	src := fakeConns(all)
	srv := newServer(t, Source{Connections: func(after uint64, limit int) []conn.Info {
		calls.Add(1)
		return src(after, limit)
	}}, nil)

	t.Run("default limit", func(t *testing.T) {
		var p connPage
		getJSON(t, srv.URL+"/v1/connections", http.StatusOK, &p)
		if len(p.Connections) != defaultConnLimit {
			t.Fatalf("got %d connections, want the default limit %d", len(p.Connections), defaultConnLimit)
		}
		for i, c := range p.Connections {
			if c.ID != uint64(i+1) {
				t.Fatalf("connections[%d].ID = %d, want %d", i, c.ID, i+1)
			}
		}
		if p.Connections[0] != all[0] {
			t.Fatalf("connections[0] = %+v, want %+v (a JSON round trip)", p.Connections[0], all[0])
		}
		if p.NextAfter == nil || *p.NextAfter != 100 {
			t.Fatalf("next_after = %v, want 100", p.NextAfter)
		}
	})

	t.Run("cursor walks all", func(t *testing.T) {
		for _, limit := range []int{1, 7, 100, 125, 249, 250, 251, 10000} {
			seen := make(map[uint64]int)
			var order []uint64
			url := srv.URL + "/v1/connections?limit=" + strconv.Itoa(limit)
			pages := 0
			for {
				var p connPage
				getJSON(t, url, http.StatusOK, &p)
				pages++
				if len(p.Connections) > limit {
					t.Fatalf("limit=%d: page of %d connections", limit, len(p.Connections))
				}
				for _, c := range p.Connections {
					seen[c.ID]++
					order = append(order, c.ID)
				}
				if p.NextAfter == nil {
					break
				}
				if len(p.Connections) == 0 || *p.NextAfter != p.Connections[len(p.Connections)-1].ID {
					t.Fatalf("limit=%d: next_after %d is not the last id of the page", limit, *p.NextAfter)
				}
				if pages > len(all)+1 {
					t.Fatalf("limit=%d: pagination does not end", limit)
				}
				url = srv.URL + "/v1/connections?limit=" + strconv.Itoa(limit) + "&after=" + strconv.FormatUint(*p.NextAfter, 10)
			}
			if len(order) != len(all) {
				t.Fatalf("limit=%d: walked %d connections, want %d", limit, len(order), len(all))
			}
			for i, id := range order {
				if id != uint64(i+1) || seen[id] != 1 {
					t.Fatalf("limit=%d: position %d holds id %d (seen %d times)", limit, i, id, seen[id])
				}
			}
			if want := (len(all) + limit - 1) / limit; pages != want {
				t.Fatalf("limit=%d: %d pages, want %d (no empty last page)", limit, pages, want)
			}
		}
	})

	t.Run("last page", func(t *testing.T) {
		var p connPage
		getJSON(t, srv.URL+"/v1/connections?after=200", http.StatusOK, &p)
		if len(p.Connections) != 50 || p.Connections[0].ID != 201 || p.NextAfter != nil {
			t.Fatalf("after=200: %d connections from %v, next_after %v; want 50 from 201 and no next_after",
				len(p.Connections), p.Connections[0].ID, p.NextAfter)
		}
		getJSON(t, srv.URL+"/v1/connections?after=250", http.StatusOK, &p)
		if len(p.Connections) != 0 || p.NextAfter != nil {
			t.Fatalf("after=250: %d connections, next_after %v; want none", len(p.Connections), p.NextAfter)
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		before := calls.Load()
		for _, q := range []string{"limit=0", "limit=abc", "limit=10001", "limit=-1", "after=x", "after=-1"} {
			var e map[string]any
			getJSON(t, srv.URL+"/v1/connections?"+q, http.StatusBadRequest, &e)
			if msg, _ := e["error"].(string); msg == "" {
				t.Errorf("%s: body %v has no error message", q, e)
			}
		}
		if n := calls.Load() - before; n != 0 {
			t.Fatalf("bad requests reached Connections %d times", n)
		}
	})
}

func TestConfig(t *testing.T) {
	const rawToken = "s3cret-fleet-token"
	cfg := map[string]any{
		"auth.tokens":   "[redacted 2 tokens]",
		"listen":        "0.0.0.0:7373",
		"drain.timeout": "30s",
		"admin.pprof":   false,
	}
	srv := newServer(t, Source{Config: func() map[string]any { return cfg }}, nil)
	code, _, body := get(t, srv.URL+"/v1/config")
	if code != http.StatusOK {
		t.Fatalf("/v1/config: status %d; body %s", code, body)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("/v1/config is not JSON: %v\n%s", err, body)
	}
	if len(got) != len(cfg) {
		t.Fatalf("/v1/config = %v, want %v", got, cfg)
	}
	for k, v := range cfg {
		if got[k] != v {
			t.Errorf("/v1/config[%q] = %v, want %v", k, got[k], v)
		}
	}
	if strings.Contains(string(body), rawToken) || strings.Contains(string(body), "change-me") {
		t.Fatalf("/v1/config leaks a raw token:\n%s", body)
	}
}

func TestPprofIsLive(t *testing.T) {
	var enabled atomic.Bool
	srv := newServer(t, Source{Pprof: enabled.Load}, nil)

	code, _, body := get(t, srv.URL+"/debug/pprof/")
	if code != http.StatusNotFound {
		t.Fatalf("pprof off: /debug/pprof/ status %d, want 404; body %s", code, body)
	}
	if code, _, _ := get(t, srv.URL+"/debug/pprof/cmdline"); code != http.StatusNotFound {
		t.Fatalf("pprof off: /debug/pprof/cmdline status %d, want 404", code)
	}

	enabled.Store(true) // same handler: the switch is read per request
	code, _, body = get(t, srv.URL+"/debug/pprof/")
	if code != http.StatusOK {
		t.Fatalf("pprof on: /debug/pprof/ status %d, want 200; body %s", code, body)
	}
	if !strings.Contains(string(body), "goroutine") {
		t.Fatalf("pprof on: /debug/pprof/ is not the pprof index:\n%s", body)
	}
	if code, _, _ := get(t, srv.URL+"/debug/pprof/cmdline"); code != http.StatusOK {
		t.Fatalf("pprof on: /debug/pprof/cmdline status %d, want 200", code)
	}

	enabled.Store(false)
	if code, _, _ := get(t, srv.URL+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("pprof off again: /debug/pprof/ status %d, want 404", code)
	}
}

func TestPprofNilIsOff(t *testing.T) {
	srv := newServer(t, Source{}, nil)
	if code, _, _ := get(t, srv.URL+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("Pprof nil: /debug/pprof/ status %d, want 404", code)
	}
}

// A dependency (a broker destination) makes a ready process not ready while it is
// unhealthy, and a drain's reason wins over a healthy dependency.
func TestReadinessDepend(t *testing.T) {
	r := NewReadiness("starting")
	up := true
	r.Depend(func() (bool, string) {
		if up {
			return true, ""
		}
		return false, "NATS disconnected"
	})
	if ok, why := r.Ready(); ok || why != "starting" {
		t.Fatalf("before SetReady: %v %q", ok, why)
	}
	r.SetReady()
	if ok, _ := r.Ready(); !ok {
		t.Fatal("ready with a healthy dependency: not ready")
	}
	up = false
	if ok, why := r.Ready(); ok || why != "NATS disconnected" {
		t.Fatalf("unhealthy dependency: %v %q", ok, why)
	}
	up = true
	r.SetNotReady("draining: upgrade")
	if ok, why := r.Ready(); ok || why != "draining: upgrade" {
		t.Fatalf("draining: %v %q", ok, why)
	}
}
