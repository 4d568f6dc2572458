package legacy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/spool"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/upload"
)

// counts is an Observer for tests.
type counts struct {
	accepted, refused, receipts, stored, notStored atomic.Int64
	mu                                             sync.Mutex
	dropped                                        map[string]int
	closed                                         map[CloseReason]int
	frames                                         map[string]int
}

func newCounts() *counts {
	return &counts{dropped: map[string]int{}, closed: map[CloseReason]int{}, frames: map[string]int{}}
}

func (o *counts) Accepted()       { o.accepted.Add(1) }
func (o *counts) Refused(string)  { o.refused.Add(1) }
func (o *counts) Receipts(n int)  { o.receipts.Add(int64(n)) }
func (o *counts) Stored(n int)    { o.stored.Add(int64(n)) }
func (o *counts) NotStored(n int) { o.notStored.Add(int64(n)) }
func (o *counts) BytesIn(int)     {}
func (o *counts) BytesOut(int)    {}
func (o *counts) Closed(r CloseReason) {
	o.mu.Lock()
	o.closed[r]++
	o.mu.Unlock()
}
func (o *counts) Frames(k string, n int) {
	o.mu.Lock()
	o.frames[k] += n
	o.mu.Unlock()
}
func (o *counts) Dropped(r string, n int) {
	o.mu.Lock()
	o.dropped[r] += n
	o.mu.Unlock()
}
func (o *counts) get(f func() int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return f()
}

// record is a spool line as a consumer reads it.
type record struct {
	ClientID string          `json:"client_id"`
	Seq      uint64          `json:"seq"`
	ConnID   uint64          `json:"conn_id"`
	Listener string          `json:"listener"`
	Format   string          `json:"format"`
	Payload  json.RawMessage `json:"payload"`
	B64      *string         `json:"payload_b64"`
}

// readSpool returns every whole line in the spool directory.
func readSpool(t testing.TB, dir string) []record {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.Lines(b) {
			if line[len(line)-1] != '\n' {
				continue // a line being written
			}
			var r record
			if err := json.Unmarshal(line, &r); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			out = append(out, r)
		}
	}
	return out
}

// countSpoolLines counts the whole lines in the spool directory (cheaper than
// readSpool, for a check per receipt).
func countSpoolLines(t testing.TB, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n += bytes.Count(b, []byte{'\n'})
	}
	return n
}

type harness struct {
	t     *testing.T
	l     *Listener
	obs   *counts
	addr  string
	spool string
	dest  ingest.Destination
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func newHarness(t *testing.T, f Format, s *Settings, wrap func(ingest.Destination) ingest.Destination) *harness {
	t.Helper()
	dir := t.TempDir()
	sp, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var dest ingest.Destination = sp
	if wrap != nil {
		dest = wrap(sp)
	}
	if s == nil {
		s = &Settings{Allow: loopback, IdleTimeout: time.Minute, MaxFrameSize: f.MaxDataSize()}
	}
	h := &harness{t: t, obs: newCounts(), spool: dir, dest: dest}
	o := Options{Name: "test-" + string(f), Format: f, Settings: s, Destination: dest, Observer: h.obs}
	if f == FormatFile {
		a := &upload.Announcer{Dest: dest}
		if o.Uploads, err = upload.Open(upload.Options{Dir: filepath.Join(dir, "uploads"), Announce: a.Announce}); err != nil {
			t.Fatal(err)
		}
	}
	h.l, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- h.l.Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		h.l.Drain(context.Background(), 0)
		h.l.Close()
		if err := sp.Close(); err != nil {
			t.Errorf("spool close: %v", err)
		}
	})
	return h
}

func (h *harness) dial() net.Conn {
	h.t.Helper()
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { nc.Close() })
	return nc
}

// The metrics agent as it runs in the field: one connection, a heartbeat goroutine every 2 s, 300 report
// goroutines each sending a report every second over it, and a reader of receipt
// lines. 1,000 reports: each gets one receipt, and when the agent reads its k-th
// receipt, at least k of its reports are lines in the spool already.
func TestFFFFAgent(t *testing.T) {
	h := newHarness(t, FormatFFFF, nil, nil)
	nc := h.dial()
	const total, senders = 1000, 300
	var sent, heartbeats atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	wg.Go(func() { // heartbeat goroutine
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			heartbeats.Add(1)
			if _, err := nc.Write(AppendFFFFPacket(nil, FFFFHeartbeat, []byte(heartbeatContent))); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	for g := range senders {
		wg.Go(func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				n := sent.Add(1)
				if n > total {
					return
				}
				content := fmt.Appendf(nil, `{"content":"g%d-%d","rand":%d,"timestamp":1700000000}`, g, n, n)
				if _, err := nc.Write(AppendFFFFPacket(nil, FFFFReport, content)); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		})
	}

	nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	rd := bufio.NewReader(nc)
	receipts, beats := 0, 0
	for receipts < total {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d receipts: %v", receipts, err)
		}
		switch line {
		case FFFFReportReply:
			receipts++
			if n := countSpoolLines(t, h.spool); n < receipts {
				t.Fatalf("receipt %d arrived with %d lines in the spool", receipts, n)
			}
		case FFFFHeartbeatReply:
			beats++
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
	recs := readSpool(t, h.spool)
	if len(recs) != total {
		t.Fatalf("%d records in the spool, want %d", len(recs), total)
	}
	seen := map[string]bool{}
	seqs := map[uint64]bool{}
	for _, r := range recs {
		if r.Listener != "test-ffff" || r.Format != "ffff" || r.ClientID != "ffff:"+nc.LocalAddr().String() || r.Payload == nil {
			t.Fatalf("record %+v", r)
		}
		var p struct{ Content string }
		if err := json.Unmarshal(r.Payload, &p); err != nil || seen[p.Content] || seqs[r.Seq] {
			t.Fatalf("record %+v: duplicate or unreadable", r)
		}
		seen[p.Content], seqs[r.Seq] = true, true
	}
	// No receipt more than reports: nothing else arrives but heartbeat lines.
	if got := h.obs.receipts.Load(); got != total {
		t.Errorf("%d receipts counted, want %d", got, total)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return h.obs.get(func() int { return h.obs.frames[FrameHeartbeat] }) >= 1
	}, "the heartbeat counted")
}

// Corrupt frames in the middle of a stream are skipped and counted; the connection
// stays and every good report is stored and receipted.
func TestFFFFCorruptFramesMidStream(t *testing.T) {
	h := newHarness(t, FormatFFFF, &Settings{Allow: loopback, IdleTimeout: time.Minute, MaxFrameSize: 4096}, nil)
	nc := h.dial()
	var stream []byte
	good := 0
	for i := range 30 {
		f := AppendFFFFPacket(nil, FFFFReport, report(i))
		switch i % 5 {
		case 1:
			f[len(f)-3] ^= 0xff // CRC
		case 3:
			f[len(f)-1] = 0 // trailer
		default:
			good++
		}
		stream = append(stream, f...)
	}
	stream = append(stream, 0xff, 0xff, 0x7f, 0x00) // a header past max_frame_size, then more good frames
	for i := range 5 {
		stream = AppendFFFFPacket(stream, FFFFReport, report(100+i))
		good++
	}
	for i := 0; i < len(stream); i += 97 { // split anywhere
		if _, err := nc.Write(stream[i:min(i+97, len(stream))]); err != nil {
			t.Fatal(err)
		}
	}
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	rd := bufio.NewReader(nc)
	for i := range good {
		line, err := rd.ReadString('\n')
		if err != nil || line != FFFFReportReply {
			t.Fatalf("receipt %d: %q %v", i, line, err)
		}
	}
	if n := len(readSpool(t, h.spool)); n != good {
		t.Errorf("%d records, want %d", n, good)
	}
	drops := h.obs.get(func() int {
		return h.obs.dropped[DropCRC]*100 + h.obs.dropped[DropTrailer]*10 + h.obs.dropped[DropTooLarge]
	})
	if drops != 6*100+6*10+1 {
		t.Errorf("drops %v, want 6 crc, 6 trailer, 1 too_large", h.obs.dropped)
	}
	// Still the same connection: one more report, one more receipt.
	if _, err := nc.Write(AppendFFFFPacket(nil, FFFFReport, report(999))); err != nil {
		t.Fatal(err)
	}
	if line, err := rd.ReadString('\n'); err != nil || line != FFFFReportReply {
		t.Fatalf("after the corruption: %q %v", line, err)
	}
	if h.obs.accepted.Load() != 1 {
		t.Errorf("%d connections accepted, want 1", h.obs.accepted.Load())
	}
}

// A frame of nearly 64 KiB arriving in pieces is stored: the buffer grows with it.
func TestFFFFLargeFrameInPieces(t *testing.T) {
	h := newHarness(t, FormatFFFF, nil, nil)
	nc := h.dial()
	content := fmt.Appendf(nil, `{"content":"%s","rand":1,"timestamp":1700000000}`, strings.Repeat("x", 45000))
	f := AppendFFFFPacket(nil, FFFFReport, content)
	if len(f) > 0xffff+8 || len(f) < 60000 {
		t.Fatalf("frame of %d bytes", len(f))
	}
	for i := 0; i < len(f); i += 1000 {
		if _, err := nc.Write(f[i:min(i+1000, len(f))]); err != nil {
			t.Fatal(err)
		}
	}
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if line, err := bufio.NewReader(nc).ReadString('\n'); err != nil || line != FFFFReportReply {
		t.Fatalf("%q %v", line, err)
	}
	if recs := readSpool(t, h.spool); len(recs) != 1 || !bytes.Equal(recs[0].Payload, content) {
		t.Fatalf("%d records", len(recs))
	}
}

// failing is a destination whose every commit fails.
type failing struct{}

func (failing) Submit(b *ingest.Batch, w ingest.Waiter) {
	w.Committed(b.Seqs(), errors.New("disk full"))
}

// A report that is not stored gets no ffff receipt: the heartbeat after it is
// answered, the report is counted as not stored.
func TestFFFFNotStoredGetsNoReceipt(t *testing.T) {
	h := newHarness(t, FormatFFFF, nil, func(ingest.Destination) ingest.Destination { return failing{} })
	nc := h.dial()
	var stream []byte
	stream = AppendFFFFPacket(stream, FFFFReport, report(1))
	stream = AppendFFFFPacket(stream, FFFFHeartbeat, []byte(heartbeatContent))
	if _, err := nc.Write(stream); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(nc).ReadString('\n'); err != nil || line != FFFFHeartbeatReply {
		t.Fatalf("%q %v, want only the heartbeat's line", line, err)
	}
	if h.obs.notStored.Load() != 1 || h.obs.receipts.Load() != 0 {
		t.Errorf("not stored %d, receipts %d", h.obs.notStored.Load(), h.obs.receipts.Load())
	}
}

// c8c9: a frame in, a result frame out, after the record is in the spool.
func TestC8C9RoundTripOverTCP(t *testing.T) {
	h := newHarness(t, FormatC8C9, nil, nil)
	nc := h.dial()
	req := []byte(`{"data_type":"metric","call_back_key":"cb-7","value":42}`)
	if _, err := nc.Write(AppendC8C9(nil, 0x10, req)); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf []byte
	var d decoded
	for d.N == 0 {
		chunk := make([]byte, 512)
		n, err := nc.Read(chunk)
		if err != nil {
			t.Fatal(err)
		}
		buf = append(buf, chunk[:n]...)
		d, _ = c8c9Codec{}.decode(buf, 1<<20, nil)
	}
	if d.Drop != "" || d.Frame.Type != 0x10 {
		t.Fatalf("reply %+v", d)
	}
	var res C8C9Result
	if err := json.Unmarshal(d.Frame.Payload, &res); err != nil {
		t.Fatal(err)
	}
	recs := readSpool(t, h.spool)
	if len(recs) != 1 || !bytes.Equal(recs[0].Payload, req) || recs[0].Format != "c8c9" {
		t.Fatalf("spool %+v", recs)
	}
	if res.Status != C8C9Stored || string(res.CallBackKey) != `"cb-7"` || string(res.DataType) != `"metric"` ||
		string(res.Data) != fmt.Sprintf(`{"seq":%d}`, recs[0].Seq) {
		t.Errorf("result %s, record seq %d", d.Frame.Payload, recs[0].Seq)
	}
}

// headers: 100 messages in one write land as 100 records.
func TestHeadersHundredRecords(t *testing.T) {
	h := newHarness(t, FormatHeaders, nil, nil)
	nc := h.dial()
	var stream []byte
	for i := range 100 {
		stream = AppendHeaders(stream, report(i))
	}
	if _, err := nc.Write(stream); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return h.obs.stored.Load() == 100 }, "100 stored")
	recs := readSpool(t, h.spool)
	if len(recs) != 100 {
		t.Fatalf("%d records", len(recs))
	}
	for i, r := range recs {
		if !bytes.Equal(r.Payload, report(i)) || r.Format != "headers" || (i > 0 && r.Seq != recs[i-1].Seq+1) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
}

// A peer outside allow is closed at accept and counted; a reload that removes a
// connected peer's network closes it.
func TestAllowList(t *testing.T) {
	h := newHarness(t, FormatFFFF, &Settings{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, IdleTimeout: time.Minute, MaxFrameSize: 1024}, nil)
	nc := h.dial()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Fatal("a refused connection read data")
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return h.obs.refused.Load() == 1 }, "the refusal counted")
	if h.obs.accepted.Load() != 0 {
		t.Errorf("refused %d, accepted %d", h.obs.refused.Load(), h.obs.accepted.Load())
	}

	h.l.Apply(&Settings{Allow: loopback, IdleTimeout: time.Minute, MaxFrameSize: 1024})
	nc = h.dial()
	if _, err := nc.Write(AppendFFFFPacket(nil, FFFFHeartbeat, nil)); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(nc)
	if line, err := rd.ReadString('\n'); err != nil || line != FFFFHeartbeatReply {
		t.Fatalf("%q %v", line, err)
	}
	if n := h.l.Apply(&Settings{Allow: []netip.Prefix{netip.MustParsePrefix("::1/128")}, IdleTimeout: time.Minute, MaxFrameSize: 1024}); n != 1 {
		t.Errorf("Apply closed %d connections, want 1", n)
	}
	if _, err := rd.ReadString('\n'); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("after the allow list dropped the peer: %v", err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return h.obs.get(func() int { return h.obs.closed[ReasonNotAllowed] }) == 1
	}, "close counted as not_allowed")
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "reset") }

// The reaper closes a connection silent past idle_timeout (ffff: no heartbeat).
func TestIdleTimeout(t *testing.T) {
	h := newHarness(t, FormatFFFF, &Settings{Allow: loopback, IdleTimeout: 50 * time.Millisecond, MaxFrameSize: 1024}, nil)
	nc := h.dial()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("an idle connection: %v", err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return h.obs.get(func() int { return h.obs.closed[ReasonIdleTimeout] }) == 1
	}, "close counted as idle_timeout")
}

// Drain serves connections until they leave, and cuts the rest at the timeout.
func TestDrainCutsAtTimeout(t *testing.T) {
	h := newHarness(t, FormatFFFF, nil, nil)
	nc := h.dial()
	testutil.Eventually(t, 5*time.Second, func() bool { return h.l.Count() == 1 }, "connection registered")
	infos := h.l.Connections(0, 10)
	if len(infos) != 1 || infos[0].Format != "ffff" || infos[0].Listener != "test-ffff" || infos[0].ClientID != "ffff:"+nc.LocalAddr().String() {
		t.Fatalf("Connections: %+v", infos)
	}
	res := h.l.Drain(context.Background(), 20*time.Millisecond)
	if res.Cut != 1 || h.l.Count() != 0 {
		t.Errorf("drain %+v, %d left", res, h.l.Count())
	}
}

// reversing commits its batches in pairs, the second first, as a destination that
// completes out of order (a broker) might.
type reversing struct {
	mu      sync.Mutex
	held    []func()
	submits chan struct{}
}

func (d *reversing) Submit(b *ingest.Batch, w ingest.Waiter) {
	seqs := slices.Clone(b.Seqs())
	d.mu.Lock()
	d.held = append(d.held, func() { w.Committed(seqs, nil) })
	var run []func()
	if len(d.held) == 2 {
		run = []func(){d.held[1], d.held[0]}
		d.held = nil
	}
	d.mu.Unlock()
	for _, f := range run {
		f()
	}
	d.submits <- struct{}{}
}

// Replies leave in the order of the frames even when the destination commits the
// later read first: the seqs in the c8c9 results come back in order.
func TestRepliesInFrameOrderWhateverTheCommitOrder(t *testing.T) {
	d := &reversing{submits: make(chan struct{}, 2)}
	h := newHarness(t, FormatC8C9, nil, func(ingest.Destination) ingest.Destination { return d })
	nc := h.dial()
	for i := range 2 {
		if _, err := nc.Write(AppendC8C9(nil, int16(0x10+i), []byte(`{}`))); err != nil {
			t.Fatal(err)
		}
		select { // one read, one batch: the second frame goes in a read of its own
		case <-d.submits:
		case <-time.After(10 * time.Second):
			t.Fatal("no submit")
		}
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf []byte
	var types []int16
	var seqs []uint64
	for len(types) < 2 {
		chunk := make([]byte, 512)
		n, err := nc.Read(chunk)
		if err != nil {
			t.Fatal(err)
		}
		buf = append(buf, chunk[:n]...)
		for {
			dd, _ := c8c9Codec{}.decode(buf, 1<<20, nil)
			if dd.N == 0 {
				break
			}
			var res struct{ Data struct{ Seq uint64 } }
			if err := json.Unmarshal(dd.Frame.Payload, &res); err != nil {
				t.Fatal(err)
			}
			types, seqs = append(types, dd.Frame.Type), append(seqs, res.Data.Seq)
			buf = buf[dd.N:]
		}
	}
	if types[0] != 0x10 || types[1] != 0x11 || seqs[0]+1 != seqs[1] {
		t.Errorf("replies of types %#x with seqs %v, want 0x10 then 0x11, consecutive seqs", types, seqs)
	}
}
