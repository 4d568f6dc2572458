package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// The Python client (clients/python) is written from docs/PROTOCOL.md alone: these
// tests run it against the real server, so the document stays enough to write an
// agent in another language.

const pythonDir = "../../clients/python"

// python3 returns the interpreter's path, or fails: a missing Python is an error of
// the machine, not a reason to skip.
func python3(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 not found in PATH (%v): the Python client tests need Python 3.11 or later "+
			"(Debian/Ubuntu: apt-get install python3; macOS: brew install python; or see https://www.python.org/downloads/)", err)
	}
	return p
}

// pythonEnv is the environment of a Python process talking to s.
func pythonEnv(s *server) []string {
	return append(exec.Command("true").Environ(),
		"HAWK_ADDR="+s.addr(),
		"HAWK_SPOOL_DIR="+s.spool,
		"HAWK_REQUIRE_SERVER=1",
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONUNBUFFERED=1",
	)
}

// TestPythonClient runs the Python client's unittest suite against a real server.
func TestPythonClient(t *testing.T) {
	s := startServer(t, bin.serverV1, "-uploads.enabled=true",
		`-udp.listeners=[{name: pyreport, address: "127.0.0.1:0", format: report, allow: [127.0.0.0/8]}]`)
	runPythonTests(t, s, []string{"HAWK_UDP_REPORT_ADDR=" + s.udpListening("pyreport").String()}, "test_hawk_client", "test_hawk_client_upload")
}

// runPythonTests runs unittest modules of clients/python against s (env added to
// pythonEnv) and fails unless every test ran and passed.
func runPythonTests(t *testing.T, s *server, env []string, modules ...string) {
	t.Helper()
	py := python3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{"-m", "unittest", "-v"}, modules...)...)
	cmd.Dir = pythonDir
	cmd.Env = append(pythonEnv(s), env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 -m unittest -v %s in clients/python: %v (context: %v)\n%s\nserver log:\n%s", modules, err, ctx.Err(), out, s.logTextDump())
	}
	text := string(out)
	if strings.Contains(text, "skipped") {
		t.Fatalf("Python tests were skipped, none may be:\n%s", text)
	}
	if !strings.Contains(text, "\nOK") {
		t.Fatalf("no OK from unittest:\n%s", text)
	}
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if strings.HasPrefix(l, "Ran ") {
			t.Logf("python %s: %s", modules, l)
		}
	}
}

// pythonSummary is the last line upgrade_driver.py prints.
type pythonSummary struct {
	ClientID       string           `json:"client_id"`
	Acked          []json.Number    `json:"acked"`
	Failed         []map[string]any `json:"failed"`
	Events         map[string]int   `json:"events"`
	ServerVersions []string         `json:"server_versions"`
	ConnIDs        []json.Number    `json:"conn_ids"`
	Errors         []string         `json:"errors"`
	LocalPorts     []int            `json:"local_ports"`
	TLSVersion     string           `json:"tls_version"`
}

// TestPythonClientGoaway upgrades the server while the Python client streams
// reports: the client follows the GOAWAY to the new process, and every report is
// acked and in the spool exactly once.
func TestPythonClientGoaway(t *testing.T) {
	// GOAWAY is what this test is about; with a handoff the client sees nothing
	// (TestHandoffConnectionsUnderLoad, TestPythonClientTLSUpgrades).
	s := startServer(t, bin.serverV1, "-upgrade.handoff=false")
	sum := runUpgradeDriver(t, s, nil, func() { s.upgradeTo(bin.serverV2) })
	if sum.Events["goaways"] < 1 {
		t.Fatalf("the client saw no GOAWAY: %+v", sum)
	}
	if n := len(sum.ServerVersions); n < 2 || sum.ServerVersions[0] != "v1" || sum.ServerVersions[n-1] != "v2" {
		t.Fatalf("WELCOME versions %v: want v1 first and v2 last", sum.ServerVersions)
	}
	s.stopAll()
	checkSpool(t, spoolRecords(t, s.spool), sum.ackedKeys(t), true)
}

// runUpgradeDriver runs upgrade_driver.py against s (env added to pythonEnv),
// calls upgrade once reports are flowing, waits for 500 more records in the spool,
// stops the driver and returns its summary, failing the test if any report failed.
//
// Handshake: the driver prints "streaming" once reports are flowing; the test then
// upgrades and writes "stop" to the driver's stdin; the driver waits for its last
// ACKs and prints a JSON summary.
func runUpgradeDriver(t *testing.T, s *server, env []string, upgrade func()) pythonSummary {
	t.Helper()
	d := startPythonScript(t, s, "upgrade_driver.py", env)
	if l := d.next(`"streaming"`); l != "streaming" {
		t.Fatalf("driver said %q, want \"streaming\"; stderr:\n%s", l, d.stderr.String())
	}
	upgrade()
	base := s.spoolLines()
	// The client carries on on the new process before it is told to stop.
	testutil.Eventually(t, 20*time.Second, func() bool { return s.spoolLines() >= base+500 }, "500 more records after the upgrade")
	if _, err := io.WriteString(d.stdin, "stop\n"); err != nil {
		t.Fatal(err)
	}
	d.stdin.Close()
	summaryLine := d.last("JSON summary")

	var sum pythonSummary
	dec := json.NewDecoder(strings.NewReader(summaryLine))
	dec.UseNumber()
	if err := dec.Decode(&sum); err != nil {
		t.Fatalf("driver summary %q: %v", summaryLine, err)
	}
	t.Logf("python through upgrade: acked=%d events=%v server_versions=%v conn_ids=%v errors=%v",
		len(sum.Acked), sum.Events, sum.ServerVersions, sum.ConnIDs, sum.Errors)
	if len(sum.Failed) != 0 {
		t.Fatalf("%d reports failed, e.g. %v", len(sum.Failed), sum.Failed[0])
	}
	return sum
}

// ackedKeys are the summary's acked reports as "client_id seq", each once.
func (sum pythonSummary) ackedKeys(t *testing.T) map[string]int {
	t.Helper()
	acked := map[string]int{}
	for _, seq := range sum.Acked {
		if _, err := strconv.ParseUint(seq.String(), 10, 64); err != nil {
			t.Fatalf("acked seq %q: %v", seq, err)
		}
		acked[fmt.Sprintf("%s %s", sum.ClientID, seq)]++
	}
	if len(acked) != len(sum.Acked) || len(acked) == 0 {
		t.Fatalf("%d acked seqs, %d distinct", len(sum.Acked), len(acked))
	}
	return acked
}
