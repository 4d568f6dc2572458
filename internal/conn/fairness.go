package conn

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Fair admission: limits.handshake_rate is one budget for every agent, and a
// single source connecting in a loop (a misbehaving agent, a scanner, a
// reconnect bug) could otherwise take every token, so that agents from other
// addresses get ERROR busy. Each source (an IPv4 address, an IPv6 /64) has a
// share of the rate, 1/sourceShare, tracked in a bucket of its own. A source
// within its share may take any token of the global bucket; one over it only
// takes tokens while the global bucket is at least half full. The flood then
// still gets whatever the others leave (a storm from one NAT still reconnects at
// the full rate when nobody else competes), but never the half of the burst
// kept for everyone else, which refills first for them.

// sourceShare: a source within 1/sourceShare of limits.handshake_rate is never
// pushed aside by another's flood.
const sourceShare = 8

// maxSources bounds the sources remembered. A source's bucket is forgotten once
// it is full again (a fraction of a second after its last connection), so only a
// storm from more sources than this within that time reaches it; the ones beyond
// it are treated as over their share.
const maxSources = 1 << 16

// sourceSweep is how often idle sources are forgotten when the table is not full.
const sourceSweep = time.Second

// FairnessObserver is implemented by an Observer that also counts busy refusals
// by whether the refused source was over its share of limits.handshake_rate: a
// refusal within its share means the rate itself is too low for the fleet.
type FairnessObserver interface {
	RefusedBusy(overShare bool)
}

// sourceBucket is one source's GCRA bucket and its busy refusals since the last
// refusal log.
type sourceBucket struct {
	tat     int64 // mono time at which the source's bucket is full again
	refused int64
}

// sources is the table of source buckets.
type sources struct {
	mu        sync.Mutex
	m         map[netip.Addr]*sourceBucket
	lastSweep int64
}

// sourceOf is the source key of a remote address: the IPv4 address, or the /64
// of an IPv6 one (a host commonly holds a whole /64). ok is false for a
// non-IP address (a Unix socket).
func sourceOf(a net.Addr) (key netip.Addr, ok bool) {
	ip, ok := ipOf(a)
	if !ok {
		return netip.Addr{}, false
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip, true
}

// ipOf is the IP address of a (IPv4 unmapped); ok is false for a non-IP address.
func ipOf(a net.Addr) (ip netip.Addr, ok bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, ok = netip.AddrFromSlice(a.IP)
	default:
		ap, err := netip.ParseAddrPort(a.String())
		ip, ok = ap.Addr(), err == nil
	}
	return ip.Unmap(), ok
}

// admitFrom takes a global token for a connection from key at now (mono) under
// rate, with priority when key is within its share. It returns the earliest
// time (mono) a token will be free for it when it refuses, and whether key was
// over its share.
func (a *admission) admitFrom(key netip.Addr, keyed bool, now int64, rate int) (ok bool, free int64, overShare bool) {
	s := &a.src
	s.mu.Lock()
	defer s.mu.Unlock()
	var b *sourceBucket
	if keyed {
		b = s.get(key, now)
	}
	srcRate := max(rate/sourceShare, 1)
	t := interval(srcRate)
	tau := (burst(srcRate) - 1) * t
	overShare = b == nil && keyed || b != nil && max(b.tat, now)-now > tau
	ok, free = a.take(now, rate, !overShare)
	switch {
	case b == nil:
	case ok:
		b.tat = max(b.tat, now) + t
	default:
		b.refused++
	}
	return ok, free, overShare
}

// get returns key's bucket, creating it; nil when the table is full of sources
// whose buckets are not yet full again. Called with s.mu held.
func (s *sources) get(key netip.Addr, now int64) *sourceBucket {
	if b, ok := s.m[key]; ok {
		return b
	}
	if s.m == nil {
		s.m = make(map[netip.Addr]*sourceBucket)
	}
	if len(s.m) >= maxSources || now-s.lastSweep >= int64(sourceSweep) {
		s.sweep(now)
	}
	if len(s.m) >= maxSources {
		return nil
	}
	b := &sourceBucket{tat: now}
	s.m[key] = b
	return b
}

// sweep forgets the sources whose buckets are full again and that were not
// refused since the last refusal log. Called with s.mu held.
func (s *sources) sweep(now int64) {
	s.lastSweep = now
	for k, b := range s.m {
		if b.tat <= now && b.refused == 0 {
			delete(s.m, k)
		}
	}
}

// mostRefused returns the source refused most often since the last call and how
// often, and starts counting afresh: the refusal log names the flood.
func (s *sources) mostRefused() (key netip.Addr, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, b := range s.m {
		if b.refused > n {
			key, n = k, b.refused
		}
		b.refused = 0
	}
	return key, n
}
