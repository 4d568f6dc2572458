package reload

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/admin"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/legacy"
	"github.com/hawk-agents/hawk/internal/legacyset"
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/spool"
)

const version = "test"

// configKeys is every configuration key with its facts: whether a reload applies
// it, and a valid value other than its default.
var configKeys = config.Keys()

// A live key with no option would pass Prepare and then be silently ignored; an
// option for a key that is not live is dead code.
func TestEveryLiveKeyHasAnOption(t *testing.T) {
	live := map[string]bool{}
	for _, k := range configKeys {
		if !k.Live() {
			continue
		}
		live[k.Name] = true
		if liveOptions[k.Name] == nil {
			t.Errorf("live key %s has no entry in liveOptions", k.Name)
		}
	}
	for name := range liveOptions {
		if !live[name] {
			t.Errorf("liveOptions has %s, which is not a live key", name)
		}
	}
}

// For each live key: change it in the config file, reload, and check that the
// running server now uses the new value, not just that the Holder holds it.
func TestReloadAppliesEveryLiveKey(t *testing.T) {
	// inUse checks that the running server uses want's value of the key.
	inUse := map[string]func(t *testing.T, ts *testReloader, want *config.Config){
		"log.level": func(t *testing.T, ts *testReloader, want *config.Config) {
			if got := ts.target.Level.Level().String(); got != want.Log.Level {
				t.Errorf("logger level %v, want %v", got, want.Log.Level)
			}
		},
		"spool.fsync": func(t *testing.T, ts *testReloader, want *config.Config) {
			before := ts.syncs.Load()
			ts.submit(t, 1)
			if ts.syncs.Load() == before {
				t.Error("a batch written after the reload was not fsynced")
			}
		},
		"spool.segment_size": func(t *testing.T, ts *testReloader, want *config.Config) {
			// One batch fills a 4096-byte segment; the next goes to a new one.
			ts.submit(t, int(want.Spool.SegmentSize))
			ts.submit(t, 1)
			if n := ts.opened.Load(); n < 2 {
				t.Errorf("%d segments after writing more than segment_size, want a rotation", n)
			}
		},
		"spool.max_bytes": func(t *testing.T, ts *testReloader, want *config.Config) {
			if got, _ := ts.target.Spool.Retention(); got != want.Spool.MaxBytes {
				t.Errorf("the spool keeps up to %d bytes, want %d", got, want.Spool.MaxBytes)
			}
		},
		"spool.max_age": func(t *testing.T, ts *testReloader, want *config.Config) {
			if _, got := ts.target.Spool.Retention(); got != want.Spool.MaxAge {
				t.Errorf("the spool keeps segments up to %v old, want %v", got, want.Spool.MaxAge)
			}
		},
		"spool.cache_bytes": func(t *testing.T, ts *testReloader, want *config.Config) {
			if got := ts.target.Spool.CacheBytes(); got != want.Spool.CacheBytes {
				t.Errorf("the spool keeps up to %d bytes in the page cache, want %d", got, want.Spool.CacheBytes)
			}
		},
		"dedup.max_clients": func(t *testing.T, ts *testReloader, want *config.Config) {
			if got := ts.target.Dedup.MaxClients(); got != want.Dedup.MaxClients {
				t.Errorf("the dedup table remembers up to %d clients, want %d", got, want.Dedup.MaxClients)
			}
		},
		// Read at each upgrade from the configuration in force.
		"upgrade.handoff": func(t *testing.T, ts *testReloader, want *config.Config) {
			if on := ts.cfg.Load().Upgrade.Handoff; on != want.Upgrade.Handoff {
				t.Errorf("the next upgrade hands connections over: %v, want %v", on, want.Upgrade.Handoff)
			}
		},
		"upgrade.handoff_timeout": func(t *testing.T, ts *testReloader, want *config.Config) {
			if d := ts.cfg.Load().Upgrade.HandoffTimeout; d != want.Upgrade.HandoffTimeout {
				t.Errorf("the next handoff waits %v for a quiet point, want %v", d, want.Upgrade.HandoffTimeout)
			}
		},
		"admin.pprof": func(t *testing.T, ts *testReloader, want *config.Config) {
			src := admin.Source{Pprof: func() bool { return ts.cfg.Load().Admin.Pprof }} // as the daemon's
			rec := httptest.NewRecorder()
			admin.Handler(src, admin.NewReadiness("test")).ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
			if (rec.Code == http.StatusOK) != want.Admin.Pprof {
				t.Errorf("/debug/pprof/ answers %d with admin.pprof %v", rec.Code, want.Admin.Pprof)
			}
		},
	}
	connSettings := func(t *testing.T, ts *testReloader, want *config.Config) {
		w, err := SettingsFrom(want, version, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := ts.target.Conns.Settings(); !reflect.DeepEqual(got, w) {
			t.Errorf("connections obey %+v, want %+v", got, w)
		}
	}
	for name, opt := range liveOptions {
		if _, ok := opt.(connSettingsOption); ok {
			inUse[name] = connSettings
		}
	}

	for _, k := range configKeys {
		if !k.Live() {
			continue
		}
		t.Run(k.Name, func(t *testing.T) {
			check := inUse[k.Name]
			if check == nil {
				t.Fatalf("no check that the running server uses a new %s", k.Name)
			}
			ts := newTestReloader(t)
			value := k.Example
			if k.Name == "auth.tokens_file" { // the file must exist, and its credentials apply
				value = filepath.Join(t.TempDir(), "tokens")
				if err := os.WriteFile(value, []byte("# fleet\nweb tok-web web-*\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				check = func(t *testing.T, ts *testReloader, want *config.Config) {
					if s := ts.target.Conns.Settings().Auth; s.Len() != 1 || s.Names()[0] != "web" {
						t.Errorf("connections obey credentials %v, want the tokens file's [web]", s.Names())
					}
				}
			}
			ts.write(t, fmt.Sprintf("%s: %q\n", k.Name, value))
			ts.Reload("test")
			now := ts.cfg.Load()
			changes := config.Diff(ts.initial, now)
			if len(changes) != 1 || changes[0].Key != k.Name {
				t.Fatalf("after the reload the configuration differs in %v, want %s alone", changes, k.Name)
			}
			check(t, ts, now)
		})
	}
}

// A restart-only key is refused, and nothing is applied.
func TestReloadRefusesRestartOnlyKeys(t *testing.T) {
	for _, k := range configKeys {
		if k.Live() {
			continue
		}
		t.Run(k.Name, func(t *testing.T) {
			ts := newTestReloader(t)
			ts.write(t, fmt.Sprintf("%s: %q\nlog.level: debug\n", k.Name, k.Example))
			res := ts.Reload("test")
			if ts.cfg.Load() != ts.initial || ts.target.Level.Level() != zap.InfoLevel {
				t.Fatal("a reload changing a restart-only key was applied")
			}
			if res.Err == nil || !strings.Contains(ts.Last(), " config reload rejected") {
				t.Fatalf("result %+v, last %q: the rejection is not reported", res, ts.Last())
			}
		})
	}
}

// A reload applies a legacy listener's allow, idle_timeout and max_frame_size to
// the running listener, and refuses a new address, keeping the running config.
func TestReloadLegacyListener(t *testing.T) {
	ts := newTestReloader(t)
	const listener = "legacy:\n  listeners:\n    - {name: m, address: \"127.0.0.1:0\", format: ffff, allow: [%s]%s}\n"
	ts.write(t, fmt.Sprintf(listener, "10.0.0.0/8", ""))
	cfg, err := ts.o.Loader.Load()
	if err != nil {
		t.Fatal(err)
	}
	ts.initial = cfg
	ts.cfg.Store(cfg)
	set, err := legacyset.Listen(cfg.Legacy.Listeners, func(_, addr string) (net.Listener, error) { return net.Listen("tcp", addr) }, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	if err := set.Start(legacyset.Options{Destination: ts.spool, Metrics: metrics.New(version, func() int { return 0 }), Conns: ts.target.Conns}); err != nil {
		t.Fatal(err)
	}
	ts.o.Target.Legacy = set
	l := set.Groups()[0].(*legacy.Listener)

	ts.write(t, fmt.Sprintf(listener, "10.0.0.0/8, 192.0.2.0/24", ", idle_timeout: 3s, max_frame_size: 100"))
	ts.Reload("test")
	got := l.Settings()
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.0/24")}
	if !slices.Equal(got.Allow, want) || got.IdleTimeout != 3*time.Second || got.MaxFrameSize != 100 {
		t.Fatalf("the listener obeys %+v after the reload", got)
	}
	applied := ts.cfg.Load()

	ts.write(t, "legacy:\n  listeners:\n    - {name: m, address: \"127.0.0.1:1\", format: ffff, allow: [127.0.0.0/8]}\n")
	ts.Reload("test")
	if ts.cfg.Load() != applied || !slices.Equal(l.Settings().Allow, want) {
		t.Fatal("a reload changing a legacy listener's address was applied")
	}
}

// testReloader is a Reloader with what a reload touches, and no listener or upgrader.
type testReloader struct {
	*Reloader
	target  *Target
	cfg     *config.Holder
	spool   *spool.Spool
	initial *config.Config
	base    string       // the config file's fixed part
	syncs   atomic.Int64 // fsyncs of spool segments
	opened  atomic.Int64 // spool segments created
	seq     uint64
}

func newTestReloader(t *testing.T) *testReloader {
	t.Helper()
	dir := t.TempDir()
	ts := &testReloader{base: fmt.Sprintf("spool:\n  dir: %q\nadmin:\n  addr: \"\"\n", filepath.Join(dir, "spool"))}
	file := filepath.Join(dir, "hawk.yaml")
	loader := &config.Loader{File: file, Env: []string{}}
	if err := os.WriteFile(file, []byte(ts.base), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loader.Load()
	if err != nil {
		t.Fatal(err)
	}
	ts.initial = cfg
	ts.cfg = config.NewHolder(cfg)
	level, err := zap.ParseAtomicLevel(cfg.Log.Level)
	if err != nil {
		t.Fatal(err)
	}
	ts.spool, err = spool.Open(spool.Options{
		Dir:         cfg.Spool.Dir,
		Fsync:       cfg.Spool.Fsync == config.FsyncAlways,
		SegmentSize: cfg.Spool.SegmentSize,
		OpenFile: func(name string) (spool.File, error) {
			f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return nil, err
			}
			ts.opened.Add(1)
			return &countingFile{File: f, syncs: &ts.syncs}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	settings, err := SettingsFrom(cfg, version, nil)
	if err != nil {
		t.Fatal(err)
	}
	dd, err := dedup.New(dedup.Options{Window: cfg.Dedup.Window, MaxClients: cfg.Dedup.MaxClients})
	if err != nil {
		t.Fatal(err)
	}
	dd.SetReady()
	conns := conn.New(conn.Options{Settings: settings, Destination: ts.spool, Dedup: dd})
	t.Cleanup(func() {
		conns.Close()
		ts.spool.Close()
	})
	ts.Reloader = New(Options{Loader: loader, Config: ts.cfg, Version: version, Log: zap.NewNop(),
		Metrics: metrics.New(version, conns.Count),
		Target:  Target{Level: level, Spool: ts.spool, Dedup: dd, Conns: conns, Log: zap.NewNop()}})
	ts.target = &ts.o.Target
	return ts
}

func (ts *testReloader) write(t *testing.T, extra string) {
	t.Helper()
	if err := os.WriteFile(ts.o.Loader.File, []byte(ts.base+extra), 0o644); err != nil {
		t.Fatal(err)
	}
}

// submit writes one record of about size bytes through the spool and waits until
// it is committed.
func (ts *testReloader) submit(t *testing.T, size int) {
	t.Helper()
	ts.seq++
	var b ingest.Batch
	b.Add(&ingest.Record{ClientID: "t", Seq: ts.seq, Payload: []byte(`"` + strings.Repeat("x", size) + `"`)})
	w := make(waiter, 1)
	ts.spool.Submit(&b, w)
	select {
	case err := <-w:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the spool did not commit")
	}
}

type waiter chan error

func (w waiter) Committed(_ []uint64, err error) { w <- err }

type countingFile struct {
	*os.File
	syncs *atomic.Int64
}

func (f *countingFile) Sync() error {
	f.syncs.Add(1)
	return f.File.Sync()
}
