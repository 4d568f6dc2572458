package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// mountTmpfs mounts a tmpfs of size bytes at a new directory and unmounts it when
// the test ends (after the servers using it, which were started later, have
// stopped). It needs root; without it the test fails: a disk-full test that
// silently does not run proves nothing.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small-disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("this test mounts a %s tmpfs as the spool to fill it: run it as root (euid is %d)", size, os.Geteuid())
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount -t tmpfs -o size=%s tmpfs %s: %v: %s (the test needs root and permission to mount)", size, dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// fillDisk writes name until the file system is full and returns how much it wrote.
func fillDisk(t *testing.T, name string) int64 {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	var n int64
	for {
		m, err := f.Write(chunk)
		n += int64(m)
		if errors.Is(err, syscall.ENOSPC) {
			return n
		}
		if err != nil {
			t.Fatalf("filling %s: %v", name, err)
		}
	}
}

// A full disk under load: the server keeps serving (new connections are welcome),
// refuses what it cannot persist with NACK spool_write_failed (retryable) and never
// ACKs it, and once space is freed the same reports go through. Nothing acked is
// missing from the spool, and the clients' retries hide the episode: no report fails.
func TestDiskFullUnderLoad(t *testing.T) {
	spool := mountTmpfs(t, "2m")
	s := startServer(t, bin.serverV1, "-spool.dir="+spool)
	s.spool = spool
	addr, admin := s.addr(), s.adminAddr()
	load := startLoad(t, addr, "-c", "20", "-w", "4", "-s", "256", "-rate", "2000", "-d", "10m")
	s.waitProgress(500)

	filler := filepath.Join(spool, "filler.bin")
	filled := fillDisk(t, filler)
	testutil.Eventually(t, 10*time.Second, func() bool { return metric(t, admin, "hawk_spool_write_errors_total") > 0 },
		"the spool to fail writes on the full disk")
	s.waitLog(5*time.Second, func(l logLine) bool { return l.str("msg") == "spool write failed, records refused" })

	// Still serving: a new agent is welcome, and its report (larger than a page, so
	// that it cannot fit in the slack of the segment's last page) is refused with a
	// retryable NACK, not acked.
	p, err := dialProto(addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial while the disk is full: %v", err)
	}
	defer p.Close()
	if _, err := p.hello("disk-full-probe", 5*time.Second); err != nil {
		t.Fatalf("HELLO while the disk is full: %v", err)
	}
	payload := []byte(`"` + strings.Repeat("x", 8190) + `"`)
	f, err := p.report(1, payload, 5*time.Second)
	if err != nil {
		t.Fatalf("REPORT while the disk is full: %v", err)
	}
	if f.Type != protocol.TypeNack {
		t.Fatalf("REPORT while the disk is full answered with %s, want NACK", f.Type)
	}
	var nack protocol.Nack
	if err := protocol.ParseJSON(f, &nack); err != nil {
		t.Fatal(err)
	}
	if nack.Code != protocol.CodeSpoolWrite || !nack.Retryable {
		t.Fatalf("NACK %+v, want code %s, retryable", nack, protocol.CodeSpoolWrite)
	}
	full := readSpool(t, spool)

	// Free the space: the same report (same seq, as a client resends it) is acked,
	// and the load flows again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	f, err = p.report(1, payload, 5*time.Second)
	if err != nil || f.Type != protocol.TypeAck {
		t.Fatalf("the resent REPORT after freeing space: %v %v %s, want ACK", f.Type, err, f.Payload)
	}
	s.waitProgress(500)
	sum := load.stop()
	nacked := metric(t, admin, "hawk_reports_nacked_total")
	t.Logf("filled %d bytes; %d records on the full disk; server NACKed %v; load: %+v", filled, full.lines, nacked, sum)
	if sum.Errors != 0 || sum.ConnectErrs != 0 || sum.Acked != sum.Sent || sum.Nacked == 0 {
		t.Fatalf("want every report acked in the end after retryable NACKs: %+v\nload stderr:\n%s", sum, load.stderr)
	}
	if full.records["disk-full-probe 1"] != 0 {
		t.Fatal("the NACKed report is in the spool")
	}
	acked := load.acked()
	acked["disk-full-probe 1"]++
	s.stopAll()
	checkCleanSpool(t, spool, acked, false) // no torn line: a failed write was rolled back
}

// goroutines returns the server's goroutine count and, after a forced GC (twice,
// to empty sync.Pools), its live heap, from /debug/pprof (admin.pprof on).
func goroutinesAndHeap(t *testing.T, admin string) (int, int64) {
	t.Helper()
	_, g := get(t, "http://"+admin+"/debug/pprof/goroutine?debug=1")
	m := regexp.MustCompile(`goroutine profile: total (\d+)`).FindStringSubmatch(g)
	if m == nil {
		t.Fatalf("no goroutine count in /debug/pprof/goroutine: %.200s", g)
	}
	n, _ := strconv.Atoi(m[1])
	get(t, "http://"+admin+"/debug/pprof/heap?gc=1")
	_, h := get(t, "http://"+admin+"/debug/pprof/heap?gc=1&debug=1")
	hm := regexp.MustCompile(`# HeapAlloc = (\d+)`).FindStringSubmatch(h)
	if hm == nil {
		t.Fatalf("no HeapAlloc in /debug/pprof/heap")
	}
	heap, _ := strconv.ParseInt(hm[1], 10, 64)
	return n, heap
}

// waitBaseline waits until the server is back to at most g0 (+ a few) goroutines
// and at most hMax bytes of live heap, and returns the heap it found.
func waitBaseline(t *testing.T, admin string, g0 int, hMax int64, what string) int64 {
	t.Helper()
	const gSlack = 5
	var g int
	var h int64
	deadline := time.Now().Add(15 * time.Second)
	for {
		g, h = goroutinesAndHeap(t, admin)
		if g <= g0+gSlack && h <= hMax {
			t.Logf("%s: goroutines %d (baseline %d), live heap %d KiB (at most %d KiB)", what, g, g0, h>>10, hMax>>10)
			return h
		}
		if time.Now().After(deadline) {
			_, dump := get(t, "http://"+admin+"/debug/pprof/goroutine?debug=1")
			t.Fatalf("%s: goroutines %d (want at most %d + %d), live heap %d KiB (want at most %d KiB) 15s after the connections left:\n%.4000s",
				what, g, g0, gSlack, h>>10, hMax>>10, dump)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// 2,000 agents connect at once, each reports once, then they all leave, twice:
// the server gives back every goroutine each time, and the second burst leaves
// no more memory behind than the first (what a first burst keeps, such as the
// registry's grown maps, is kept once; a leak grows with every burst).
func TestNoLeakAfterConnectionBurst(t *testing.T) {
	// 16 workers connecting back to back can go over limits.handshake_rate, and a
	// "busy" refusal is not what this tests: every handshake is admitted.
	s := startServer(t, bin.serverV1, "-admin.pprof=true", "-limits.handshake_rate=0")
	admin := s.adminAddr()
	g0, h0 := goroutinesAndHeap(t, admin)
	peak := connectionBurst(t, s, 1)
	h1 := waitBaseline(t, admin, g0, peak, "after burst 1")
	peak = connectionBurst(t, s, 2)
	slack := max(512<<10, (peak-h0)/4)
	waitBaseline(t, admin, g0, h1+slack, "after burst 2")
	if got := metric(t, admin, "hawk_reports_acked_total"); got != 2*burstSize {
		t.Fatalf("hawk_reports_acked_total = %v, want %d", got, 2*burstSize)
	}
}

const burstSize = 2000

// connectionBurst connects burstSize agents (HELLO, one REPORT acked each), holds
// them all open, then closes them and waits until the server has none; it returns
// the server's live heap with all of them connected.
func connectionBurst(t *testing.T, s *server, round int) int64 {
	t.Helper()
	addr, admin := s.addr(), s.adminAddr()
	const n, workers = burstSize, 16
	conns := make([]*protoConn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				p, err := dialProto(addr, 5*time.Second)
				if err == nil {
					conns[i] = p
					if _, err = p.hello(fmt.Sprintf("burst-%d-%d", round, i), 10*time.Second); err == nil {
						var f protocol.Frame
						if f, err = p.report(uint64(i+1), []byte(`{"burst":true}`), 10*time.Second); err == nil && f.Type != protocol.TypeAck {
							err = fmt.Errorf("%s", f.Type)
						}
					}
				}
				if err != nil {
					errs <- fmt.Errorf("burst %d, connection %d: %w", round, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, p := range conns {
			if p != nil {
				p.Close()
			}
		}
	}()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if got := metric(t, admin, "hawk_connections"); got != n {
		t.Fatalf("hawk_connections = %v with %d agents connected", got, n)
	}
	g, h := goroutinesAndHeap(t, admin)
	t.Logf("burst %d, %d connections: goroutines %d, live heap %d KiB", round, n, g, h>>10)
	for _, p := range conns {
		p.Close()
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return metric(t, admin, "hawk_connections") == 0 }, "every connection gone")
	return h
}

// Many connections that never say HELLO: every one is closed with ERROR
// handshake_timeout, the server gives back what they held, and the agents
// connected meanwhile notice nothing.
func TestNeverHelloFlood(t *testing.T) {
	s := startServer(t, bin.serverV1, "-handshake.timeout=1s", "-admin.pprof=true")
	addr, admin := s.addr(), s.adminAddr()
	load := startLoad(t, addr, "-c", "20", "-w", "4", "-s", "128", "-rate", "2000", "-d", "10m")
	testutil.Eventually(t, 10*time.Second, func() bool { return metric(t, admin, "hawk_connections") == 20 }, "the load's 20 clients")
	s.waitProgress(300)
	g0, h0 := goroutinesAndHeap(t, admin)

	// From 20 sources, 25 each: within every source's share of the handshake rate
	// (fairness sends a single source's burst of 500 to ERROR busy, by design).
	const n = 500
	conns := make([]*protoConn, n)
	for i := range conns {
		p, err := dialProtoFrom(fmt.Sprintf("127.0.4.%d", 1+i%20), addr, 5*time.Second)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		defer p.Close()
		conns[i] = p
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	var first atomic.Value
	for i, p := range conns {
		wg.Go(func() {
			if err := p.expectError(protocol.CodeHandshakeTimeout, 15*time.Second); err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, fmt.Sprintf("connection %d: %v", i, err))
			}
		})
	}
	// Meanwhile a new agent gets in as usual.
	if _, err := freshDial(addr, "during-flood", 1); err != nil {
		t.Fatalf("an agent connecting during the flood: %v", err)
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d silent connections were not closed with ERROR handshake_timeout; first: %v", f, n, first.Load())
	}
	// Each close is counted once its teardown has finished, just after the socket closed.
	testutil.Eventually(t, 5*time.Second, func() bool { return metric(t, admin, "hawk_connections") == 20 }, "only the load's clients left")
	testutil.Eventually(t, 5*time.Second, func() bool {
		return metric(t, admin, `hawk_connections_closed_total{reason="handshake"}`) == n
	}, `hawk_connections_closed_total{reason="handshake"} to reach %d`, n)
	waitBaseline(t, admin, g0, h0+4<<20, "after the flood")
	sum := load.stop()
	if sum.Errors != 0 || sum.Reconnects != 0 || sum.ConnectErrs != 0 || sum.Acked != sum.Sent {
		t.Fatalf("the connected agents noticed the flood: %+v", sum)
	}
}

// A HELLO dripped one byte every 100ms (slowloris before the handshake) does not
// hold a connection open: handshake.timeout counts from accept, whatever arrives.
func TestSlowHelloCutAtHandshakeTimeout(t *testing.T) {
	const timeout = time.Second
	s := startServer(t, bin.serverV1, "-handshake.timeout="+timeout.String())
	addr := s.addr()
	// 200 bytes: 20s at this pace, far past the timeout.
	hello := protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "slow", ClientVersion: strings.Repeat("v", 150)})
	const n = 20
	var wg sync.WaitGroup
	results := make([]string, n)
	for i := range n {
		p, err := dialProto(addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		start := time.Now()
		var sent atomic.Int64
		stop := make(chan struct{})
		wg.Go(func() { // the drip
			tk := time.NewTicker(100 * time.Millisecond)
			defer tk.Stop()
			for _, b := range hello {
				select {
				case <-stop:
					return
				case <-tk.C:
				}
				if _, err := p.Conn.Write([]byte{b}); err != nil {
					return
				}
				sent.Add(1)
			}
		})
		wg.Go(func() {
			defer close(stop)
			err := p.expectError(protocol.CodeHandshakeTimeout, 10*time.Second)
			took, dripped := time.Since(start), sent.Load()
			switch {
			case err != nil:
				results[i] = fmt.Sprintf("connection %d: %v (after %s, %d of %d bytes sent)", i, err, took, dripped, len(hello))
			case took < timeout:
				results[i] = fmt.Sprintf("connection %d: cut after %s, before handshake.timeout %s", i, took, timeout)
			case dripped >= int64(len(hello)):
				results[i] = fmt.Sprintf("connection %d: the whole HELLO went through before the cut (%s)", i, took)
			}
		})
	}
	// The server serves others meanwhile.
	if _, err := freshDial(addr, "normal", 1); err != nil {
		t.Fatalf("a normal agent during the drip: %v", err)
	}
	wg.Wait()
	for _, r := range results {
		if r != "" {
			t.Error(r)
		}
	}
}

// Each malformed input gets the ERROR code docs/PROTOCOL.md gives it, then the
// connection is closed; the agents connected meanwhile notice nothing.
func TestMalformedFramesGetTheirError(t *testing.T) {
	s := startServer(t, bin.serverV1, "-limits.max_frame_size=4096")
	addr := s.addr()
	load := startLoad(t, addr, "-c", "10", "-w", "2", "-s", "128", "-rate", "1000", "-d", "10m")
	s.waitProgress(200)

	hello := protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "malformed"})
	report := protocol.AppendFrame(nil, protocol.TypeReport, 7, []byte(`{"ok":true}`))
	header := func(typ protocol.Type, length uint32) []byte {
		h := []byte{protocol.Magic0, protocol.Magic1, protocol.Version, byte(typ), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
		binary.BigEndian.PutUint32(h[4:], length)
		return h
	}
	corrupt := func(frame []byte, i int) []byte {
		out := bytes.Clone(frame)
		out[i] ^= 0xff
		return out
	}
	cases := []struct {
		name      string
		handshake bool // send a good HELLO first
		send      []byte
		code      protocol.Code
	}{
		{"bad magic (an HTTP request)", false, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), protocol.CodeBadMagic},
		{"unsupported version", false, corrupt(hello, 2), protocol.CodeUnsupportedVersion},
		{"bad crc on HELLO", false, corrupt(hello, len(hello)-1), protocol.CodeBadCRC},
		{"bad crc on REPORT", true, corrupt(report, len(report)-2), protocol.CodeBadCRC},
		{"unknown type", false, protocol.AppendFrame(nil, protocol.Type(255), 1, nil), protocol.CodeUnknownType},
		{"unknown type after HELLO", true, protocol.AppendFrame(nil, protocol.Type(0), 1, nil), protocol.CodeUnknownType},
		{"first frame too large (header alone)", false, header(protocol.TypeHello, 17<<10), protocol.CodeFrameTooLarge},
		{"REPORT too large (header alone)", true, header(protocol.TypeReport, 4097), protocol.CodeFrameTooLarge},
		{"REPORT before HELLO", false, report, protocol.CodeProtocol},
		{"ACK from the client before HELLO", false, protocol.AppendFrame(nil, protocol.TypeAck, 1, nil), protocol.CodeProtocol},
		{"ACK from the client", true, protocol.AppendFrame(nil, protocol.TypeAck, 1, nil), protocol.CodeProtocol},
		{"ERROR from the client", true, protocol.AppendJSON(nil, protocol.TypeError, 0, &protocol.ErrorPayload{Code: "x"}), protocol.CodeProtocol},
		{"second HELLO", true, hello, protocol.CodeProtocol},
		{"HELLO not JSON", false, protocol.AppendFrame(nil, protocol.TypeHello, 0, []byte("hello")), protocol.CodeBadPayload},
		{"HELLO without client_id", false, protocol.AppendFrame(nil, protocol.TypeHello, 0, []byte(`{}`)), protocol.CodeBadPayload},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := dialProto(addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if c.handshake {
				if _, err := p.hello("malformed-"+strings.ReplaceAll(c.name, " ", "-"), 5*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.write(c.send); err != nil {
				t.Fatal(err)
			}
			if err := p.expectError(c.code, 5*time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Still serving.
	if _, err := freshDial(addr, "after-malformed", 1); err != nil {
		t.Fatalf("a good agent after the malformed ones: %v", err)
	}
	sum := load.stop()
	if sum.Errors != 0 || sum.Reconnects != 0 || sum.Acked != sum.Sent {
		t.Fatalf("the connected agents noticed: %+v", sum)
	}
}
