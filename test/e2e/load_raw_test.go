package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// hawkc load -raw, the throughput generator beside the reference, against the real
// server (range acknowledgements, the spool, the dedup window): every report it
// counts as acked is in the spool exactly once, and it sent nothing else.
func TestRawLoadAgainstServer(t *testing.T) {
	s := startServer(t, bin.serverV1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.client, "load", "-raw", "-addr", s.addr(), "-c", "50", "-w", "8", "-s", "128",
		"-d", "1s", "-warmup", "300ms", "-id-prefix", "raw", "-json")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("hawkc load -raw: %v\nstdout %s\nstderr %s", err, out.String(), errOut.String())
	}
	var sum loadSummary
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &sum); err != nil {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
	if sum.Acked == 0 || sum.Sent != sum.Acked || sum.Errors != 0 || sum.ConnectErrs != 0 {
		t.Fatalf("summary %+v\nstderr %s", sum, errOut.String())
	}
	s.stopAll()
	spooled := int64(0)
	for k, n := range spoolRecords(t, s.spool) {
		if !strings.HasPrefix(k, "raw-") || n != 1 {
			t.Fatalf("spool record %q %d times", k, n)
		}
		spooled++
	}
	if spooled != sum.Acked {
		t.Fatalf("%d reports in the spool, %d acked", spooled, sum.Acked)
	}
	t.Logf("%d reports, %.0f acked/s", sum.Acked, sum.AckedPerS)
}
