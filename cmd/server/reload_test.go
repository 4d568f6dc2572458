package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
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
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/spool"
)

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
	inUse := map[string]func(t *testing.T, ts *testServer, want *config.Config){
		"log.level": func(t *testing.T, ts *testServer, want *config.Config) {
			if got := ts.level.Level().String(); got != want.Log.Level {
				t.Errorf("logger level %v, want %v", got, want.Log.Level)
			}
		},
		"spool.fsync": func(t *testing.T, ts *testServer, want *config.Config) {
			before := ts.syncs.Load()
			ts.submit(t, 1)
			if ts.syncs.Load() == before {
				t.Error("a batch written after the reload was not fsynced")
			}
		},
		"spool.segment_size": func(t *testing.T, ts *testServer, want *config.Config) {
			// One batch fills a 4096-byte segment; the next goes to a new one.
			ts.submit(t, int(want.Spool.SegmentSize))
			ts.submit(t, 1)
			if n := ts.opened.Load(); n < 2 {
				t.Errorf("%d segments after writing more than segment_size, want a rotation", n)
			}
		},
		"dedup.max_clients": func(t *testing.T, ts *testServer, want *config.Config) {
			if got := ts.dedup.MaxClients(); got != want.Dedup.MaxClients {
				t.Errorf("the dedup table remembers up to %d clients, want %d", got, want.Dedup.MaxClients)
			}
		},
		"upgrade.handoff": func(t *testing.T, ts *testServer, want *config.Config) {
			if on, _ := ts.handoffSettings(); on != want.Upgrade.Handoff {
				t.Errorf("the next upgrade hands connections over: %v, want %v", on, want.Upgrade.Handoff)
			}
		},
		"upgrade.handoff_timeout": func(t *testing.T, ts *testServer, want *config.Config) {
			if _, d := ts.handoffSettings(); d != want.Upgrade.HandoffTimeout {
				t.Errorf("the next handoff waits %v for a quiet point, want %v", d, want.Upgrade.HandoffTimeout)
			}
		},
		"admin.pprof": func(t *testing.T, ts *testServer, want *config.Config) {
			rec := httptest.NewRecorder()
			admin.Handler(ts.adminSource(), ts.ready).ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
			if (rec.Code == http.StatusOK) != want.Admin.Pprof {
				t.Errorf("/debug/pprof/ answers %d with admin.pprof %v", rec.Code, want.Admin.Pprof)
			}
		},
	}
	connSettings := func(t *testing.T, ts *testServer, want *config.Config) {
		w, err := settingsFrom(want, version, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := ts.conns.Settings(); !reflect.DeepEqual(got, w) {
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
			ts := newTestServer(t)
			value := k.Example
			if k.Name == "auth.tokens_file" { // the file must exist, and its credentials apply
				value = filepath.Join(t.TempDir(), "tokens")
				if err := os.WriteFile(value, []byte("# fleet\nweb tok-web web-*\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				check = func(t *testing.T, ts *testServer, want *config.Config) {
					if s := ts.conns.Settings().Auth; s.Len() != 1 || s.Names()[0] != "web" {
						t.Errorf("connections obey credentials %v, want the tokens file's [web]", s.Names())
					}
				}
			}
			ts.write(t, fmt.Sprintf("%s: %q\n", k.Name, value))
			ts.reload("test")
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
			ts := newTestServer(t)
			ts.write(t, fmt.Sprintf("%s: %q\nlog.level: debug\n", k.Name, k.Example))
			ts.reload("test")
			if ts.cfg.Load() != ts.initial || ts.level.Level() != zap.InfoLevel {
				t.Fatal("a reload changing a restart-only key was applied")
			}
		})
	}
}

// testServer is a server with what a reload touches, and no listener or upgrader.
type testServer struct {
	*server
	initial *config.Config
	base    string       // the config file's fixed part
	syncs   atomic.Int64 // fsyncs of spool segments
	opened  atomic.Int64 // spool segments created
	seq     uint64
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{base: fmt.Sprintf("spool:\n  dir: %q\nadmin:\n  addr: \"\"\n", filepath.Join(dir, "spool"))}
	file := filepath.Join(dir, "hawk.yaml")
	loader := &config.Loader{File: file, Env: []string{}}
	ts.server = &server{loader: loader, log: zap.NewNop(), ready: admin.NewReadiness("test")}
	ts.write(t, "")
	cfg, err := loader.Load()
	if err != nil {
		t.Fatal(err)
	}
	ts.initial = cfg
	ts.cfg = config.NewHolder(cfg)
	if ts.level, err = zap.ParseAtomicLevel(cfg.Log.Level); err != nil {
		t.Fatal(err)
	}
	ts.met = metrics.New(version, func() int { return ts.conns.Count() })
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
	settings, err := settingsFrom(cfg, version, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ts.dedup, err = dedup.New(dedup.Options{Window: cfg.Dedup.Window, MaxClients: cfg.Dedup.MaxClients}); err != nil {
		t.Fatal(err)
	}
	ts.dedup.SetReady()
	ts.conns = conn.New(conn.Options{Settings: settings, Destination: ts.spool, Dedup: ts.dedup})
	t.Cleanup(func() {
		ts.conns.Close()
		ts.spool.Close()
	})
	return ts
}

func (ts *testServer) write(t *testing.T, extra string) {
	t.Helper()
	if err := os.WriteFile(ts.loader.File, []byte(ts.base+extra), 0o644); err != nil {
		t.Fatal(err)
	}
}

// submit writes one record of about size bytes through the spool and waits until
// it is committed.
func (ts *testServer) submit(t *testing.T, size int) {
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
