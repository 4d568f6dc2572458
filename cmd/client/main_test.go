package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/upload/uploadtest"
)

// ackServer is a minimal hawk server: it checks the token and acks every report.
type ackServer struct {
	ln    net.Listener
	token string
	// ackDelay holds each read's answers back this long; nackEvery > 0 refuses
	// every nackEvery-th report of a connection (non-retryable).
	ackDelay  time.Duration
	nackEvery int
	// goawayAfter > 0 tells a connection GOAWAY with the answers of the read that
	// brings its goawayAfter-th report (and keeps answering).
	goawayAfter int
	// Until slowUntil (Unix ns), each read's answers are held back slowDelay more.
	slowUntil atomic.Int64
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     []net.Conn
	seen      map[string]int // "client_id seq" → times received
	srcs      map[string]bool
}

func startAckServer(t *testing.T, token string) *ackServer {
	return startAckServerWith(t, token, 0, 0)
}

func startAckServerWith(t *testing.T, token string, ackDelay time.Duration, nackEvery int) *ackServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &ackServer{ln: ln, token: token, ackDelay: ackDelay, nackEvery: nackEvery, seen: map[string]int{}, srcs: map[string]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.srcs[nc.RemoteAddr().(*net.TCPAddr).IP.String()] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go s.serve(nc)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *ackServer) serve(nc net.Conn) {
	defer s.wg.Done()
	defer nc.Close()
	buf := make([]byte, 64<<10)
	n := 0
	id := ""
	reports := 0
	ranges := false // the client asked for ACK_RANGE
	var out []byte
	var seqs []uint64
	for {
		m, err := nc.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
		off := 0
		out, seqs = out[:0], seqs[:0]
		acking := false
		before := reports
		for {
			f, k, err := protocol.Decode(buf[off:n], 1<<20)
			if err != nil {
				return
			}
			if k == 0 {
				break
			}
			off += k
			switch f.Type {
			case protocol.TypeHello:
				var h protocol.Hello
				protocol.ParseJSON(f, &h)
				if s.token != "" && h.Token != s.token {
					nc.Write(protocol.AppendJSON(nil, protocol.TypeError, 0, &protocol.ErrorPayload{Code: protocol.CodeUnauthorized, Message: "unknown token"}))
					return
				}
				id = h.ClientID
				w := &protocol.Welcome{ServerID: "t", HeartbeatIntervalMS: 1000, MaxFrameSize: 1 << 20}
				if ranges = h.Ack == protocol.AckModeRange; ranges {
					w.Ack = protocol.AckModeRange
				}
				out = protocol.AppendJSON(out, protocol.TypeWelcome, 0, w)
			case protocol.TypeReport:
				acking = true
				reports++
				if string(f.Payload) == `"nack"` || (s.nackEvery > 0 && reports%s.nackEvery == 0) {
					out = protocol.AppendJSON(out, protocol.TypeNack, f.Seq, &protocol.Nack{Code: protocol.CodeBadPayload, Message: "no"})
					continue
				}
				s.mu.Lock()
				s.seen[id+" "+strconv.FormatUint(f.Seq, 10)]++
				s.mu.Unlock()
				if ranges {
					seqs = append(seqs, f.Seq)
				} else {
					out = protocol.AppendFrame(out, protocol.TypeAck, f.Seq, nil)
				}
			case protocol.TypePing:
				out = protocol.AppendFrame(out, protocol.TypePong, f.Seq, nil)
			}
		}
		if len(seqs) > 0 {
			out, _, _ = protocol.AppendAckRanges(out, -1, seqs)
		}
		if s.goawayAfter > 0 && reports >= s.goawayAfter && before < s.goawayAfter {
			out = protocol.AppendJSON(out, protocol.TypeGoaway, 0, &protocol.Goaway{Reason: "test", DeadlineMS: 1000})
		}
		n = copy(buf, buf[off:n])
		if acking && s.ackDelay > 0 {
			time.Sleep(s.ackDelay)
		}
		if acking && time.Now().UnixNano() < s.slowUntil.Load() {
			time.Sleep(slowDelay)
		}
		if len(out) > 0 {
			if _, err := nc.Write(out); err != nil {
				return
			}
		}
	}
}

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, strings.NewReader("from-stdin"), &o, &e)
	return code, o.String(), e.String()
}

// loadJSON runs hawkc load with args and -json, fails t unless it exits 0, and
// returns its summary and its stderr.
func loadJSON(t *testing.T, args ...string) (summary, string) {
	t.Helper()
	code, out, errOut := runCmd(append(append([]string{"load"}, args...), "-json")...)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	var sum summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	return sum, errOut
}

func TestSend(t *testing.T) {
	srv := startAckServer(t, "tok")
	code, out, errOut := runCmd("send", "-addr", srv.ln.Addr().String(), "-id", "a1", "-token", "tok", "hello")
	if code != 0 || !strings.HasPrefix(out, "acked seq=") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	seq := strings.TrimSpace(strings.TrimPrefix(out, "acked seq="))
	srv.mu.Lock()
	n := srv.seen["a1 "+seq]
	srv.mu.Unlock()
	if n != 1 {
		t.Fatalf("server saw report a1/%s %d times", seq, n)
	}
}

func TestSendRefused(t *testing.T) {
	srv := startAckServer(t, "tok")
	code, out, errOut := runCmd("send", "-addr", srv.ln.Addr().String(), "-id", "a1", "-token", "bad", "hello")
	if code != 1 || out != "" || !strings.Contains(errOut, "unauthorized") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and the server's unauthorized error", code, out, errOut)
	}
}

func TestSendNacked(t *testing.T) {
	srv := startAckServer(t, "")
	code, _, errOut := runCmd("send", "-addr", srv.ln.Addr().String(), "-id", "a1", `"nack"`)
	if code != 1 || !strings.Contains(errOut, "bad_payload") {
		t.Fatalf("exit %d, stderr %q; want 1 and the NACK", code, errOut)
	}
}

func TestSendUsage(t *testing.T) {
	if code, _, _ := runCmd("send", "hello"); code != 2 {
		t.Fatalf("send without -id: exit %d, want 2", code)
	}
	if code, _, _ := runCmd("bogus"); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
}

func TestLoad(t *testing.T) {
	srv := startAckServer(t, "")
	logPath := filepath.Join(t.TempDir(), "acked.log")
	sum, errOut := loadJSON(t, "-addr", srv.ln.Addr().String(), "-c", "40", "-w", "4", "-s", "64", "-d", "2s",
		"-acked-log", logPath, "-id-prefix", "lt")
	if sum.Acked == 0 || sum.Errors != 0 || sum.ConnectErrors != 0 || sum.Sent != sum.Acked || sum.Clients != 40 {
		t.Fatalf("summary %+v", sum)
	}
	if sum.LatencyP50US <= 0 || sum.LatencyP50US > sum.LatencyP90US || sum.LatencyP90US > sum.LatencyP99US || sum.LatencyP99US > sum.LatencyMaxUS {
		t.Fatalf("latencies %+v", sum)
	}
	t.Logf("summary: %+v\nstderr: %s", sum, errOut)
	if !strings.Contains(errOut, "acked/s=") {
		t.Fatalf("no progress line on stderr: %q", errOut)
	}
	// The acked log has exactly the acked reports, each once, each seen by the server.
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if lines[sc.Text()] {
			t.Fatalf("line %q twice", sc.Text())
		}
		lines[sc.Text()] = true
	}
	if uint64(len(lines)) != sum.Acked {
		t.Fatalf("%d lines in the acked log, %d acked", len(lines), sum.Acked)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for l := range lines {
		if srv.seen[l] != 1 {
			t.Fatalf("acked-log line %q: server saw it %d times", l, srv.seen[l])
		}
	}
	// -src-spread: the first 250 clients come from 127.0.0.2.
	if !srv.srcs["127.0.0.2"] || len(srv.srcs) != 1 {
		t.Fatalf("source addresses %v, want 127.0.0.2", srv.srcs)
	}
}

func TestSpreadDialer(t *testing.T) {
	srv := startAckServer(t, "")
	for _, tc := range []struct {
		i    int
		want string
	}{{0, "127.0.0.2"}, {249, "127.0.0.2"}, {250, "127.0.0.3"}, {999, "127.0.0.5"}, {250 * 199, "127.0.0.201"}, {250 * 200, "127.0.0.2"}} {
		nc, err := spreadDialer(tc.i)(context.Background(), srv.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		got := nc.LocalAddr().(*net.TCPAddr).IP.String()
		nc.Close()
		if got != tc.want {
			t.Errorf("client %d dials from %s, want %s", tc.i, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in, out string
		ok      bool
	}{{"127.0.0.1:7", "127.0.0.1:7", true}, {"localhost:7", "127.0.0.1:7", true}, {"127.9.9.9:7", "127.9.9.9:7", true},
		{"[::1]:7", "[::1]:7", false}, {"10.0.0.1:7", "10.0.0.1:7", false}, {"example.com:7", "example.com:7", false}} {
		if out, ok := loopback4(tc.in); out != tc.out || ok != tc.ok {
			t.Errorf("loopback4(%q) = %q, %v", tc.in, out, ok)
		}
	}
}

func TestLoadRate(t *testing.T) {
	srv := startAckServer(t, "")
	sum, _ := loadJSON(t, "-addr", srv.ln.Addr().String(), "-c", "10", "-w", "8", "-d", "1s", "-rate", "500", "-src-spread=false")
	if sum.Acked < 250 || sum.Acked > 560 {
		t.Fatalf("acked %d in 1s at -rate 500", sum.Acked)
	}
}

// -warmup: the run lasts the warm-up plus the window, and only the window's
// reports count in steady_acked_per_s.
func TestLoadWarmup(t *testing.T) {
	srv := startAckServer(t, "")
	sum, errOut := loadJSON(t, "-addr", srv.ln.Addr().String(), "-c", "10", "-w", "4", "-d", "600ms", "-warmup", "400ms", "-src-spread=false")
	if sum.SteadyS < 0.6 || sum.ElapsedS < 1.0 || sum.SteadyAcked == 0 || sum.SteadyAcked >= sum.Acked || sum.Errors != 0 {
		t.Fatalf("summary %+v", sum)
	}
	if want := float64(sum.SteadyAcked) / sum.SteadyS; sum.SteadyAckedPerS != want {
		t.Fatalf("steady_acked_per_s %v, want %v", sum.SteadyAckedPerS, want)
	}
	if !strings.Contains(errOut, "steady window begins") || !strings.Contains(errOut, "steady window ends") {
		t.Fatalf("stderr %q", errOut)
	}
}

// slowDelay: how long an ackServer holds its answers back before slowUntil.
const slowDelay = 250 * time.Millisecond

// -warmup: the summary's latencies are the steady window's, as its rate is; the
// timeline keeps every ACK and says where the window is. The server answers late
// only while the clients connect and warm up.
func TestLoadWarmupLatencies(t *testing.T) {
	srv := startAckServer(t, "")
	srv.slowUntil.Store(time.Now().Add(300 * time.Millisecond).UnixNano())
	path := filepath.Join(t.TempDir(), "tl")
	sum, _ := loadJSON(t, "-addr", srv.ln.Addr().String(), "-c", "10", "-w", "4", "-d", "500ms", "-warmup", "1s",
		"-src-spread=false", "-timeline", path, "-timeline-step", "50ms")
	if sum.SteadyAcked == 0 || sum.LatencyMaxUS >= slowDelay.Microseconds() {
		t.Fatalf("the window's latencies hold the warm-up's: max %d µs, %d acked in the window", sum.LatencyMaxUS, sum.SteadyAcked)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var from, to, slowBefore, maxIn int64
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[1] == "window_unix_ms" {
			from, _ = strconv.ParseInt(f[2], 10, 64)
			to, _ = strconv.ParseInt(f[3], 10, 64)
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		ms, _ := strconv.ParseInt(f[0], 10, 64)
		mx, _ := strconv.ParseInt(f[4], 10, 64)
		switch {
		case from == 0:
			t.Fatalf("bucket %q before the window line", line)
		case ms+50 <= from && mx >= slowDelay.Microseconds():
			slowBefore++
		case ms >= from && ms+50 <= to:
			maxIn = max(maxIn, mx)
		}
	}
	if to-from < 500 || slowBefore == 0 || maxIn >= slowDelay.Microseconds() {
		t.Fatalf("window %d-%d ms, %d slow buckets before it, max %d µs within it:\n%s", from, to, slowBefore, maxIn, data)
	}
}

func TestLoadConnectFailureExits1(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	code, out, _ := runCmd("load", "-addr", addr, "-c", "2", "-d", "300ms")
	if code != 1 || !strings.Contains(out, "connect_errors=2") {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
}

func TestHistogram(t *testing.T) {
	// Buckets are contiguous and cover the range.
	for i := 1; i < numBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, hi := bucketRange(i)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d = [%d,%d], previous ends at %d", i, lo, hi, prevHi)
		}
	}
	if b := bucketOf(histMaxUS); b >= numBuckets || bucketOf(histMaxUS*2) != b {
		t.Fatalf("60s falls in bucket %d of %d, or more is not clamped to it", b, numBuckets)
	}
	for _, v := range []int64{0, 1, 127, 128, 129, 1000, 12345, 999_999, 59_999_999} {
		lo, hi := bucketRange(bucketOf(v))
		if v < lo || v > hi {
			t.Fatalf("%d in bucket [%d,%d]", v, lo, hi)
		}
		if float64(hi-lo) > 0.016*float64(lo)+1 {
			t.Fatalf("bucket [%d,%d] wider than 1.6%%", lo, hi)
		}
	}
	// Quantiles within 2% of the exact ones.
	var h histogram
	vals := make([]int64, 100_000)
	for i := range vals {
		vals[i] = int64(rand.ExpFloat64()*2000) + 20 // µs
		h.record(time.Duration(vals[i]) * time.Microsecond)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.quantile(q)
		if d := float64(got-exact) / float64(exact); d < -0.02 || d > 0.02 {
			t.Fatalf("p%v = %d, exact %d", q*100, got, exact)
		}
	}
	if h.max.Load() != vals[len(vals)-1] || h.quantile(1) != vals[len(vals)-1] {
		t.Fatalf("max %d, want %d", h.max.Load(), vals[len(vals)-1])
	}
}

func TestLoadStopsOnSignal(t *testing.T) {
	srv := startAckServer(t, "")
	var out, errOut testutil.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"load", "-addr", srv.ln.Addr().String(), "-c", "20", "-w", "4", "-d", "1m", "-json", "-src-spread=false"}, nil, &out, &errOut)
	}()
	// Progress lines start after the signal handler is installed.
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(errOut.String(), "acked/s=") }, "no progress line: %s", &errOut)
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	select {
	case code := <-done:
		var sum summary
		if err := json.Unmarshal([]byte(out.String()), &sum); err != nil {
			t.Fatalf("stdout %q: %v", out.String(), err)
		}
		if code != 0 || sum.Acked == 0 || sum.Errors != 0 || sum.Sent != sum.Acked {
			t.Fatalf("exit %d, summary %+v; stderr %s", code, sum, errOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("load did not stop on SIGINT")
	}
}

// TestLoadDrainTimeout: reports still unacked when the drain times out count as
// errors, once each, and their late ACKs are ignored.
func TestLoadDrainTimeout(t *testing.T) {
	srv := startAckServerWith(t, "", 1500*time.Millisecond, 0)
	start := time.Now()
	code, out, errOut := runCmd("load", "-addr", srv.ln.Addr().String(), "-c", "4", "-w", "2", "-d", "300ms", "-drain-timeout", "200ms", "-json", "-src-spread=false")
	var sum summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("stdout %q: %v\nstderr %s", out, err, errOut)
	}
	// Each client's 2 first reports wait 1.5s for their ACK.
	if code != 1 || sum.Errors != 8 || sum.Acked != 0 || sum.ConnectErrors != 0 {
		t.Fatalf("exit %d, summary %+v; want exit 1, 8 errors, nothing acked\nstderr %s", code, sum, errOut)
	}
	if !strings.Contains(errOut, "giving up on them") {
		t.Fatalf("stderr %q", errOut)
	}
	if sum.ElapsedS > 3 {
		t.Fatalf("elapsed %.2fs: the drain did not stop at its timeout", sum.ElapsedS)
	}
	t.Logf("took %v", time.Since(start))
}

// TestLoadNacked: a non-retryable NACK is an error, and the client goes on.
func TestLoadNacked(t *testing.T) {
	srv := startAckServerWith(t, "", 0, 10)
	code, out, errOut := runCmd("load", "-addr", srv.ln.Addr().String(), "-c", "3", "-w", "4", "-d", "500ms", "-json", "-src-spread=false")
	var sum summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("stdout %q: %v\nstderr %s", out, err, errOut)
	}
	if code != 1 || sum.Acked < 100 || sum.Errors == 0 || sum.Nacked != sum.Errors || sum.Sent != sum.Acked+sum.Errors {
		t.Fatalf("exit %d, summary %+v; want exit 1, a NACK every 10 reports, and the clients going on\nstderr %s", code, sum, errOut)
	}
	if !strings.Contains(errOut, "bad_payload") {
		t.Fatalf("stderr %q", errOut)
	}
}

func TestSendFile(t *testing.T) {
	srv := uploadtest.Start(t, t.TempDir(), "127.0.0.1:0", 64<<10)
	path := filepath.Join(t.TempDir(), "x.log")
	data := bytes.Repeat([]byte("line of a log\n"), 20000)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second run finds it published
		code, out, errOut := runCmd("send-file", "-addr", srv.Addr, "-id", "a1", path)
		if code != 0 || !strings.Contains(out, "progress ") || !strings.Contains(out, "published upload_id=f-") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	recs := srv.Records()
	if len(recs) != 1 || recs[0].Name != "x.log" || recs[0].Size != int64(len(data)) {
		t.Fatalf("records %+v", recs)
	}
	// The sha256 given: checked by the server, in either case of hex digits.
	sum := sha256.Sum256(data)
	code, out, errOut := runCmd("send-file", "-addr", srv.Addr, "-id", "a1", "-upload-id", "k1", "-sha256", strings.ToUpper(hex.EncodeToString(sum[:])), path)
	if code != 0 || !strings.Contains(out, "published upload_id=k1") {
		t.Fatalf("a right sha256: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runCmd("send-file", "-addr", srv.Addr, "-id", "a1", "-upload-id", "k2", "-sha256", strings.Repeat("0", 64), path)
	if code != 1 || !strings.Contains(errOut, "upload_mismatch") {
		t.Fatalf("a wrong sha256: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if recs := srv.Records(); len(recs) != 2 || recs[1].UploadID != "k1" || recs[1].SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("records %+v", recs)
	}
}

// -timeline: every ACK of the run is in exactly one bucket, each bucket's
// histogram holds its ACKs, and the buckets follow each other by the step.
func TestLoadTimeline(t *testing.T) {
	srv := startAckServer(t, "")
	path := filepath.Join(t.TempDir(), "tl")
	sum, _ := loadJSON(t, "-addr", srv.ln.Addr().String(), "-c", "10", "-w", "4", "-d", "500ms", "-rate", "2000",
		"-src-spread=false", "-timeline", path, "-timeline-step", "50ms")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var acked uint64
	var prev int64
	rows := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 6 {
			t.Fatalf("line %q: %d fields", line, len(f))
		}
		ms, _ := strconv.ParseInt(f[0], 10, 64)
		n, _ := strconv.ParseUint(f[1], 10, 64)
		if rows > 0 && ms-prev != 50 {
			t.Fatalf("bucket at %d after %d: not 50 ms on", ms, prev)
		}
		prev = ms
		rows++
		var inHist uint64
		if f[5] != "-" {
			for _, kv := range strings.Split(f[5], ",") {
				_, c, _ := strings.Cut(kv, ":")
				v, _ := strconv.ParseUint(c, 10, 64)
				inHist += v
			}
		}
		if inHist != n {
			t.Fatalf("line %q: histogram holds %d, acked %d", line, inHist, n)
		}
		acked += n
	}
	if acked != sum.Acked || sum.Acked == 0 || rows < 10 {
		t.Fatalf("timeline holds %d ACKs in %d buckets, the run acked %d", acked, rows, sum.Acked)
	}
}

// A slot measures one report in every, at staggered places: over k*every reports
// each slot measures exactly k, every-th apart.
func TestSlotMeasuresOneInEvery(t *testing.T) {
	for _, every := range []int{1, 3, 8} {
		for j := range 2 * every {
			s := slot{skip: j % every}
			var n, last int
			for i := range 10 * every {
				if !s.measureNext(every) {
					continue
				}
				if n > 0 && i-last != every {
					t.Fatalf("every %d, slot %d: reports %d and %d measured, %d apart", every, j, last, i, i-last)
				}
				if n == 0 && i != j%every {
					t.Fatalf("every %d, slot %d: first measured report %d, want %d", every, j, i, j%every)
				}
				n, last = n+1, i
			}
			if n != 10 {
				t.Fatalf("every %d, slot %d: %d of %d reports measured, want 10", every, j, n, 10*every)
			}
		}
	}
}

// -cpuprofile writes a CPU profile (gzipped protobuf) of the run.
func TestLoadCPUProfile(t *testing.T) {
	srv := startAckServer(t, "")
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	sum, _ := loadJSON(t, "-addr", srv.ln.Addr().String(), "-c", "4", "-w", "4", "-d", "300ms",
		"-src-spread=false", "-cpuprofile", path, "-latency-every", "2")
	if sum.Acked == 0 || sum.LatencyP50US <= 0 {
		t.Fatalf("summary %+v", sum)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("%s is not a gzipped profile: %d bytes", path, len(b))
	}
}
