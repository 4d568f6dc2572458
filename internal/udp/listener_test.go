package udp

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// dest is an ingest.Destination that keeps the lines it is given and commits
// each batch from its own goroutine; hold blocks Submit until released.
type dest struct {
	mu    sync.Mutex
	lines [][]byte
	hold  chan struct{} // nil: Submit does not block
	fail  bool
}

func (d *dest) Submit(b *ingest.Batch, w ingest.Waiter) {
	if d.hold != nil {
		<-d.hold
	}
	seqs := append([]uint64(nil), b.Seqs()...)
	d.mu.Lock()
	for _, l := range bytes.SplitAfter(b.Lines(), []byte("\n")) {
		if len(l) > 0 {
			d.lines = append(d.lines, append([]byte(nil), l...))
		}
	}
	d.mu.Unlock()
	var err error
	if d.fail {
		err = ingest.ErrClosed
	}
	go w.Committed(seqs, err)
}

func (d *dest) records(t *testing.T) []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]map[string]any, len(d.lines))
	for i, l := range d.lines {
		dec := json.NewDecoder(bytes.NewReader(l))
		dec.UseNumber()
		if err := dec.Decode(&out[i]); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
	}
	return out
}

// counts is an Observer.
type counts struct {
	mu                              sync.Mutex
	read, unparsed, stored, replied int
	refused                         map[string]int
}

func (c *counts) Read(int)             { c.mu.Lock(); c.read++; c.mu.Unlock() }
func (c *counts) Unparsed()            { c.mu.Lock(); c.unparsed++; c.mu.Unlock() }
func (c *counts) Stored(n int)         { c.mu.Lock(); c.stored += n; c.mu.Unlock() }
func (c *counts) Replied()             { c.mu.Lock(); c.replied++; c.mu.Unlock() }
func (c *counts) Refused(r string)     { c.mu.Lock(); c.refused[r]++; c.mu.Unlock() }
func (c *counts) get(f func() int) int { c.mu.Lock(); defer c.mu.Unlock(); return f() }

type rig struct {
	l    *Listener
	conn *net.UDPConn
	d    *dest
	c    *counts
}

func newRig(t *testing.T, format string, st Settings, d *dest, with ...func(*Options)) *rig {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c := &counts{refused: map[string]int{}}
	o := Options{Name: "u", Format: format, Conn: conn, MaxDatagram: 64, Settings: &st, Destination: d, Observer: c, Logger: zap.NewNop()}
	for _, f := range with {
		f(&o)
	}
	l := New(o)
	l.Start()
	t.Cleanup(func() { l.Stop(); conn.Close() })
	return &rig{l: l, conn: conn, d: d, c: c}
}

func (r *rig) sender(t *testing.T) *net.UDPConn {
	t.Helper()
	s, err := net.DialUDP("udp", nil, r.conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func TestLinesStoredWithListenerFormatAndSource(t *testing.T) {
	r := newRig(t, FormatLines, Settings{Allow: loopback, MaxPending: 100}, &dest{})
	s := r.sender(t)
	s.Write([]byte(`{"n":1}` + "\n"))
	s.Write([]byte("plain"))
	testutil.Eventually(t, 5*time.Second, func() bool { return r.c.get(func() int { return r.c.stored }) == 2 }, "2 stored")
	recs := r.d.records(t)
	src := s.LocalAddr().(*net.UDPAddr)
	want := "lines:127.0.0.1:" + strconv.Itoa(src.Port)
	for _, rec := range recs {
		if rec["client_id"] != want || rec["listener"] != "u" || rec["format"] != "lines" {
			t.Errorf("record %v: want client_id %s, listener u, format lines", rec, want)
		}
	}
	if p, _ := recs[0]["payload"].(map[string]any); p["n"] != json.Number("1") {
		t.Errorf("first payload %v", recs[0])
	}
	if recs[1]["payload_b64"] != "cGxhaW4=" {
		t.Errorf("second payload %v", recs[1])
	}
	if a, b := seqOf(t, recs[0]), seqOf(t, recs[1]); b != a+1 {
		t.Errorf("seqs not increasing: %v", recs)
	}
}

func seqOf(t *testing.T, rec map[string]any) uint64 {
	n, err := strconv.ParseUint(string(rec["seq"].(json.Number)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRefusedByReason(t *testing.T) {
	r := newRig(t, FormatLines, Settings{Allow: loopback, MaxPending: 100}, &dest{})
	s := r.sender(t)
	s.Write(nil)
	s.Write([]byte("\n"))
	s.Write(bytes.Repeat([]byte("x"), 65))
	s.Write(bytes.Repeat([]byte("x"), 64)) // the largest stored
	testutil.Eventually(t, 5*time.Second, func() bool { return r.c.get(func() int { return r.c.read }) == 4 }, "4 read")
	testutil.Eventually(t, 5*time.Second, func() bool { return r.c.get(func() int { return r.c.stored }) == 1 }, "1 stored")
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if r.c.refused[RefusedEmpty] != 2 || r.c.refused[RefusedOversize] != 1 {
		t.Errorf("refused %v", r.c.refused)
	}
}

func TestNotAllowedNeitherStoredNorAnswered(t *testing.T) {
	r := newRig(t, FormatLines, Settings{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Reply: true, MaxPending: 100}, &dest{})
	s := r.sender(t)
	s.Write([]byte("x"))
	testutil.Eventually(t, 5*time.Second, func() bool { return r.c.get(func() int { return r.c.refused[RefusedNotAllowed] }) == 1 }, "refused")
	if n := r.c.get(func() int { return r.c.stored + r.c.replied }); n != 0 {
		t.Errorf("stored or replied %d", n)
	}
	// A reload that allows the source applies from the next datagram.
	r.l.Apply(&Settings{Allow: loopback, Reply: true, MaxPending: 100})
	s.Write([]byte("y"))
	testutil.Eventually(t, 5*time.Second, func() bool { return r.c.get(func() int { return r.c.replied }) == 1 }, "replied after reload")
}

func TestReplyNeverLargerThanTheDatagram(t *testing.T) {
	r := newRig(t, FormatLines, Settings{Allow: loopback, Reply: true, MaxPending: 100}, &dest{})
	s := r.sender(t)
	buf := make([]byte, 100)
	for _, d := range []string{"a", "abcd", "a longer datagram than its receipt"} {
		s.Write([]byte(d))
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := s.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n > len(d) || !bytes.HasPrefix([]byte("ok "), buf[:min(n, 3)]) {
			t.Errorf("reply %q to %q", buf[:n], d)
		}
	}
	if got := Receipt(nil, 123, 100); string(got) != "ok 123" {
		t.Errorf("receipt %q", got)
	}
}

func TestPendingBoundDropsWhileTheDestinationIsSlow(t *testing.T) {
	d := &dest{hold: make(chan struct{})}
	r := newRig(t, FormatLines, Settings{Allow: loopback, MaxPending: 3}, d)
	s := r.sender(t)
	const sent = 10
	for range sent {
		s.Write([]byte("x"))
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return r.c.get(func() int { return r.c.read }) == sent }, "all read while Submit blocks")
	full := r.c.get(func() int { return r.c.refused[RefusedPendingFull] })
	if full != sent-3 {
		t.Errorf("pending_full %d, want %d", full, sent-3)
	}
	close(d.hold)
	testutil.Eventually(t, 5*time.Second, func() bool { return r.c.get(func() int { return r.c.stored }) == 3 }, "3 stored once released")
}

func TestStopStoresWhatWasReadAndLeavesTheRestQueued(t *testing.T) {
	d := &dest{}
	r := newRig(t, FormatLines, Settings{Allow: loopback, MaxPending: 1 << 20}, d)
	s := r.sender(t)
	var stop atomic.Bool
	sent := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() && sent < 20000 {
			s.Write([]byte{'x'})
			sent++
		}
	}()
	testutil.Eventually(t, 5*time.Second, func() bool { return r.c.get(func() int { return r.c.read }) > 100 }, "reading")
	r.l.Stop()
	stop.Store(true)
	<-done
	stored := r.c.get(func() int { return r.c.stored })
	if read := r.c.get(func() int { return r.c.read }); stored != read {
		t.Fatalf("stopped with %d read and %d stored", read, stored)
	}
	// What the stopped listener did not read is still in the socket for whoever reads it next.
	rest := 0
	buf := make([]byte, 10)
	for {
		r.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := r.conn.Read(buf); err != nil {
			break
		}
		rest++
	}
	ino, err := Inode(r.conn)
	if err != nil {
		t.Fatal(err)
	}
	drops, err := KernelDrops(ino)
	if err != nil {
		t.Fatal(err)
	}
	if stored+rest+int(drops) != sent {
		t.Errorf("stored %d + left in the socket %d + kernel drops %d != sent %d", stored, rest, drops, sent)
	}
}

func TestKernelDropsOfThisSocket(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := SetReceiveBuffer(conn, 1); err != nil {
		t.Fatal(err)
	}
	ino, err := Inode(conn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := net.DialUDP("udp", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 200 { // nobody reads: the smallest buffer overflows
		s.Write(make([]byte, 1000))
	}
	testutil.Eventually(t, 5*time.Second, func() bool { n, err := KernelDrops(ino); return err == nil && n > 0 }, "drops counted")
}
