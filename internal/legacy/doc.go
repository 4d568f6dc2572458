// Package legacy serves agents of the older wire formats, unchanged, on listeners of
// their own, with hawk's durability.
//
// The formats are ffff (the metrics agent), c8c9 (long-connection devices) and
// headers (a minimal framing); internal/legacy/formats names them and their limits.
// docs/PROTOCOL.md, "Legacy formats", describes each byte; testdata/golden.json
// holds the vectors.
//
// The durability is hawk's: a report goes into an ingest.Batch (one per read of the
// socket), the batch is submitted once to the ingest.Destination, and the receipt
// (an ffff line, a c8c9 result frame) is queued only from Committed, so it leaves
// after the report's spool line exists. headers has no reply: at most once by nature.
//
// Receipt order. ffff receipts carry no id, so their order is their meaning: the
// n-th line answers the n-th report of the stream. Each read's replies (heartbeat
// lines included) wait in a per-connection queue and leave only from its head, once
// that read is committed: the order on the wire is the order of the frames, whatever
// order a destination commits in. (The spool commits in order anyway: one committer,
// submissions in order.) A report whose commit failed gets no ffff line (there is no
// negative reply, and closing would stop the agent for good) and a c8c9 status 503.
//
// Records. client_id is "<format>:<peer ip>:<peer port>": the IP alone would merge
// two agents on one host; the port changes when an agent reconnects, the price of a
// format with no id. seq is assigned here: the wall clock in nanoseconds at accept,
// strictly increasing within the process, plus one per report, so it is unique and
// increasing within a client_id. The record carries the listener's name and format.
//
// Corruption. The formats have no error message: a frame that cannot be read is
// dropped and counted by reason, and the decoder resynchronises on the next frame
// start after the bad frame's start (its length may be the corrupt part). Buffers
// grow with the bytes that arrive, never to what a header announces.
//
// Lifecycle. Sockets come from internal/upgrade (internal/legacyset opens them before
// Ready). Each Listener has one reaper goroutine (idle_timeout, stuck writes) and a
// Drain for the end of a process. After an upgrade, established connections are
// first handed to the new process (handoff.go, internal/handoff); these formats have
// no GOAWAY, so those that cannot move are served until they leave or the drain
// timeout, then closed.
package legacy
