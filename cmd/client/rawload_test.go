package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// load -raw keeps each connection's window full and counts what the server
// answered, with ACK_RANGE and with one ACK per report: every report sent is acked
// once, the server saw each one once, and the steady window is measured as load's.
func TestLoadRaw(t *testing.T) {
	for _, perReport := range []bool{false, true} {
		t.Run("per-report-acks="+strconv.FormatBool(perReport), func(t *testing.T) {
			srv := startAckServer(t, "tok")
			sum, errOut := loadJSON(t, "-raw", "-addr", srv.ln.Addr().String(), "-token", "tok", "-c", "40", "-w", "4", "-s", "64",
				"-d", "600ms", "-warmup", "300ms", "-id-prefix", "raw", "-latency-every", "2", "-per-report-acks="+strconv.FormatBool(perReport))
			if sum.Acked == 0 || sum.Sent != sum.Acked || sum.Errors != 0 || sum.ConnectErrors != 0 || sum.Clients != 40 {
				t.Fatalf("summary %+v", sum)
			}
			if sum.SteadyAcked == 0 || sum.SteadyAcked >= sum.Acked || sum.SteadyAckedPerS != float64(sum.SteadyAcked)/sum.SteadyS {
				t.Fatalf("steady window %+v", sum)
			}
			if sum.LatencyP50US <= 0 || sum.LatencyP50US > sum.LatencyP90US || sum.LatencyP90US > sum.LatencyP99US || sum.LatencyP99US > sum.LatencyMaxUS {
				t.Fatalf("latencies %+v", sum)
			}
			if !strings.Contains(errOut, "steady window begins") || !strings.Contains(errOut, "steady window ends") {
				t.Fatalf("stderr %q", errOut)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			seen := uint64(0)
			for k, n := range srv.seen {
				if n != 1 || !strings.HasPrefix(k, "raw-") {
					t.Fatalf("the server saw %q %d times", k, n)
				}
				seen++
			}
			if seen != sum.Acked {
				t.Fatalf("the server saw %d reports, %d acked", seen, sum.Acked)
			}
		})
	}
}

// A NACK is an error, and the connection goes on with the next report.
func TestLoadRawNacked(t *testing.T) {
	srv := startAckServerWith(t, "", 0, 10)
	code, out, errOut := runCmd("load", "-raw", "-addr", srv.ln.Addr().String(), "-c", "3", "-w", "4", "-d", "300ms", "-json", "-src-spread=false")
	var sum summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("stdout %q: %v\nstderr %s", out, err, errOut)
	}
	if code != 1 || sum.Acked < 100 || sum.Errors == 0 || sum.Nacked != sum.Errors || sum.Sent != sum.Acked+sum.Errors {
		t.Fatalf("exit %d, summary %+v; want exit 1, a NACK every 10 reports, and the connections going on\nstderr %s", code, sum, errOut)
	}
}

// A connection told GOAWAY issues no more reports; those in flight are still
// counted as the server answers them, and it is not an error.
func TestLoadRawGoaway(t *testing.T) {
	srv := startAckServer(t, "")
	srv.goawayAfter = 4 // the first read: the window of 4
	sum, _ := loadJSON(t, "-raw", "-addr", srv.ln.Addr().String(), "-c", "3", "-w", "4", "-d", "300ms", "-src-spread=false")
	// The server reads a connection's first 4 reports at once (one write) or in two
	// reads, answering those of the first before the GOAWAY: at most 4 more each.
	if sum.Goaways != 3 || sum.Sent < 12 || sum.Sent >= 24 || sum.Acked != sum.Sent || sum.Errors != 0 {
		t.Fatalf("summary %+v; want 3 GOAWAYs and about each connection's first 4 reports, all acked", sum)
	}
}

// Reports unanswered at the drain timeout are errors, and the run ends there.
func TestLoadRawDrainTimeout(t *testing.T) {
	srv := startAckServerWith(t, "", 1500*time.Millisecond, 0)
	code, out, errOut := runCmd("load", "-raw", "-addr", srv.ln.Addr().String(), "-c", "4", "-w", "2", "-d", "300ms", "-drain-timeout", "200ms", "-json", "-src-spread=false")
	var sum summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("stdout %q: %v\nstderr %s", out, err, errOut)
	}
	if code != 1 || sum.Errors != 8 || sum.Acked != 0 || sum.Sent != 8 || sum.ElapsedS > 3 {
		t.Fatalf("exit %d, summary %+v; want exit 1, the 8 reports in flight errors, nothing acked, an end at the timeout\nstderr %s", code, sum, errOut)
	}
	if !strings.Contains(errOut, "giving up on them") {
		t.Fatalf("stderr %q", errOut)
	}
}

// A refused HELLO is a connection that failed, named on stderr; none up is exit 1.
func TestLoadRawRefused(t *testing.T) {
	srv := startAckServer(t, "tok")
	code, _, errOut := runCmd("load", "-raw", "-addr", srv.ln.Addr().String(), "-token", "bad", "-c", "2", "-d", "300ms", "-json", "-src-spread=false")
	if code != 1 || !strings.Contains(errOut, "unauthorized") || !strings.Contains(errOut, "none of the 2 connections") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// What needs the client library is refused with -raw.
func TestLoadRawUsage(t *testing.T) {
	for _, args := range [][]string{{"-rate", "100"}, {"-timeline", "x"}, {"-acked-log", "x"}, {"-tls"}} {
		code, _, errOut := runCmd(append([]string{"load", "-raw", "-addr", "127.0.0.1:1"}, args...)...)
		if code != 2 || !strings.Contains(errOut, "-raw takes none of") {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}
