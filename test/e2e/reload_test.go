package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// writeConfig replaces the server's config file in place (what `echo > file` does).
func (s *server) writeConfig(body string) {
	s.t.Helper()
	if err := os.WriteFile(s.cfgPath, []byte(body), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// saveByRename replaces the config file the way editors and ConfigMaps do: a new
// file renamed over the old one.
func (s *server) saveByRename(body string) {
	s.t.Helper()
	tmp := filepath.Join(s.dir, ".hawk.yaml.swp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, s.cfgPath); err != nil {
		s.t.Fatal(err)
	}
}

func (s *server) baseConfig() string { return serverConfig(s.dir) }

// reloads counts the log lines of finished reloads (applied or rejected).
func (s *server) countLogs(msg string) int {
	return len(s.findLogs(func(l logLine) bool { return l.str("msg") == msg }))
}

func (s *server) waitCount(msg string, n int) logLine {
	s.t.Helper()
	var last logLine
	testutil.Eventually(s.t, 10*time.Second, func() bool {
		ls := s.findLogs(func(l logLine) bool { return l.str("msg") == msg })
		if len(ls) >= n {
			last = ls[n-1]
			return true
		}
		return false
	}, "%d log lines %q; log:\n%s", n, msg, s.logTextDump())
	return last
}

// Live reload under load: log level and heartbeat timeout by editing the file, an
// invalid file, SIGUSR1, an editor-style rename — clients notice none of it.
func TestLiveReloadUnderLoad(t *testing.T) {
	s := startServer(t, bin.serverV1)
	addr := s.addr()
	load := startLoad(t, addr, "-c", "50", "-w", "4", "-s", "128", "-rate", "5000", "-d", "10m")
	s.waitProgress(500)
	base := s.baseConfig()

	// (a) lower the log level and the heartbeat timeout by editing the file.
	edited := strings.Replace(base, "level: info", "level: debug", 1) + "  timeout: 1500ms\n" // under heartbeat:
	s.writeConfig(edited)
	applied := s.waitCount("config reloaded", 1)
	if applied.str("trigger") != "file change" {
		t.Fatalf("trigger %q", applied.str("trigger"))
	}
	for _, key := range []string{"log.level", "heartbeat.timeout"} {
		if len(s.findLogs(func(l logLine) bool { return l.str("msg") == "config changed" && l.str("key") == key })) != 1 {
			t.Fatalf("no single 'config changed' line for %s; log:\n%s", key, s.logTextDump())
		}
	}
	// Behaviour: debug lines now appear, and a silent connection is reaped at the new timeout.
	quiet := testutil.Dial(t, addr)
	quiet.Hello("quiet", "")
	s.waitLog(5*time.Second, func(l logLine) bool { return l.str("level") == "debug" && l.str("msg") == "handshake complete" })
	start := time.Now()
	e := quiet.ExpectError(protocol.CodeHeartbeatTimeout)
	if took := time.Since(start); took > 4*time.Second || !strings.Contains(e.Message, "1.5s") {
		t.Fatalf("reaped after %s with %q; want the new 1.5s timeout", took, e.Message)
	}

	// (b) an invalid file: rejected, named, nothing changes.
	s.writeConfig(strings.Replace(edited, "level: debug", "level: loud", 1) + "limits:\n  max_conns: -1\n")
	rej := s.waitCount("config reload rejected; the running configuration is unchanged", 1)
	for _, key := range []string{"log.level", "limits.max_conns"} {
		if !strings.Contains(rej.str("error"), key) {
			t.Fatalf("rejection %q does not name %s", rej.str("error"), key)
		}
	}
	if n := s.countLogs("config reloaded"); n != 1 {
		t.Fatalf("%d reloads applied after an invalid file", n)
	}
	// A restart-only key is refused the same way, with the reason.
	s.writeConfig(strings.Replace(edited, "format: json", "format: console", 1))
	rej = s.waitCount("config reload rejected; the running configuration is unchanged", 2)
	if !strings.Contains(rej.str("error"), "log.format: requires an upgrade (SIGHUP)") {
		t.Fatalf("restart-only rejection: %q", rej.str("error"))
	}

	// (e) the next good save, editor-style (rename over), applies: back to info.
	s.saveByRename(base)
	s.waitCount("config reloaded", 2)
	if len(s.findLogs(func(l logLine) bool {
		return l.str("msg") == "config changed" && l.str("key") == "log.level" && l.str("new") == "info"
	})) != 1 {
		t.Fatal("rename-save did not set log.level back to info")
	}

	// (d) SIGUSR1 reloads now; the file is unchanged, so there is nothing to apply.
	s.signal(s.cmd.Process.Pid, syscall.SIGUSR1)
	noChange := s.waitCount("config reload: no changes", 1)
	if noChange.str("trigger") != "SIGUSR1" {
		t.Fatalf("trigger %q, want SIGUSR1", noChange.str("trigger"))
	}

	sum := load.stop()
	if sum.Errors != 0 || sum.Reconnects != 0 || sum.DialFailures != 0 || sum.Acked != sum.Sent {
		t.Fatalf("clients noticed the reloads: %+v", sum)
	}
}

// (c) Revoking a token closes exactly the connections that used it and refuses it
// from then on.
func TestTokenRevocationByReload(t *testing.T) {
	s := startServer(t, bin.serverV1)
	tokens := "auth:\n  tokens: [tok-a, tok-b]\n"
	s.writeConfig(s.baseConfig() + tokens)
	s.waitCount("config reloaded", 1)
	addr := s.addr()
	keep := startLoad(t, addr, "-c", "20", "-w", "2", "-rate", "2000", "-token", "tok-a", "-id-prefix", "a", "-d", "10m")
	gone := startLoad(t, addr, "-c", "20", "-w", "2", "-rate", "2000", "-token", "tok-b", "-id-prefix", "b", "-d", "10m")
	s.waitProgress(500)

	s.writeConfig(s.baseConfig() + "auth:\n  tokens: [tok-a]\n")
	applied := s.waitCount("config reloaded", 2)
	if n := applied.num("connections_revoked"); n != 20 {
		t.Fatalf("revoked %v connections, want exactly the 20 using tok-b", n)
	}
	peer := testutil.Dial(t, addr)
	peer.Write(protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "late-b", Token: "tok-b"}))
	peer.ExpectError(protocol.CodeUnauthorized)
	// Secrets never reach the log.
	if strings.Contains(logDump{s}.String(), "tok-b") || strings.Contains(logDump{s}.String(), "tok-a") {
		t.Fatal("a token appears in the log")
	}
	s.waitProgress(500)
	if sum := keep.stop(); sum.Errors != 0 || sum.Reconnects != 0 || sum.Acked != sum.Sent {
		t.Fatalf("tok-a clients were disturbed: %+v", sum)
	}
	sumB := gone.stop()
	if sumB.Errors == 0 {
		t.Fatalf("tok-b clients saw no error: %+v", sumB)
	}
}

// A binary upgrade reads the configuration afresh; a config the new process
// rejects makes the upgrade fail cleanly and the old process keeps serving.
func TestUpgradeWithRejectedConfigFails(t *testing.T) {
	s := startServer(t, bin.serverV1)
	addr := s.addr()
	pid := s.cmd.Process.Pid
	load := startLoad(t, addr, "-c", "20", "-w", "2", "-rate", "2000", "-d", "10m")
	s.waitProgress(300)
	// Invalid for every process: the running one rejects the reload, the new one
	// refuses to start.
	s.writeConfig(s.baseConfig() + "limits:\n  max_conns: zero\n")
	s.waitCount("config reload rejected; the running configuration is unchanged", 1)
	install(t, bin.serverV2, s.binary)
	s.signal(pid, syscall.SIGHUP)
	fail := s.waitCount("upgrade failed: this process keeps serving", 1)
	if !strings.Contains(fail.str("error"), "exit") {
		t.Fatalf("upgrade failure reason %q", fail.str("error"))
	}
	if s.pid() != pid {
		t.Fatalf("PID file names %d, want the old %d", s.pid(), pid)
	}
	s.waitProgress(300)
	// Fix the file: the reload applies nothing new (same as running), and the upgrade now works.
	s.writeConfig(s.baseConfig())
	s.waitCount("config reload: no changes", 1)
	s.upgradeTo(bin.serverV2)
	if v := s.welcomeVersion(t, addr); v != "v2" {
		t.Fatalf("version %q after the good upgrade", v)
	}
	if sum := load.stop(); sum.Errors != 0 || sum.Acked != sum.Sent {
		t.Fatalf("clients noticed: %+v", sum)
	}
}
