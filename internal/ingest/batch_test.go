package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// line is a record line decoded.
type line struct {
	ClientID   string          `json:"client_id"`
	Seq        uint64          `json:"seq"`
	ConnID     uint64          `json:"conn_id"`
	Received   time.Time       `json:"received"`
	Payload    json.RawMessage `json:"payload"`
	PayloadB64 *string         `json:"payload_b64"`
}

func TestBatchLinesCarryTheirSeqs(t *testing.T) {
	var b Batch
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 1, time.UTC)
	t1 := t0.Add(time.Millisecond)
	// Two reads' worth of receive times, one going back to the first: the cached
	// stamp must follow every change.
	recv := []time.Time{t0, t0, t1, t1, t0}
	for i, at := range recv {
		b.Add(&Record{ClientID: "c", Seq: uint64(100 + i), ConnID: 9, Received: at, Payload: fmt.Appendf(nil, `{"i":%d}`, i)})
	}
	if b.Len() != len(recv) || len(b.Seqs()) != len(recv) {
		t.Fatalf("Len %d, %d seqs; want %d", b.Len(), len(b.Seqs()), len(recv))
	}
	i := 0
	for l := range bytes.Lines(b.Lines()) {
		got := decodeLine(t, l)
		if got.Seq != b.Seqs()[i] || got.Seq != uint64(100+i) || !got.Received.Equal(recv[i]) {
			t.Errorf("line %d: %+v; want seq %d received %v", i, got, b.Seqs()[i], recv[i])
		}
		if want := appendLine(nil, &Record{ClientID: "c", Seq: uint64(100 + i), ConnID: 9, Received: recv[i], Payload: fmt.Appendf(nil, `{"i":%d}`, i)}); !bytes.Equal(l, want) {
			t.Errorf("line %d: %s; appendLine gives %s", i, l, want)
		}
		i++
	}
	if i != len(recv) {
		t.Fatalf("%d lines, want %d", i, len(recv))
	}
	b.Reset()
	if b.Len() != 0 || len(b.Lines()) != 0 {
		t.Fatalf("after Reset: Len %d, %d bytes", b.Len(), len(b.Lines()))
	}
}

// TestBatchReusesOnlyWhatIsTheSame adds reports that change one part of the line
// at a time (the client id, the seq across a carry and out of order, the
// connection, the legacy keys, the source, the receive time): each line must be
// what appendLine makes of its report alone, whatever the batch kept from the
// report before, across Reset too.
func TestBatchReusesOnlyWhatIsTheSame(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 1, time.UTC)
	src := netip.MustParseAddrPort("10.1.2.3:514")
	base := Record{ClientID: "a1", Seq: 8, ConnID: 5, Received: t0, Payload: []byte(`{"x":1}`)}
	recs := []Record{base}
	add := func(change func(r *Record)) {
		r := recs[len(recs)-1]
		change(&r)
		recs = append(recs, r)
	}
	for range 3 { // 9, 10, 11
		add(func(r *Record) { r.Seq++ })
	}
	add(func(r *Record) { r.Seq = 99 })
	add(func(r *Record) { r.Seq = 100 })
	add(func(r *Record) { r.Seq = 7 })
	add(func(r *Record) { r.Seq = 8 })
	add(func(r *Record) { r.Seq = math.MaxUint64 })
	add(func(r *Record) { r.Seq = 0 })
	add(func(r *Record) { r.Seq = 1 })
	add(func(r *Record) { r.Seq = 2; r.ClientID = "a2" })
	add(func(r *Record) { r.Seq = 3; r.ClientID = "a\"2" })
	add(func(r *Record) { r.Seq = 4; r.ConnID = 6 })
	add(func(r *Record) { r.Seq = 5; r.Listener, r.Format = "metrics", "ffff" })
	add(func(r *Record) { r.Seq = 6; r.Format = "c8c9" })
	add(func(r *Record) { r.Seq = 7; r.Source = src })
	add(func(r *Record) { r.Seq = 8; r.Received = t0.Add(time.Second) })
	add(func(r *Record) { r.Seq = 9; r.Listener, r.Format, r.Source = "", "", netip.AddrPort{} })
	add(func(r *Record) { r.Seq = 10; r.Received = t0 })
	add(func(r *Record) { r.Seq = 11; r.ConnID = 5; r.ClientID = "a1"; r.Payload = []byte{0xff} })

	var b Batch
	for reset := range 2 {
		b.Reset()
		var want []byte
		for i := range recs {
			b.Add(&recs[i])
			want = appendLine(want, &recs[i])
		}
		if !bytes.Equal(b.Lines(), want) {
			t.Fatalf("pass %d: lines\n%s\nwant\n%s", reset, b.Lines(), want)
		}
	}
}

// FuzzBatchAdd holds a batch's lines to appendLine's for any run of reports,
// each differing from the one before in what the fuzzer picks.
func FuzzBatchAdd(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, uint64(9), "a1")
	f.Add([]byte{1, 1, 1, 0, 0, 0}, uint64(math.MaxUint64-1), "")
	f.Fuzz(func(t *testing.T, ops []byte, seq uint64, id string) {
		r := Record{ClientID: id, Seq: seq, ConnID: 1, Received: time.Unix(1700000000, 5), Payload: []byte(`"p"`)}
		var b Batch
		var want []byte
		for _, op := range ops {
			switch op % 8 {
			case 0, 1:
				r.Seq++
			case 2:
				r.Seq = r.Seq*10 + 9
			case 3:
				r.ClientID += string(rune(op))
			case 4:
				r.ConnID += uint64(op)
			case 5:
				r.Received = r.Received.Add(time.Duration(op) * time.Millisecond)
			case 6:
				r.Listener, r.Format = r.Format+"l", r.Listener
			case 7:
				r.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, op}), uint16(op))
			}
			if op > 200 {
				b.Reset()
				want = want[:0]
			}
			b.Add(&r)
			want = appendLine(want, &r)
			if !bytes.Equal(b.Lines(), want) {
				t.Fatalf("lines\n%s\nwant\n%s", b.Lines(), want)
			}
		}
	})
}

// TestBatchStamp holds the receive time's text, whose seconds Batch keeps from
// one report to the next, to appendStamp's (time.RFC3339Nano), through fractions
// with and without trailing zeros, second and year boundaries, other zones and
// years RFC 3339 has no room for.
func TestBatchStamp(t *testing.T) {
	t0 := time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)
	times := []time.Time{t0, t0.Add(1), t0.Add(100 * time.Millisecond), t0.Add(999999999), t0.Add(time.Second),
		t0.Add(time.Second + 120*time.Microsecond), t0.In(time.FixedZone("x", -5*3600)).Add(7),
		time.Unix(0, 0), time.Date(0, 1, 1, 0, 0, 0, 5, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 50, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 500, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Now()}
	var b Batch
	for _, at := range times {
		b.formatStamp(at)
		if want := appendStamp(nil, at); !bytes.Equal(b.stamp, want) {
			t.Errorf("%v: %s, want %s", at, b.stamp, want)
		}
	}
}

func FuzzBatchStamp(f *testing.F) {
	f.Add(int64(1764000000), uint32(0), uint32(1))
	f.Add(int64(-62135596800), uint32(999999999), uint32(1000))
	f.Fuzz(func(t *testing.T, sec int64, ns, step uint32) {
		var b Batch
		at := time.Unix(sec, int64(ns%1e9))
		for range 3 {
			b.formatStamp(at)
			if want := appendStamp(nil, at); !bytes.Equal(b.stamp, want) {
				t.Fatalf("%v: %s, want %s", at, b.stamp, want)
			}
			at = at.Add(time.Duration(step))
		}
	})
}

func TestIncrement(t *testing.T) {
	for _, n := range []uint64{0, 1, 8, 10, 98, 1234567, 1999, math.MaxUint64 - 1} {
		d := strconv.AppendUint(nil, n, 10)
		if !increment(d) || string(d) != strconv.FormatUint(n+1, 10) {
			t.Errorf("increment(%d) = %s, want %d", n, d, n+1)
		}
	}
	for _, d := range []string{"9", "99", "9999"} {
		if increment([]byte(d)) {
			t.Errorf("increment(%s) fits, want false", d)
		}
	}
}

func TestBatchAddDoesNotAllocate(t *testing.T) {
	var b Batch
	r := &Record{ClientID: "agent-7", Seq: 1, ConnID: 2, Received: time.Now(), Payload: benchJSON}
	for range 64 {
		b.Add(r)
	}
	if n := testing.AllocsPerRun(100, func() {
		b.Reset()
		for range 64 {
			b.Add(r)
		}
	}); n != 0 {
		t.Errorf("%v allocations per 64 Adds into a warm batch, want 0", n)
	}
}

func TestNack(t *testing.T) {
	if n := Nack(fmt.Errorf("commit: %w", ErrClosed)); n.Code != protocol.CodeUnavailable || !n.Retryable {
		t.Errorf("closed: %+v, want retryable unavailable", n)
	}
	if n := Nack(errors.New("spool: write x: no space left on device")); n.Code != protocol.CodeSpoolWrite || !n.Retryable || n.Message == "" {
		t.Errorf("write failure: %+v, want retryable spool_write naming the error", n)
	}
	full := &FullError{Err: errors.New("spool full"), RetryAfter: 1500 * time.Millisecond}
	if n := Nack(full); n.Code != protocol.CodeSpoolWrite || !n.Retryable || n.RetryAfterMS != 1500 || n.Message != "spool full" {
		t.Errorf("full: %+v, want retryable spool_write with retry_after_ms 1500", n)
	}
}

// BenchmarkBatchAdd is the reader goroutine's cost per report: 8 reports of one
// read, with consecutive seqs. "string" is what hawkc load sends: one JSON string.
func BenchmarkBatchAdd(b *testing.B) {
	for _, bc := range []struct {
		name    string
		payload []byte
	}{{"object", benchJSON}, {"string", []byte(`"` + strings.Repeat("x", 126) + `"`)}} {
		b.Run(bc.name, func(b *testing.B) {
			var bt Batch
			r := &Record{ClientID: "agent-0042", Seq: 1234567, ConnID: 42, Received: time.Now(), Payload: bc.payload}
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.payload)))
			for i := 0; b.Loop(); i++ {
				if i%8 == 0 {
					bt.Reset()
					r.Received = r.Received.Add(time.Microsecond)
				}
				r.Seq++
				bt.Add(r)
			}
		})
	}
}

// BenchmarkStamp is the receive time's text per read: Batch's (the seconds kept)
// beside appendStamp's (time.Time.AppendFormat).
func BenchmarkStamp(b *testing.B) {
	at := time.Now()
	b.Run("batch", func(b *testing.B) {
		var bt Batch
		b.ReportAllocs()
		for b.Loop() {
			at = at.Add(37 * time.Microsecond)
			bt.formatStamp(at)
		}
	})
	b.Run("appendStamp", func(b *testing.B) {
		buf := make([]byte, 0, 64)
		b.ReportAllocs()
		for b.Loop() {
			at = at.Add(37 * time.Microsecond)
			buf = appendStamp(buf[:0], at)
		}
	})
}
