package daemon

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/upgrade"
)

func TestStartTimes(t *testing.T) {
	t.Setenv(config.UpgradeRequestedEnv, strconv.FormatInt(upgrade.Clock()-int64(50*time.Millisecond), 10))
	mainBegan := time.Now().Add(-20 * time.Millisecond)
	startBegan := mainBegan.Add(5 * time.Millisecond)
	got := map[string]time.Duration{}
	called := time.Now()
	fields := startTimes(mainBegan, startBegan, true)
	took := time.Since(called) // a pause between its two clock readings lowers before_main by as much
	for _, f := range fields {
		if f.Type != zapcore.DurationType && f.Key != "page_faults" {
			t.Fatalf("%s is %v, not a duration", f.Key, f.Type)
		}
		got[f.Key] = time.Duration(f.Integer)
	}
	if got["cpu"] <= 0 || got["page_faults"] <= 0 {
		t.Errorf("cpu %v, page faults %d: this process has run", got["cpu"], got["page_faults"])
	}
	if got["config_load"] != 5*time.Millisecond {
		t.Errorf("config_load %v, want 5ms", got["config_load"])
	}
	// 50 ms ago the parent asked; main began 20 ms ago: about 30 ms before main.
	if s, b := got["since_upgrade_requested"], got["before_main"]; s < 50*time.Millisecond || b < 30*time.Millisecond-took-time.Millisecond || b > s-20*time.Millisecond {
		t.Errorf("since_upgrade_requested %v, before_main %v", s, b)
	}
	if f := keys(startTimes(mainBegan, startBegan, false)); f != "config_load cpu page_faults" {
		t.Errorf("a process not started by an upgrade: %s", f)
	}
	if f := keys(startTimes(time.Time{}, startBegan, true)); f != "cpu page_faults" {
		t.Errorf("main did not say when it began: %s", f)
	}
}

func keys(fields []zap.Field) string {
	var ks []string
	for _, f := range fields {
		ks = append(ks, f.Key)
	}
	return strings.Join(ks, " ")
}
