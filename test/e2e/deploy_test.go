package e2e

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/promtext/promtexttest"
)

const (
	deployUnit   = "../../deploy/hawk.service"
	deployConfig = "../../deploy/hawk.yaml"
	deployAlerts = "../../deploy/hawk-alerts.yml"
)

// unitLine is one assignment in a systemd unit file.
type unitLine struct {
	section, key, value string
	index               int // line index in the file
}

// parseUnit returns the assignments of a unit file in order (comments, blank lines
// and section headers left out). Unit files have no line continuations here.
func parseUnit(t *testing.T, text string) []unitLine {
	t.Helper()
	var out []unitLine
	section := ""
	for i, line := range strings.Split(text, "\n") {
		s := strings.TrimSpace(line)
		switch {
		case s == "" || s[0] == '#' || s[0] == ';':
		case s[0] == '[' && s[len(s)-1] == ']':
			section = s[1 : len(s)-1]
		default:
			k, v, ok := strings.Cut(s, "=")
			if !ok {
				t.Fatalf("%s:%d: not an assignment: %q", deployUnit, i+1, line)
			}
			if strings.HasSuffix(s, "\\") {
				t.Fatalf("%s:%d: line continuations are not handled by this test", deployUnit, i+1)
			}
			out = append(out, unitLine{section, strings.TrimSpace(k), strings.TrimSpace(v), i})
		}
	}
	return out
}

// unitValue is the last assignment of key in section (the one systemd uses for
// single-valued settings), or fails the test.
func unitValue(t *testing.T, lines []unitLine, section, key string) unitLine {
	t.Helper()
	found := -1
	for i, l := range lines {
		if l.section == section && l.key == key {
			found = i
		}
	}
	if found < 0 {
		t.Fatalf("%s: [%s] has no %s=", deployUnit, section, key)
	}
	return lines[found]
}

// systemdUnits maps systemd time span units to their length (systemd.time(7)).
var systemdUnits = map[string]time.Duration{
	"usec": time.Microsecond, "us": time.Microsecond, "µs": time.Microsecond,
	"msec": time.Millisecond, "ms": time.Millisecond,
	"seconds": time.Second, "second": time.Second, "sec": time.Second, "s": time.Second, "": time.Second,
	"minutes": time.Minute, "minute": time.Minute, "min": time.Minute, "m": time.Minute,
	"hours": time.Hour, "hour": time.Hour, "hr": time.Hour, "h": time.Hour,
	"days": 24 * time.Hour, "day": 24 * time.Hour, "d": 24 * time.Hour,
	"weeks": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "w": 7 * 24 * time.Hour,
	"months": 2629800 * time.Second, "month": 2629800 * time.Second, "M": 2629800 * time.Second,
	"years": 31557600 * time.Second, "year": 31557600 * time.Second, "y": 31557600 * time.Second,
}

var timeSpanPart = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Zµ]*)`)

// parseTimeSpan parses a systemd time span ("45s", "1min 30s", "90" = seconds);
// "infinity" is returned as the largest duration.
func parseTimeSpan(s string) (time.Duration, error) {
	if strings.TrimSpace(s) == "infinity" {
		return math.MaxInt64, nil
	}
	var total time.Duration
	rest := s
	for strings.TrimSpace(rest) != "" {
		m := timeSpanPart.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("bad time span %q", s)
		}
		unit, ok := systemdUnits[m[2]]
		if !ok {
			return 0, fmt.Errorf("bad time span %q: unknown unit %q", s, m[2])
		}
		n, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, fmt.Errorf("bad time span %q: %v", s, err)
		}
		total += time.Duration(n * float64(unit))
		rest = rest[len(m[0]):]
	}
	if total == 0 && strings.TrimSpace(s) == "" {
		return 0, fmt.Errorf("empty time span")
	}
	return total, nil
}

// deployYAML is the part of deploy/hawk.yaml the unit must agree with.
type deployYAML struct {
	Drain struct {
		Timeout string `yaml:"timeout"`
	} `yaml:"drain"`
	Upgrade struct {
		PIDFile string `yaml:"pid_file"`
	} `yaml:"upgrade"`
	Control struct {
		Socket string `yaml:"socket"`
	} `yaml:"control"`
}

// TestSystemdUnitVerifies checks deploy/hawk.service: systemd-analyze verify
// accepts it, and it agrees with deploy/hawk.yaml on the control socket and the drain time.
func TestSystemdUnitVerifies(t *testing.T) {
	raw, err := os.ReadFile(deployUnit)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	lines := parseUnit(t, text)

	// Consistency with hawk.yaml and with how upgrades work: checked whether or
	// not systemd-analyze is installed.
	t.Run("agrees with hawk.yaml", func(t *testing.T) { checkUnitAgainstConfig(t, text, lines) })
	t.Run("systemd-analyze verify", func(t *testing.T) { verifyUnit(t, text, lines) })
	t.Run("systemd-analyze security", func(t *testing.T) { unitExposure(t) })
}

// maxUnitExposure is the highest "Overall exposure level" systemd-analyze security
// may give the unit (0 = most sandboxed, 10 = none).
const maxUnitExposure = 2.5

// unitExposure rates the unit's sandbox offline with systemd-analyze security
// (the same score deploy/test-systemd.sh reads from a running systemd).
func unitExposure(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is not on PATH (Debian: apt-get install systemd): %v", err)
	}
	cmd := exec.Command(sa, "security", "--offline=yes", "--no-pager", filepath.Base(deployUnit))
	cmd.Dir = filepath.Dir(deployUnit)
	cmd.Env = append(os.Environ(), "SYSTEMD_PAGER=", "SYSTEMD_LOG_COLOR=0", "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for hawk\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security %s: %v, no exposure level in:\n%s", deployUnit, err, out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security: exposure %.1f", score)
	if score > maxUnitExposure {
		t.Fatalf("%s: exposure %.1f, want at most %.1f:\n%s", deployUnit, score, maxUnitExposure, out)
	}
}

// checkUnitAgainstConfig checks the settings of the unit that hawk.yaml and the
// upgrade mechanism depend on.
func checkUnitAgainstConfig(t *testing.T, text string, lines []unitLine) {
	cfgRaw, err := os.ReadFile(deployConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cfg deployYAML
	if err := yaml.Unmarshal(cfgRaw, &cfg); err != nil {
		t.Fatalf("%s: %v", deployConfig, err)
	}
	// Type=notify: hawk reports READY=1, the new process of an upgrade too, while
	// the old one is still the main process (hence NotifyAccess=all).
	for key, want := range map[string]string{
		"Type":           "notify",
		"NotifyAccess":   "all",
		"KillMode":       "control-group", // a stop during an upgrade's drain reaches both processes
		"ExecStart":      "/usr/local/bin/hawk -config /etc/hawk/hawk.yaml",
		"ExecStartPre":   "/usr/local/bin/hawk -check-config -config /etc/hawk/hawk.yaml",
		"ExecReload":     "/bin/sh -c 'exec /proc/$MAINPID/exe upgrade -config /etc/hawk/hawk.yaml'", // the running binary; waits for the verdict
		"ReadWritePaths": "/var/lib/hawk /run/hawk",
	} {
		if got := unitValue(t, lines, "Service", key); got.value != want {
			t.Errorf("%s=%s, want %s", key, got.value, want)
		}
	}
	// systemd follows the new process of an upgrade through the PID file, which
	// the old process rewrites as it exits.
	if cfg.Upgrade.PIDFile == "" {
		t.Errorf("%s: upgrade.pid_file is empty: systemd cannot follow the process across an upgrade", deployConfig)
	}
	if pid := unitValue(t, lines, "Service", "PIDFile"); pid.value != cfg.Upgrade.PIDFile {
		t.Errorf("PIDFile=%s, but %s has upgrade.pid_file: %s", pid.value, deployConfig, cfg.Upgrade.PIDFile)
	}
	if !strings.HasPrefix(cfg.Control.Socket, "/run/hawk/") {
		t.Errorf("%s: control.socket %q: hawk upgrade (ExecReload=) needs it, in RuntimeDirectory=hawk", deployConfig, cfg.Control.Socket)
	}
	drain, err := time.ParseDuration(cfg.Drain.Timeout)
	if err != nil {
		t.Fatalf("%s: drain.timeout: %v", deployConfig, err)
	}
	stopLine := unitValue(t, lines, "Service", "TimeoutStopSec")
	stop, err := parseTimeSpan(stopLine.value)
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	if stop <= drain {
		t.Errorf("TimeoutStopSec=%s (%s) is not greater than drain.timeout %s: systemd would SIGKILL a draining server",
			stopLine.value, stop, drain)
	}
}

// verifyUnit runs systemd-analyze verify on a runnable copy of the unit.
func verifyUnit(t *testing.T, text string, lines []unitLine) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not on PATH (Debian package systemd); skipping systemd-analyze verify")
	}
	// verify refuses a unit whose binaries do not exist, so verify a copy that
	// runs the freshly built server (same arguments); every other line is the
	// original (ExecReload= runs /bin/sh).
	out := strings.Split(text, "\n")
	replaced := 0
	for _, l := range lines {
		if l.section != "Service" || (l.key != "ExecStart" && l.key != "ExecStartPre") {
			continue
		}
		_, args, _ := strings.Cut(l.value, " ")
		out[l.index] = l.key + "=" + strings.TrimSpace(bin.serverV1+" "+args)
		replaced++
	}
	if replaced != 2 {
		t.Fatalf("%s: expected one ExecStart= and ExecStartPre=, found %d", deployUnit, replaced)
	}
	dir := t.TempDir()
	unit := filepath.Join(dir, "hawk.service")
	if err := os.WriteFile(unit, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, "verify", unit)
	cmd.Dir = dir
	// Keep systemd-analyze off the pager and the system manager: offline checks only.
	cmd.Env = append(os.Environ(), "SYSTEMD_PAGER=", "SYSTEMD_LOG_COLOR=0")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	runErr := cmd.Run()
	var problems []string
	for _, line := range strings.Split(buf.String(), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		// systemd prints no severity prefix: every line about our unit is a
		// complaint (unknown key, bad value, missing executable, ...). Lines about
		// other units of this host are not ours to judge.
		if strings.Contains(line, "hawk.service") {
			problems = append(problems, line)
		} else {
			t.Logf("systemd-analyze (other unit): %s", line)
		}
	}
	if runErr != nil || len(problems) > 0 {
		t.Fatalf("systemd-analyze verify %s (a copy of %s with ExecStart=%s): %v\n%s",
			unit, deployUnit, bin.serverV1, runErr, buf.String())
	}
}

// TestAlertRulesCheck checks deploy/hawk-alerts.yml: promtool accepts it, and every
// hawk_ metric and label value it names exists.
func TestAlertRulesCheck(t *testing.T) {
	t.Run("promtool", func(t *testing.T) {
		// A test that needs a tool fails without it: .ci/run installs it (Debian
		// package prometheus).
		pt, err := exec.LookPath("promtool")
		if err != nil {
			t.Fatal("promtool is not on PATH: install it (apt-get install prometheus, as .ci/run does)")
		}
		out, err := exec.Command(pt, "check", "rules", deployAlerts).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool check rules %s: %v\n%s", deployAlerts, err, out)
		}
		t.Logf("promtool check rules:\n%s", out)
	})

	t.Run("metrics exist", func(t *testing.T) {
		raw, err := os.ReadFile(deployAlerts)
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			Groups []struct {
				Name  string `yaml:"name"`
				Rules []struct {
					Alert  string `yaml:"alert"`
					Record string `yaml:"record"`
					Expr   string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(raw, &file); err != nil {
			t.Fatalf("%s: %v", deployAlerts, err)
		}

		// Every sample name and label value hawk exports. All of hawk's vectors are
		// pre-bound in metrics.New, so a fresh registry gathers every label value.
		// The per-listener functions (hawk_udp_kernel_drops_total) exist once a listener does.
		m := metrics.New("v-test", func() int { return 0 })
		m.UDP("u", func() (uint64, error) { return 0, nil })
		m.ObjStore()
		families, err := promtexttest.Gather(m.Registry)
		if err != nil {
			t.Fatal(err)
		}
		names := make(map[string]bool)
		labelValues := make(map[string]map[string]bool) // metric name + "/" + label → values
		for _, f := range families {
			base := f.GetName()
			series := []string{base}
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				series = append(series, base+"_bucket", base+"_sum", base+"_count")
			case dto.MetricType_SUMMARY:
				series = append(series, base+"_sum", base+"_count")
			}
			for _, n := range series {
				names[n] = true
			}
			for _, m := range f.GetMetric() {
				for _, lp := range m.GetLabel() {
					for _, n := range series {
						k := n + "/" + lp.GetName()
						if labelValues[k] == nil {
							labelValues[k] = make(map[string]bool)
						}
						labelValues[k][lp.GetValue()] = true
					}
				}
			}
		}

		metricRef := regexp.MustCompile(`hawk_[a-z_]+`)
		selector := regexp.MustCompile(`(hawk_[a-z_]+)\s*\{([^}]*)\}`)
		matcher := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
		literalAlternation := regexp.MustCompile(`^[a-zA-Z0-9_]+(\|[a-zA-Z0-9_]+)*$`)
		rules := 0
		for _, g := range file.Groups {
			for _, r := range g.Rules {
				rules++
				name := r.Alert + r.Record
				if strings.TrimSpace(r.Expr) == "" {
					t.Errorf("group %s, rule %s: empty expr", g.Name, name)
					continue
				}
				refs := metricRef.FindAllString(r.Expr, -1)
				if len(refs) == 0 {
					t.Errorf("group %s, rule %s: expr names no hawk_ metric: %s", g.Name, name, r.Expr)
				}
				for _, ref := range refs {
					if !names[ref] {
						t.Errorf("group %s, rule %s: expr uses %s, which hawk does not export", g.Name, name, ref)
					}
				}
				// A label value hawk never produces makes an alert that can never fire.
				for _, sel := range selector.FindAllStringSubmatch(r.Expr, -1) {
					metric := sel[1]
					if !names[metric] {
						continue // reported above
					}
					for _, m := range matcher.FindAllStringSubmatch(sel[2], -1) {
						label, op, val := m[1], m[2], m[3]
						if op != "=" && op != "=~" {
							continue
						}
						if op == "=~" && !literalAlternation.MatchString(val) {
							continue // a real regex: not checked
						}
						known := labelValues[metric+"/"+label]
						if known == nil {
							t.Errorf("group %s, rule %s: %s has no label %q", g.Name, name, metric, label)
							continue
						}
						for _, v := range strings.Split(val, "|") {
							if !known[v] {
								have := make([]string, 0, len(known))
								for k := range known {
									have = append(have, k)
								}
								slices.Sort(have)
								t.Errorf("group %s, rule %s: %s{%s=%q}: hawk never sets %s to %q (values: %s)",
									g.Name, name, metric, label, val, label, v, strings.Join(have, ", "))
							}
						}
					}
				}
			}
		}
		if rules == 0 {
			t.Fatalf("%s has no rules", deployAlerts)
		}
	})
}
