package conn

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestSourceOf(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 5}, "10.1.2.3"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3"), Port: 5}, "10.1.2.3"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 5}, "2001:db8:1:2::"},
		{&net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 5}, "192.0.2.1"},
	} {
		got, ok := sourceOf(c.addr)
		if !ok || got.String() != c.want {
			t.Errorf("sourceOf(%v) = %v, %v; want %s", c.addr, got, ok, c.want)
		}
	}
	if _, ok := sourceOf(&net.UnixAddr{Name: "/run/x", Net: "unix"}); ok {
		t.Error("a Unix address has a source")
	}
}

// floodRun simulates 2s of a flood from one source (20 attempts a ms) while 8
// other sources connect 20 times a second each, at rate 1000/s, and returns
// the others' refusals and the flood's admissions and refusals. fair false
// takes every token as before sources had shares.
func floodRun(fair bool) (othersRefused, floodAdmitted, floodRefused int) {
	const rate = 1000
	var a admission
	flood := netip.MustParseAddr("127.0.0.2")
	var others []netip.Addr
	for i := range 8 {
		others = append(others, netip.AddrFrom4([4]byte{127, 0, 0, byte(3 + i)}))
	}
	try := func(key netip.Addr, now int64) bool {
		if !fair {
			ok, _ := a.admit(now, rate)
			return ok
		}
		ok, _, _ := a.admitFrom(key, true, now, rate)
		return ok
	}
	t0 := int64(time.Hour)
	for ms := range 2000 {
		now := t0 + int64(ms)*int64(time.Millisecond)
		// The flood first: it takes each token the moment it is there.
		for range 20 {
			if try(flood, now) {
				floodAdmitted++
			} else {
				floodRefused++
			}
		}
		for i, o := range others {
			if ms%50 == i*6 { // each every 50ms, staggered
				if !try(o, now) {
					othersRefused++
				}
			}
		}
	}
	return othersRefused, floodAdmitted, floodRefused
}

func TestFloodFromOneSourceDoesNotStarveOthers(t *testing.T) {
	others, admitted, refused := floodRun(true)
	if others != 0 {
		t.Errorf("%d connections from sources within their share refused during another's flood", others)
	}
	// The flood gets what the others leave: 2s at 1000/s minus their 320.
	if admitted < 1500 || refused == 0 {
		t.Errorf("the flood had %d admitted, %d refused; want about 1680 admitted, the rest refused", admitted, refused)
	}
	if others, _, _ := floodRun(false); others == 0 {
		t.Error("without shares the flood starves nobody either: the simulation shows nothing")
	}
}

func TestSourcesForgottenAndMostRefused(t *testing.T) {
	var a admission
	flood, other := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	now := int64(time.Hour)
	for range 1000 {
		a.admitFrom(flood, true, now, 100)
	}
	a.admitFrom(other, true, now, 100)
	if key, n := a.src.mostRefused(); key != flood || n == 0 {
		t.Errorf("most refused %v ×%d, want %v", key, n, flood)
	}
	if key, n := a.src.mostRefused(); n != 0 {
		t.Errorf("counts not reset: %v ×%d", key, n)
	}
	// A second later both buckets are full again: the next new source sweeps them.
	a.admitFrom(netip.MustParseAddr("127.0.0.4"), true, now+int64(time.Minute), 100)
	if n := len(a.src.m); n != 1 {
		t.Errorf("%d sources remembered after the sweep, want 1", n)
	}
}
