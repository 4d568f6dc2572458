package handoff

import (
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal("counting open descriptors needs /proc/self/fd:", err)
	}
	return len(ents)
}

// An acknowledgement Receive cannot write ends it with that error, after the
// batch it acknowledges and before the one read ahead: that one is never
// adopted, its descriptors are closed, and the reader goroutine is gone.
func TestReceiveAckFailsWithABatchReadAhead(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p, child := channelPair(t)
	defer child.Close()
	fds, states := pipes(t, 20)
	if err := p.Parent.Post(fds[:10], states[:10]); err != nil {
		t.Fatal(err)
	}
	if err := p.Parent.Post(fds[10:], states[10:]); err != nil {
		t.Fatal(err)
	}
	p.Parent.Close() // the acknowledgement of the first batch cannot be written
	before := openFDs(t)
	adopted := 0
	err := child.Receive(func(f *os.File, st *State, err error) {
		f.Close()
		adopted++
	})
	if err == nil || !strings.Contains(err.Error(), "acknowledge") {
		t.Fatalf("Receive returned %v, want the acknowledgement's error", err)
	}
	if adopted != 10 {
		t.Errorf("%d adopted, want the first batch's 10", adopted)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open after Receive, %d before: the batch read ahead kept its own", after, before)
	}
}

// A broken batch after a good one: the good one is adopted and acknowledged
// (the sender learns it moved), then Receive returns the break.
func TestReceiveAcknowledgesTheBatchBeforeABreak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p, child := channelPair(t)
	fds, states := pipes(t, 5)
	done := make(chan error, 1)
	adopted := 0
	go func() {
		defer child.Close()
		done <- child.Receive(func(f *os.File, st *State, err error) {
			f.Close()
			adopted++
		})
	}()
	if err := p.Parent.Post(fds, states); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parent.uc.Write([]byte("not a header")); err != nil {
		t.Fatal(err)
	}
	if err := p.Parent.Ack(); err != nil {
		t.Fatalf("the batch before the break: %v", err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "bad batch header") {
			t.Fatalf("Receive returned %v, want the bad header", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive did not return after a bad header")
	}
	if adopted != 5 {
		t.Errorf("%d adopted, want 5", adopted)
	}
}

func gcSettings() (gogc int64, limit uint64) {
	ms := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(ms)
	return int64(ms[0].Value.Uint64()), ms[1].Value.Uint64()
}

// The receiver's hold: GOGC off under a limit until its allocation allowance is
// spent, then the operator's settings, exactly; none with the operator's limit.
func TestGCHoldEndsOnceItsAllowanceIsAllocated(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	h := holdGC(64<<20, 1<<20)
	defer h.end()
	if gogc, limit := gcSettings(); !h.on || gogc >= 0 || limit == math.MaxInt64 {
		t.Fatalf("hold %v: GOGC %d, limit %d", h.on, gogc, limit)
	}
	var sink [][]byte
	for i := 0; h.on; i++ {
		if i > 100*holdCheck {
			t.Fatal("still holding after 6 MiB allocated, 1 MiB allowed")
		}
		sink = append(sink, make([]byte, 1<<10))
		h.adopted()
	}
	_ = sink
	if gogc, limit := gcSettings(); gogc != 100 || limit != math.MaxInt64 {
		t.Errorf("after the hold: GOGC %d, limit %d; want 100 and none", gogc, limit)
	}

	defer debug.SetMemoryLimit(debug.SetMemoryLimit(1 << 40))
	h = holdGC(64<<20, 1<<20)
	h.adopted()
	h.end()
	if gogc, limit := gcSettings(); h.on || gogc != 100 || limit != 1<<40 {
		t.Errorf("with the operator's memory limit: hold %v, GOGC %d, limit %d", h.on, gogc, limit)
	}
}
