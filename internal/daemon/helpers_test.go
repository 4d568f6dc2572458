package daemon

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hawk-agents/hawk/internal/admin"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/legacyset"
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/notify"
	"github.com/hawk-agents/hawk/internal/pidfile"
	"github.com/hawk-agents/hawk/internal/promtext/promtexttest"
	"github.com/hawk-agents/hawk/internal/reload"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeUpgrader answers Upgrade with err; nothing else happens.
type fakeUpgrader struct {
	err  error
	exit chan struct{}
}

func (f *fakeUpgrader) Inherited() bool                         { return false }
func (f *fakeUpgrader) Upgrade() error                          { return f.err }
func (f *fakeUpgrader) Exit() <-chan struct{}                   { return f.exit }
func (f *fakeUpgrader) Stop()                                   {}
func (f *fakeUpgrader) WaitForParent(ctx context.Context) error { return nil }
func (f *fakeUpgrader) PassFile(string, *os.File) error {
	return errors.New("no child to pass files to")
}
func (f *fakeUpgrader) InheritedFile(string) (*os.File, error) { return nil, nil }

// testDaemon is a Daemon with what the serving and draining phases touch, its
// protocol listener on 127.0.0.1 and no upgrader, signal registration or binary.
type testDaemon struct {
	*Daemon
	upg  *fakeUpgrader
	logs *observer.ObservedLogs
}

func newTestDaemon(t *testing.T, yaml string) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "hawk.yaml")
	if err := os.WriteFile(file, []byte("spool:\n  dir: "+filepath.Join(dir, "spool")+"\nadmin:\n  addr: \"\"\n"+yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	loader := &config.Loader{File: file, Env: []string{}}
	cfg, err := loader.Load()
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	fu := &fakeUpgrader{exit: make(chan struct{})}
	d := &Daemon{version: "test", cfg: config.NewHolder(cfg), log: log, sigs: make(chan os.Signal, 4), upg: fu, generation: 1,
		ready: admin.NewReadiness("test"), up: upgrades{requests: make(chan upgradeRequest), servingDone: make(chan struct{})}}
	d.met = metrics.New("test", func() int { return d.conns.Count() })
	d.notify = notify.New(notify.Options{Log: log, Count: func() int { return d.conns.Count() }, LastUpgrade: d.up.lastUpgrade})
	d.pidfile = pidfile.New(func() string { return "" }, false, log)
	if err := d.dest.open(cfg, d.met, d.ready, log); err != nil {
		t.Fatal(err)
	}
	if d.dedup, err = dedup.New(dedup.Options{Window: cfg.Dedup.Window, MaxClients: cfg.Dedup.MaxClients}); err != nil {
		t.Fatal(err)
	}
	d.dedup.SetReady()
	d.stopDedup = func() {}
	settings, err := reload.SettingsFrom(cfg, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	d.conns = conn.New(conn.Options{Settings: settings, Destination: d.dest.dest, Dedup: d.dedup, Logger: log})
	if d.legacy, err = legacyset.Listen(nil, nil, log); err != nil {
		t.Fatal(err)
	}
	if _, err := d.claimHandoff(); err != nil {
		t.Fatal(err)
	}
	d.reload = reload.New(reload.Options{Loader: loader, Config: d.cfg, Version: "test", Metrics: d.met, Log: log,
		Target: reload.Target{Level: zap.NewAtomicLevel(), Spool: d.dest.spool, Dedup: d.dedup, Conns: d.conns, Legacy: d.legacy, Log: log}})
	if d.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.ln.Close()
		d.conns.Close() // after a drain: at once
		d.dest.close(log)
	})
	return &testDaemon{Daemon: d, upg: fu, logs: logs}
}

// counter is a counter's value in the daemon's registry, by its one label's value.
func (td *testDaemon) counter(t *testing.T, name, label string) float64 {
	t.Helper()
	mfs, err := promtexttest.Gather(td.met.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// logged reports whether a line with this message was logged.
func (td *testDaemon) logged(msg string) bool {
	return td.logs.FilterMessage(msg).Len() > 0
}
