package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

// BenchmarkBatchAdd is the reader goroutine's cost per report: 8 reports of one read.
func BenchmarkBatchAdd(b *testing.B) {
	var bt Batch
	r := &Record{ClientID: "agent-0042", Seq: 1234567, ConnID: 42, Received: time.Now(), Payload: benchJSON}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchJSON)))
	for i := 0; b.Loop(); i++ {
		if i%8 == 0 {
			bt.Reset()
			r.Received = r.Received.Add(time.Microsecond)
		}
		bt.Add(r)
	}
}
