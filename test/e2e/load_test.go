package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// loadRun is a `client load` process.
type loadRun struct {
	t        testing.TB
	cmd      *exec.Cmd
	stdout   bytes.Buffer
	stderr   *testutil.Buffer
	ackedLog string
	done     chan struct{}
	err      error
}

// startLoad runs the load generator against addr; it is stopped (SIGINT) when the
// test ends if it is still running.
func startLoad(t testing.TB, addr string, args ...string) *loadRun {
	t.Helper()
	l := &loadRun{t: t, ackedLog: filepath.Join(t.TempDir(), "acked.log"), done: make(chan struct{}), stderr: &testutil.Buffer{}}
	all := append([]string{"load", "-addr", addr, "-json", "-acked-log", l.ackedLog}, args...)
	l.cmd = exec.Command(bin.client, all...)
	l.cmd.Stdout = &l.stdout
	l.cmd.Stderr = l.stderr
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { l.err = l.cmd.Wait(); close(l.done) }()
	t.Cleanup(func() {
		select {
		case <-l.done:
		default:
			l.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-l.done:
			case <-time.After(20 * time.Second):
				l.cmd.Process.Kill()
				<-l.done
			}
		}
		if t.Failed() {
			// Its progress lines (acked/s, in flight, errors, once a second) say
			// whether the agents stalled, and since when.
			lines := strings.Split(strings.TrimRight(l.stderr.String(), "\n"), "\n")
			t.Logf("hawkc %s, the end of its stderr:\n%s", strings.Join(all[1:], " "), strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return l
}

// stop asks the load generator to finish (SIGINT: stop sending, wait for what is in
// flight) and returns its summary. Tests stop their loads, so a load's -d is only
// a bound (10m in these tests): a load that ran out of its -d while the test still
// waited on it would make the waits after that see no traffic, which on a slow
// machine reads as a stalled server. One that ended before stop is logged.
func (l *loadRun) stop() loadSummary {
	l.t.Helper()
	select {
	case <-l.done:
		l.t.Logf("the load generator had ended before the test stopped it (exit: %v)", l.err)
	default:
		l.cmd.Process.Signal(syscall.SIGINT)
	}
	return l.wait(60 * time.Second)
}

// wait waits for the load generator to exit and parses its -json summary.
func (l *loadRun) wait(timeout time.Duration) loadSummary {
	l.t.Helper()
	select {
	case <-l.done:
	case <-time.After(timeout):
		l.t.Fatalf("load generator still running after %s; stderr:\n%s", timeout, l.stderr.String())
	}
	var s loadSummary
	out := bytes.TrimSpace(l.stdout.Bytes())
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	if err := json.Unmarshal(out, &s); err != nil {
		l.t.Fatalf("load summary %q: %v (exit: %v); stderr:\n%s", l.stdout.String(), err, l.err, l.stderr.String())
	}
	return s
}

// acked reads the -acked-log: every (client id, seq) the load generator saw ACKed.
func (l *loadRun) acked() map[string]int {
	l.t.Helper()
	f, err := os.Open(l.ackedLog)
	if err != nil {
		l.t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out[line]++
		}
	}
	if err := sc.Err(); err != nil {
		l.t.Fatal(err)
	}
	return out
}

// spoolRecords is readSpool's records: every "client_id seq" key and its count.
func spoolRecords(t testing.TB, dir string) map[string]int {
	t.Helper()
	return readSpool(t, dir).records
}

// checkCleanSpool reads the spool in dir after clean stops, where not even the
// torn last line a crash may leave is allowed, and checks it against acked as
// checkSpool does.
func checkCleanSpool(t testing.TB, dir string, acked map[string]int, exact bool) {
	t.Helper()
	sp := readSpool(t, dir)
	if len(sp.torn) > 0 {
		t.Errorf("torn lines in %s after clean stops: %v", dir, sp.torn)
	}
	checkSpool(t, sp.records, acked, exact)
}

// checkSpool asserts every acked report is in the spool; with exact, also that the
// spool holds each exactly once and nothing else.
func checkSpool(t testing.TB, spool map[string]int, acked map[string]int, exact bool) {
	t.Helper()
	missing, dups := 0, 0
	var example []string
	for k := range acked {
		if spool[k] == 0 {
			missing++
			if len(example) < 5 {
				example = append(example, k)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d acked reports are missing from the spool, e.g. %v", missing, example)
	}
	if !exact {
		return
	}
	for k, n := range spool {
		if n > 1 {
			dups++
			if len(example) < 10 {
				example = append(example, fmt.Sprintf("%s×%d", k, n))
			}
		}
		if acked[k] == 0 {
			t.Errorf("spool holds %q, which was never acked", k)
			break
		}
	}
	if dups > 0 {
		t.Errorf("%d reports are in the spool more than once, e.g. %v", dups, example)
	}
}

// loadSummary is `client load -json`'s final line.
type loadSummary struct {
	Sent         int64   `json:"sent"`
	Acked        int64   `json:"acked"`
	Nacked       int64   `json:"nacked"`
	Errors       int64   `json:"errors"`
	Reconnects   int64   `json:"reconnects"`
	Goaways      int64   `json:"goaways"`
	DialFailures int64   `json:"dial_failures"`
	AckedPerS    float64 `json:"acked_per_s"`
	ConnectErrs  int64   `json:"connect_errors"`
	P50us        float64 `json:"latency_p50_us"`
	P99us        float64 `json:"latency_p99_us"`
	Maxus        float64 `json:"latency_max_us"`
}
