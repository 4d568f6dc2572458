package handoff

import (
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func heapInUse() uint64 {
	ms := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(ms)
	return ms[0].Value.Uint64()
}

// waitGOGC waits, up to a deadline, for GOGC to be gogc.
func waitGOGC(t *testing.T, gogc int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if g, _ := gcSettings(); g == gogc {
			return
		}
		if time.Now().After(deadline) {
			g, l := gcSettings()
			t.Fatalf("GOGC %d (limit %d), want %d", g, l, gogc)
		}
		time.Sleep(time.Millisecond)
	}
}

// The hold kept past the handoff lasts until the heap in use reaches the goal,
// passes that goal on meanwhile, and then gives the operator's settings back.
func TestGCHoldUntilTheHeapReachesTheGoal(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	h := holdGC(256<<20, 128<<20)
	if !h.on {
		t.Fatal("no hold")
	}
	goal := heapInUse() + 8<<20
	done := make(chan struct{})
	go func() { defer close(done); h.until(goal, time.Hour, nil) }()
	// Until the goroutine runs, heapGoal is still this process's own.
	deadline := time.Now().Add(10 * time.Second)
	for heapGoal() != goal {
		if time.Now().After(deadline) {
			t.Fatalf("heapGoal %d while the hold waits, want the goal %d", heapGoal(), goal)
		}
		time.Sleep(time.Millisecond)
	}
	if gogc, limit := gcSettings(); gogc >= 0 || limit == math.MaxInt64 {
		t.Fatalf("below the goal: GOGC %d, limit %d; want off under a limit", gogc, limit)
	}
	var sink [][]byte
	for heapInUse() < goal+1<<20 {
		sink = append(sink, make([]byte, 64<<10))
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the hold still on with %d bytes in use, goal %d", heapInUse(), goal)
	}
	_ = sink
	if gogc, limit := gcSettings(); gogc != 100 || limit != math.MaxInt64 {
		t.Errorf("after the goal: GOGC %d, limit %d; want 100 and none", gogc, limit)
	}
	if g := heapGoal(); g == goal {
		t.Errorf("heapGoal still the goal waited for after the hold: %d", g)
	}
}

// The hold kept past the handoff ends when most has passed, or at stop.
func TestGCHoldUntilEndsAtItsBoundOrStop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	h := holdGC(256<<20, 128<<20)
	h.until(heapInUse()+100<<20, 20*time.Millisecond, nil) // returns once 20 ms passed
	if gogc, _ := gcSettings(); h.on || gogc != 100 {
		t.Fatalf("after most: hold %v, GOGC %d", h.on, gogc)
	}
	h = holdGC(256<<20, 128<<20)
	stop := make(chan struct{})
	close(stop)
	h.until(heapInUse()+100<<20, time.Hour, stop)
	if gogc, _ := gcSettings(); h.on || gogc != 100 {
		t.Fatalf("after stop: hold %v, GOGC %d", h.on, gogc)
	}
}

// A receiver with HeapFloorWait keeps the collector held past the handoff
// while its heap is below the sender's goal (Done is closed meanwhile), and
// undo ends that hold; without HeapFloorWait the hold ends with the handoff.
func TestReceiverHoldsGCUntilTheSendersHeapGoal(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, wait := range []time.Duration{time.Hour, 0} {
		gate := make(chan struct{})
		close(gate)
		r := NewReceiver(ReceiverOptions{Adopters: []Adopter{&fakeAdopter{t: Target{Kind: KindNative}}}, Gate: gate,
			Counter: nopCounter{}, Log: zap.NewNop(), Reject: func(f *os.File, _ error) { f.Close() }, HeapFloorWait: wait})
		p, err := NewPair()
		if err != nil {
			t.Fatal(err)
		}
		undo, err := r.Claim(func(string) (*os.File, error) { return p.Child, nil })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parent.WaitReady(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := p.Parent.Done(&Summary{HeapGoal: heapInUse() + 64<<20}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-r.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the receiver did not finish")
		}
		if wait == 0 {
			waitGOGC(t, 100)
		} else if gogc, _ := gcSettings(); gogc >= 0 {
			t.Errorf("GOGC %d after the handoff, below the sender's heap goal: want the hold kept", gogc)
		}
		undo()
		p.Parent.Close()
		if gogc, limit := gcSettings(); gogc != 100 || limit != math.MaxInt64 {
			t.Errorf("HeapFloorWait %v, after undo: GOGC %d, limit %d; want 100 and none", wait, gogc, limit)
		}
	}
}
