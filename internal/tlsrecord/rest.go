package tlsrecord

// Rest, on the reader when it is about to wait for the peer with nothing held
// (Ready is false), makes the session forget its AEADs until records flow again:
// about 1.5 KiB for AES-GCM, most of an idle session's memory. The keys stay,
// and the next record each way builds its AEAD again (a few hundred
// nanoseconds, and the AEAD's allocation). The write side rests now if no write
// is under way, and otherwise once that write is done; from then on until the
// next record comes in, every write rests it again after itself (the reader is
// waiting: what is written is an answer, or the peer is quiet); only a write
// ending just as Rest begins may keep it until the next rest. Calling Rest at
// every read would rebuild the AEADs for every record: the caller rests a
// session only when it has been quiet.
func (c *Conn) Rest() {
	c.in.rest()
	c.resting.Store(true)
	if c.wmu.TryLock() {
		c.out.rest()
		c.wmu.Unlock()
	}
}

// wake, on the reader as a record comes in, ends a rest: writes keep their
// AEAD again.
func (c *Conn) wake() {
	if c.resting.Load() {
		c.resting.Store(false)
	}
}

// restWriteLocked, after a write, rests the write side if the session rests.
// Caller holds wmu.
func (c *Conn) restWriteLocked() {
	if c.resting.Load() {
		c.out.rest()
	}
}

// Resting reports whether the session rests: Rest was called and no record has
// come in since.
func (c *Conn) Resting() bool { return c.resting.Load() }
