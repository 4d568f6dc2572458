package ticketkeys

import (
	"crypto/rand"
	"slices"
	"sync"
	"time"
)

// Ring is the keys in force and when the first of them started encrypting. It is
// safe for concurrent use; apply, given to NewRing, is called with every new list
// (under the Ring's lock, so lists are applied in order).
type Ring struct {
	mu      sync.Mutex
	keys    []Key
	rotated time.Time // when keys[0] became the encrypting key
	apply   func([]Key)
}

// NewRing is a ring holding keys (copied; the first encrypts) since rotated;
// apply receives them now and at every change.
func NewRing(keys []Key, rotated time.Time, apply func([]Key)) *Ring {
	r := &Ring{apply: apply}
	r.Set(keys, rotated)
	return r
}

// NewKey is a random key.
func NewKey() Key {
	var k Key
	rand.Read(k[:]) // never fails (crypto/rand panics rather)
	return k
}

// Set replaces the keys (copied; the first encrypts) by keys, the first
// encrypting since rotated.
func (r *Ring) Set(keys []Key, rotated time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.keys)
	r.keys = slices.Clone(keys[:min(len(keys), MaxKeys)])
	r.rotated = rotated
	r.apply(slices.Clone(r.keys))
}

// Rotate puts a new random key first and keeps the previous keys (at most
// previous of them) for decryption only.
func (r *Ring) Rotate(now time.Time, previous int) {
	previous = min(max(previous, 0), MaxKeys-1)
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := min(len(r.keys), previous)
	keys := make([]Key, 0, 1+keep)
	keys = append(append(keys, NewKey()), r.keys[:keep]...)
	clear(r.keys)
	r.keys, r.rotated = keys, now
	r.apply(slices.Clone(r.keys))
}

// Keys returns a copy of the keys in force and when the first started encrypting.
func (r *Ring) Keys() ([]Key, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.keys), r.rotated
}

// Equal reports whether keys are the keys in force, in order.
func (r *Ring) Equal(keys []Key) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Equal(r.keys, keys)
}
