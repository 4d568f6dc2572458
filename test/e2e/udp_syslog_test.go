package e2e

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// syslogRecord is a syslog record's payload as the test reads it.
type syslogRecord struct {
	RFC            int    `json:"rfc"`
	Facility       int    `json:"facility"`
	Severity       int    `json:"severity"`
	Timestamp      string `json:"timestamp"`
	Hostname       string `json:"hostname"`
	App            string `json:"app"`
	ProcID         string `json:"procid"`
	MsgID          string `json:"msgid"`
	StructuredData string `json:"structured_data"`
	Message        string `json:"message"`
}

// syslogMessages decodes the payloads of every syslog record in the spool, by message.
func syslogMessages(t *testing.T, spool string) map[string]syslogRecord {
	out := map[string]syslogRecord{}
	for _, r := range spoolRecordsWhere(t, spool, func(r *spoolRecord) bool { return strings.HasPrefix(r.ClientID, "syslog:") }) {
		var p syslogRecord
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			t.Fatalf("payload %s: %v", r.Payload, err)
		}
		out[p.Message] = p
	}
	return out
}

// util-linux logger (RFC 5424 and RFC 3164) and Python's SysLogHandler against a
// syslog listener: each message stored once, its fields parsed.
func TestUDPSyslogFromLoggerAndPython(t *testing.T) {
	if _, err := exec.LookPath("logger"); err != nil {
		t.Fatal("logger (util-linux, Debian's bsdutils) is needed; .ci/run installs it")
	}
	s := startServer(t, bin.serverV1,
		`-udp.listeners=[{name: sys, address: "127.0.0.1:0", format: syslog, allow: [127.0.0.0/8]}]`)
	addr := s.udpListening("sys")
	port := strconv.Itoa(addr.Port)
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v: %s", name, args, err, out)
		}
	}
	run("logger", "--udp", "--server", "127.0.0.1", "--port", port, "--rfc5424", "--tag", "e2e-app", "--id=4242",
		"--msgid", "M1", "--sd-id", "ex@32473", "--sd-param", `k="v"`, "-p", "local4.warning", "hello 5424")
	run("logger", "--udp", "--server", "127.0.0.1", "--port", port, "--rfc3164", "--tag", "e2e-old", "-p", "user.err", "hello 3164")
	run("python3", "-c", `
import logging, logging.handlers, sys
h = logging.handlers.SysLogHandler(address=("127.0.0.1", int(sys.argv[1])), facility=logging.handlers.SysLogHandler.LOG_DAEMON)
h.setFormatter(logging.Formatter("pyapp: %(message)s"))
log = logging.getLogger("e2e"); log.addHandler(h); log.setLevel(logging.INFO)
log.warning("hello python")
h.close()
`, port)

	var got map[string]syslogRecord
	testutil.Eventually(t, 10*time.Second, func() bool { got = syslogMessages(t, s.spool); return len(got) >= 3 }, "3 syslog records")
	r := got["hello 5424"]
	if r.RFC != 5424 || r.Facility != 20 || r.Severity != 4 || r.App != "e2e-app" || r.ProcID != "4242" || r.MsgID != "M1" ||
		!strings.Contains(r.StructuredData, `[ex@32473 k="v"]`) || r.Timestamp == "" || r.Hostname == "" {
		t.Errorf("logger --rfc5424: %+v", r)
	}
	r = got["hello 3164"]
	if r.RFC != 3164 || r.Facility != 1 || r.Severity != 3 || r.App != "e2e-old" || r.Timestamp == "" || r.Hostname == "" {
		t.Errorf("logger --rfc3164: %+v", r)
	}
	r = got["hello python"]
	if r.RFC != 3164 || r.Facility != 3 || r.Severity != 4 || r.App != "pyapp" {
		t.Errorf("python SysLogHandler: %+v", r)
	}
	if len(got) != 3 {
		t.Errorf("records %v, want 3", got)
	}
	if n := metric(t, s.adminAddr(), `hawk_udp_parse_errors_total{listener="sys",reason="unparsed"}`); n != 0 {
		t.Errorf("%v unparsed", n)
	}
}
