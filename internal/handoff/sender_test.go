package handoff

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// fakeGroup is a group of fakeConns with a target.
type fakeGroup struct {
	t     Target
	conns []Conn
}

func (g *fakeGroup) HandoffTarget() Target { return g.t }
func (g *fakeGroup) HandoffConns() []Conn  { return g.conns }

type nopCounter struct{}

func (nopCounter) Add(string, string, int) {}
func (nopCounter) Count(*Summary)          {}

// A legacy group moves only to a listener of the same name and format: when the
// new process's ready names none, or one of another format, its connections fall
// back (no_listener, format) without being asked; native connections move.
func TestSenderFallsBackWithoutMatchingListener(t *testing.T) {
	for _, tc := range []struct {
		ready  map[string]string
		reason string
	}{
		{map[string]string{"other": "ffff"}, ReasonNoListener},
		{map[string]string{"m": "c8c9"}, ReasonFormat},
	} {
		var asked atomic.Int64
		legacyConns, lcs := fakeConns(2, &asked)
		_, ncs := fakeConns(3, &asked)
		legacyGroup := &fakeGroup{t: Target{Kind: KindLegacy, Listener: "m", Format: "ffff"}, conns: lcs}
		s := NewSender([]Group{legacyGroup, &fakeGroup{t: Target{Kind: KindNative}, conns: ncs}}, nopCounter{}, zap.NewNop())
		if s.groups[0].HandoffTarget().Kind != KindNative {
			t.Fatal("the native group does not move first")
		}
		r := &recorder{t: t, asked: &asked, sent: map[int]bool{}}
		res, moved := s.send(context.Background(), r, &Ready{Legacy: tc.ready}, 5*time.Second)
		if res.Moved != 3 || moved[KindNative] != 3 || moved[KindLegacy] != 0 || res.Fallback[tc.reason] != 2 || len(res.Fallback) != 1 {
			t.Fatalf("%v: %+v (moved %v), want 3 native moved and 2 fallen back for %s", tc.ready, res, moved, tc.reason)
		}
		for _, c := range legacyConns {
			if c.p.state.Load() != stateNone {
				t.Fatalf("%v: legacy conn %d was asked", tc.ready, c.id)
			}
		}
	}
}

// Once the channel broke, the groups that follow fall back for it unasked.
func TestSenderAfterBrokenChannel(t *testing.T) {
	var asked atomic.Int64
	_, ncs := fakeConns(MaxFDs, &asked)
	legacyConns, lcs := fakeConns(2, &asked)
	s := NewSender([]Group{
		&fakeGroup{t: Target{Kind: KindNative}, conns: ncs},
		&fakeGroup{t: Target{Kind: KindLegacy, Listener: "m", Format: "ffff"}, conns: lcs},
	}, nopCounter{}, zap.NewNop())
	r := &recorder{t: t, asked: &asked, sent: map[int]bool{}, failAt: 1}
	res, _ := s.send(context.Background(), r, &Ready{Legacy: map[string]string{"m": "ffff"}}, 5*time.Second)
	if res.Err == nil || res.Moved+res.Lost+res.FallenBack() != MaxFDs+2 {
		t.Fatalf("%+v: not every connection accounted for", res)
	}
	for _, c := range legacyConns {
		if c.p.state.Load() != stateNone {
			t.Fatalf("legacy conn %d was asked after the channel broke", c.id)
		}
	}
}

// fakeAdopter records what it adopts.
type fakeAdopter struct {
	t       Target
	adopted []*State
}

func (a *fakeAdopter) HandoffTarget() Target { return a.t }
func (a *fakeAdopter) Adopt(f *os.File, st *State) error {
	f.Close()
	a.adopted = append(a.adopted, st)
	return nil
}

// The receiver announces its legacy listeners in its ready, and hands each
// connection to the adopter of its kind and listener; a connection for a listener
// it lacks is closed, a bad state rejected.
func TestReceiverRoutesByTarget(t *testing.T) {
	native := &fakeAdopter{t: Target{Kind: KindNative}}
	m := &fakeAdopter{t: Target{Kind: KindLegacy, Listener: "m", Format: "ffff"}}
	rejected := 0
	gate := make(chan struct{})
	close(gate)
	r := NewReceiver(ReceiverOptions{Adopters: []Adopter{native, m}, Gate: gate, Counter: nopCounter{}, Log: zap.NewNop(),
		Reject: func(f *os.File, _ error) { f.Close(); rejected++ }})
	p, err := NewPair()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Parent.Close()
	undo, err := r.Claim(func(name string) (*os.File, error) {
		if name != Name {
			t.Errorf("claimed %q", name)
		}
		return p.Child, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	ready, err := p.Parent.WaitReady(time.Now().Add(5 * time.Second))
	if err != nil || ready.Legacy["m"] != "ffff" || len(ready.Legacy) != 1 {
		t.Fatalf("ready %+v, %v; want the legacy listener m (ffff)", ready, err)
	}
	fds, _ := pipes(t, 4)
	states := [][]byte{}
	for _, st := range []*State{
		{Kind: KindNative, ClientID: "a", MaxFrame: 10, MaxInFlight: 1},
		{Kind: KindLegacy, ClientID: "b", MaxFrame: 10, Listener: "m", Format: "ffff"},
		{Kind: KindLegacy, ClientID: "c", MaxFrame: 10, Listener: "gone", Format: "ffff"},
	} {
		b, err := st.Encode()
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, b)
	}
	states = append(states, []byte{9}) // a version this build does not read
	if err := p.Parent.Send(fds, states); err != nil {
		t.Fatal(err)
	}
	if err := p.Parent.Done(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the receiver did not finish")
	}
	if len(native.adopted) != 1 || native.adopted[0].ClientID != "a" || len(m.adopted) != 1 || m.adopted[0].ClientID != "b" || rejected != 1 {
		t.Fatalf("native adopted %d, m adopted %d, %d rejected", len(native.adopted), len(m.adopted), rejected)
	}
}
