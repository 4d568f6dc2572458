package handoff

import (
	"encoding/hex"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/upload"
)

func sampleState() *State {
	return &State{
		Kind: KindNative, ConnID: 42, ClientID: "agent-1", Token: "t0k", Remote: "127.0.0.1:5555",
		Since: time.Date(2026, 11, 24, 10, 0, 0, 123, time.UTC), MaxFrame: 1 << 20, MaxInFlight: 1024,
		Partial: []byte{0x48, 0x4b, 1, 2}, FramesIn: 7, FramesOut: 8, BytesIn: 900, BytesOut: 100,
		DedupHas: true, DedupHi: 4100, DedupDurable: []uint64{1, 0, 1 << 63},
	}
}

// fullState has every field set, TLS and an upload included.
func fullState() *State {
	st := sampleState()
	st.Ack = "range"
	st.TLS = &TLSState{Suite: 0x1301, InSecret: []byte{1, 2, 3}, OutSecret: []byte{4, 5, 6}, InSeq: 9, OutSeq: 10,
		Input: []byte{0x17, 3, 3}, Chain: [][]byte{{0x30, 1}, {0x30, 2}}}
	st.Uploads = []upload.Handover{{UploadID: "up-1", Offset: 1 << 40, Hash: []byte{7, 7, 7}}}
	return st
}

// Every version this build reads round-trips every field.
func TestStateRoundTrip(t *testing.T) {
	for _, st := range []*State{sampleState(), fullState(), {Kind: KindNative, ClientID: "a", MaxFrame: 1, MaxInFlight: 1}} {
		for _, v := range []byte{StateVersion, stateJSON} {
			msg, err := st.encode(v)
			if err != nil {
				t.Fatal(err)
			}
			if msg[0] != v {
				t.Fatalf("version byte %d, want %d", msg[0], v)
			}
			got, err := DecodeState(msg)
			if err != nil {
				t.Fatalf("version %d: %v", v, err)
			}
			if !reflect.DeepEqual(got, st) {
				t.Fatalf("version %d round trip:\n got %+v\nwant %+v", v, got, st)
			}
		}
	}
}

// The binary layout does not change unnoticed: a reader of this version in
// another build must read what this one writes. testdata/state-v2.hex is
// fullState's message.
func TestStateGolden(t *testing.T) {
	msg, err := fullState().Encode()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/state-v2.hex")
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(msg); got != strings.TrimSpace(string(want)) {
		t.Fatalf("version %d message of fullState:\n got %s\nwant %s", StateVersion, got, want)
	}
	st, err := DecodeState(msg)
	if err != nil || !reflect.DeepEqual(st, fullState()) {
		t.Fatalf("golden message decodes to %+v, %v", st, err)
	}
}

// The binary state is several times smaller than the JSON one.
func TestStateBinarySmaller(t *testing.T) {
	bin, _ := sampleState().encode(StateVersion)
	js, _ := sampleState().encode(stateJSON)
	if 2*len(bin) > len(js) {
		t.Fatalf("binary %d bytes, JSON %d", len(bin), len(js))
	}
}

// Each problem is named, so the ERROR the client gets says what went wrong.
func TestDecodeStateNamesTheProblem(t *testing.T) {
	good, _ := sampleState().Encode()
	goodJSON, _ := sampleState().encode(stateJSON)
	noClient := *sampleState()
	noClient.ClientID = ""
	noClientMsg, _ := noClient.Encode()
	for _, tc := range []struct {
		msg  []byte
		want string
	}{
		{nil, "empty message"},
		{append([]byte{3}, good[1:]...), "version 3"},
		{good[:len(good)-3], "malformed: truncated"},
		{good[:1], "malformed: truncated"},
		{append(append([]byte(nil), good...), 0), "1 bytes after"},
		{goodJSON[:len(goodJSON)-3], "malformed"},
		{append(append([]byte(nil), goodJSON...), []byte(`{}`)...), "data after"},
		{append([]byte{1}, []byte(`{"kind":"native","surprise":1}`)...), "unknown field"},
		{append([]byte{1}, []byte(`{"kind":"ffff"}`)...), `kind "ffff"`},
		{noClientMsg, "no client_id"},
		// A length longer than the message: refused before it is allocated.
		{[]byte{StateVersion, 0xff, 0xff, 0xff, 0xff, 0x0f}, "truncated"},
	} {
		_, err := DecodeState(tc.msg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeState(%.40q): %v, want an error naming %q", tc.msg, err, tc.want)
		}
	}
}

// Bad input is an error, never a panic, in either version; whatever decodes is
// usable and encodes back, in either version, to a message that decodes to the
// same State.
func FuzzDecodeState(f *testing.F) {
	for _, st := range []*State{sampleState(), fullState()} {
		for _, v := range []byte{StateVersion, stateJSON} {
			msg, _ := st.encode(v)
			f.Add(msg)
		}
	}
	f.Add([]byte{1, '{', '}'})
	f.Add([]byte{StateVersion})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, msg []byte) {
		st, err := DecodeState(msg)
		if err != nil {
			return
		}
		if st.ClientID == "" || st.MaxFrame <= 0 || (st.Kind == KindNative && st.MaxInFlight <= 0) {
			t.Fatalf("accepted an unusable state %+v", st)
		}
		for _, v := range []byte{StateVersion, stateJSON} {
			again, err := st.encode(v)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeState(again)
			if err != nil {
				t.Fatalf("re-encoded state (version %d) does not decode: %v", v, err)
			}
			if v == StateVersion && !reflect.DeepEqual(back, st) {
				t.Fatalf("re-encoded state (version %d) decodes to %+v, not %+v", v, back, st)
			}
		}
	})
}

// pipes returns n pipe read ends, each identifiable by what its write end wrote.
func pipes(t *testing.T, n int) (fds []int, states [][]byte) {
	t.Helper()
	for i := range n {
		var p [2]int
		if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		st := sampleState()
		st.ConnID = uint64(i)
		msg, _ := st.Encode()
		syscall.Write(p[1], []byte{byte(i), byte(i >> 8)})
		syscall.Close(p[1])
		fds = append(fds, p[0])
		states = append(states, msg)
	}
	t.Cleanup(func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	})
	return fds, states
}

// channelPair returns a new pair, the child's end as a Channel; the parent's end
// closes with tb.
func channelPair(tb testing.TB) (*Pair, *Channel) {
	tb.Helper()
	p, err := NewPair()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Parent.Close() })
	child, err := FromFile(p.Child)
	p.Child.Close()
	if err != nil {
		tb.Fatal(err)
	}
	return p, child
}

// 600 descriptors in three batches (the kernel takes at most 253 per message):
// each arrives with its own state, in order, and the sender learns of each batch's
// acknowledgement.
func TestChannelMovesBatches(t *testing.T) {
	p, child := channelPair(t)
	const n = 600
	fds, states := pipes(t, n)
	got := 0
	done := make(chan error, 1)
	go func() {
		defer child.Close()
		if err := child.SignalReady(); err != nil {
			done <- err
			return
		}
		done <- child.Receive(func(f *os.File, st *State, err error) {
			defer f.Close()
			if err != nil {
				t.Errorf("state %d: %v", got, err)
				return
			}
			var b [2]byte
			if _, err := f.Read(b[:]); err != nil {
				t.Errorf("descriptor %d: %v", got, err)
			}
			if id := int(b[0]) | int(b[1])<<8; id != got || st.ConnID != uint64(got) {
				t.Errorf("descriptor %d carries %d with the state of %d", got, id, st.ConnID)
			}
			got++
		})
	}()
	if _, err := p.Parent.WaitReady(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += MaxFDs {
		j := min(i+MaxFDs, n)
		if err := p.Parent.Send(fds[i:j], states[i:j]); err != nil {
			t.Fatalf("batch at %d: %v", i, err)
		}
	}
	if err := p.Parent.Send(fds[:MaxFDs+1], states[:MaxFDs+1]); err == nil {
		t.Fatal("a batch of 254 descriptors was accepted")
	}
	want := &Summary{Moved: n, Fallback: map[string]int{"timeout": 2}, Duration: time.Second, HeapGoal: 24 << 20}
	if err := p.Parent.Done(want); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := child.Summary(); !reflect.DeepEqual(got, want) {
		t.Fatalf("summary %+v, want %+v", got, want)
	}
	if got != n {
		t.Fatalf("received %d descriptors, want %d", got, n)
	}
}

// A receiver that dies (its end closed) without acknowledging: Send says so.
func TestChannelReceiverGone(t *testing.T) {
	p, err := NewPair()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Parent.Close()
	p.Child.Close()
	if _, err := p.Parent.WaitReady(time.Now().Add(5 * time.Second)); err == nil {
		t.Fatal("WaitReady succeeded with no receiver")
	}
	fds, states := pipes(t, 3)
	if err := p.Parent.Send(fds, states); err == nil {
		t.Fatal("Send succeeded with no receiver")
	}
}

// A legacy State round-trips with its listener, format and seq counter, and is
// refused without them.
func TestLegacyState(t *testing.T) {
	st := &State{Kind: KindLegacy, ConnID: 3, ClientID: "ffff:127.0.0.1:4000", Remote: "127.0.0.1:4000",
		Since: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), MaxFrame: 1 << 20, Listener: "metrics", Format: "ffff",
		NextSeq: 1764000000000000042, InSync: true, Partial: []byte{0xff, 0xff, 0}, FramesIn: 9, BytesIn: 90, BytesOut: 30}
	msg, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeState(msg)
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	noListener := *st
	noListener.Listener = ""
	b, _ := noListener.Encode()
	if _, err := DecodeState(b); err == nil || !strings.Contains(err.Error(), "listener") {
		t.Fatalf("a legacy state without a listener: %v", err)
	}
	big := *st
	big.Partial = make([]byte, st.MaxFrame+8<<10)
	b, _ = big.Encode()
	if _, err := DecodeState(b); err == nil || !strings.Contains(err.Error(), "partial") {
		t.Fatalf("a partial frame larger than a frame: %v", err)
	}
}

// The receiver's ready names its legacy listeners; a plain ready names none.
func TestReadyWithListeners(t *testing.T) {
	for _, want := range []*Ready{{Legacy: map[string]string{"metrics": "ffff", "devices": "c8c9"}}, {}} {
		p, err := NewPair()
		if err != nil {
			t.Fatal(err)
		}
		child, err := FromFile(p.Child)
		p.Child.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want.Legacy != nil {
			err = child.SignalReadyWith(want)
		} else {
			err = child.SignalReady()
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Parent.WaitReady(time.Now().Add(5 * time.Second))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("WaitReady: %+v, %v; want %+v", got, err, want)
		}
		child.Close()
		p.Parent.Close()
	}
}

// The sender writes the State version the receiver's ready asks for: version 1
// (JSON) to a receiver that sends a plain ready or names none, StateVersion to
// one that names it (readyFor, as the Receiver sends).
func TestReadyChoosesStateVersion(t *testing.T) {
	for _, tc := range []struct {
		signal func(*Channel) error
		want   byte
	}{
		{(*Channel).SignalReady, stateJSON},
		{func(ch *Channel) error { return ch.SignalReadyWith(&Ready{}) }, stateJSON},
		{func(ch *Channel) error { return ch.SignalReadyWith(readyFor(nil)) }, StateVersion},
	} {
		p, child := channelPair(t)
		if err := tc.signal(child); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parent.WaitReady(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := p.Parent.StateVersion(); got != tc.want {
			t.Errorf("state version %d, want %d", got, tc.want)
		}
		child.Close()
	}
}
